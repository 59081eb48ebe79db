"""Transform: an SQS batch of pointer messages -> silver Parquet and quarantine in S3.

Each message is processed on its own; a failure is reported in ``batchItemFailures`` so only that
message is retried (and reaches the DLQ after maxReceiveCount). Output keys depend only on the
object's content identity, chunk, dataset, dt and part, so a redelivered message overwrites.
"""
from __future__ import annotations

import json
import time
from typing import Any

from elt_sdk import layout, logs, metrics
from elt_sdk.aws.messages import ObjectPointer
from elt_sdk.aws.s3 import S3Sink, S3Source, StaleObject
from elt_sdk.pipeline import ObjectReport, Transformer

log = logs.get("transform")


class SqsTransform:
    def __init__(self, *, s3: Any, transformer: Transformer, silver_bucket: str, metrics_namespace: str,
                 events: Any | None = None, event_bus: str = "default"):
        self.s3 = s3
        self.transformer = transformer
        self.sink = S3Sink(s3, silver_bucket)
        self.silver_bucket = silver_bucket
        self.namespace = metrics_namespace
        self.events = events
        self.event_bus = event_bus

    def handle(self, event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        failures = []
        for record in event.get("Records", []):
            message_id = record.get("messageId", "?")
            try:
                self.process(ObjectPointer.from_json(record["body"]), message_id)
            except StaleObject as exc:
                logs.warning(log, "object changed or deleted since its event; dropping message",
                             message_id=message_id, error=str(exc))
            except Exception as exc:  # one bad message never fails its neighbours
                failures.append({"itemIdentifier": message_id})
                logs.error(log, "message failed; it will be retried", exc_info=True, message_id=message_id,
                           receive_count=record.get("attributes", {}).get("ApproximateReceiveCount"),
                           error=f"{type(exc).__name__}: {exc}")
        return {"batchItemFailures": failures}

    def process(self, pointer: ObjectPointer, message_id: str = "-") -> ObjectReport:
        source = S3Source(self.s3, pointer.bucket, pointer.key, pointer.etag, pointer.size)
        report = self.transformer.transform_object(source, self.sink, chunk=pointer.chunk, dataset=pointer.dataset)
        totals = report.totals()
        logs.info(log, "object transformed", message_id=message_id, source=source.uri, chunk=pointer.chunk_index,
                  records_in=totals.records_in, written=totals.written, quarantined=totals.quarantined,
                  partitions=[f"{p.dataset}/dt={p.dt}" for p in report.partitions],
                  quarantine=sorted(report.quarantine_keys.values()),
                  seconds=round(report.seconds, 3))
        for name, c in report.counts.items():
            metrics.put(self.namespace, {"dataset": name},
                        {"Objects": c.objects, "RecordsIn": c.records_in, "RecordsWritten": c.written,
                         "RecordsQuarantined": c.quarantined})
        metrics.put(self.namespace, {"function": "transform"},
                    {"Bytes": report.bytes_read, "DurationMs": round(report.seconds * 1000, 1)},
                    {"Bytes": "Bytes", "DurationMs": "Milliseconds"})
        if self.events is not None:
            self._partition_events(report)
        return report

    def _partition_events(self, report: ObjectReport) -> None:
        entries = [{
            "Source": "elt-sdk",
            "DetailType": "silver_partition_ready",
            "EventBusName": self.event_bus,
            "Detail": json.dumps({"dataset": p.dataset, "dt": p.dt, "rows": p.rows, "bucket": self.silver_bucket,
                                  "prefix": layout.silver_partition(p.dataset, p.dt), "keys": p.keys,
                                  "source": report.uri, "at": int(time.time())}),
        } for p in report.partitions]
        for i in range(0, len(entries), 10):
            resp = self.events.put_events(Entries=entries[i:i + 10])
            if resp.get("FailedEntryCount"):
                raise RuntimeError(f"EventBridge refused {resp['FailedEntryCount']} partition event(s)")
