"""Transform: an SQS batch of pointer messages -> committed silver Parquet and quarantine in S3.

Each message is processed on its own, and its fate depends on what went wrong:

- nothing: the object version's rows are committed (or it was superseded by a newer version, or
  already committed by the same plugin versions: nothing to do);
- the object changed or vanished since its event (``StaleObject``): the message is dropped, a
  newer event covers the object;
- it can never succeed (``ObjectRefused``: an unreadable pointer, a dataset not installed, a
  corrupt gzip, a bomb): it goes to the DLQ at once, with the reason as a message attribute, and
  a marker in quarantine says why the object has no rows;
- anything else (throttling, a 500, a timeout): it is reported in ``batchItemFailures`` and
  retried; on its last receive (``max_receive_count``) the marker is written before it fails.

An attempt that fails leaves nothing in silver: its files were never committed (``commit.py``).
"""
from __future__ import annotations

import json
import time
from typing import Any

from elt_sdk import layout, logs, metrics
from elt_sdk.aws.dead_letter import REDRIVEN_ATTR, dead_letter
from elt_sdk.aws.messages import ObjectPointer
from elt_sdk.aws.s3 import S3Source
from elt_sdk.commit import COMMITTED, DUPLICATE, SUPERSEDED, Committer
from elt_sdk.errors import BadMessage, ObjectRefused
from elt_sdk.pipeline import ObjectReport, Transformer
from elt_sdk.plugins import UnknownDataset
from elt_sdk.source import ObjectVersion, SourceRef, StaleObject

log = logs.get("transform")


class SqsTransform:
    def __init__(self, *, s3: Any, transformer: Transformer, committer: Committer, silver_bucket: str,
                 metrics_namespace: str, sqs: Any = None, dlq_url: str | None = None, max_receive_count: int = 5,
                 events: Any | None = None, event_bus: str = "default"):
        self.s3 = s3
        self.transformer = transformer
        self.committer = committer
        self.silver_bucket = silver_bucket
        self.namespace = metrics_namespace
        self.sqs, self.dlq_url, self.max_receive_count = sqs, dlq_url, max_receive_count
        self.events = events
        self.event_bus = event_bus

    def handle(self, event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        failures = []
        for record in event.get("Records", []):
            message_id = record.get("messageId", "?")
            receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1") or 1)
            pointer = None
            try:
                pointer = ObjectPointer.from_json(record["body"])
                self.process(pointer, message_id,
                             first_delivery=receives <= 1 and REDRIVEN_ATTR not in (record.get("messageAttributes") or {}))
            except StaleObject as exc:
                logs.warning(log, "object changed or deleted since its event; dropping message",
                             message_id=message_id, error=str(exc))
            except ObjectRefused as exc:
                if not self._dead_letter(record, pointer, exc):
                    failures.append({"itemIdentifier": message_id})
            except Exception as exc:  # one bad message never fails its neighbours
                failures.append({"itemIdentifier": message_id})
                last = receives >= self.max_receive_count
                logs.error(log, "message failed; it will be retried" if not last else
                           "message failed on its last receive; it goes to the DLQ", exc_info=True,
                           message_id=message_id, receive_count=receives, error=f"{type(exc).__name__}: {exc}")
                if last and pointer is not None:
                    self._mark(pointer, f"{type(exc).__name__}: {exc}", "transform", receives)
        return {"batchItemFailures": failures}

    def process(self, pointer: ObjectPointer, message_id: str = "-", first_delivery: bool = False) -> ObjectReport:
        """One object's message. On its first delivery (from ingest, received once) the object
        is most likely new; a retry or a redriven message is checked for a committed version
        before it is transformed again."""
        version = pointer.version
        if pointer.force:  # a replay of the content that is current is that same version, replaced
            cur = self.committer.current(pointer.identity)
            if cur and cur["version"].get("etag") == version.etag:
                version = ObjectVersion.from_dict(cur["version"])
        source = S3Source(self.s3, pointer.bucket, pointer.identity, pointer.etag, pointer.size, version,
                          read_key=pointer.key if pointer.origin else None)
        try:
            report = self.transformer.transform_object(source, self.committer, chunk=pointer.chunk,
                                                       chunk_count=pointer.chunk_count, dataset=pointer.dataset,
                                                       force=pointer.force, first_delivery=first_delivery)
        except UnknownDataset as exc:
            raise ObjectRefused(str(exc)) from None
        totals = report.totals()
        logs.info(log, "object transformed" if report.outcome == COMMITTED else f"object {report.outcome}",
                  message_id=message_id, source=source.uri, chunk=pointer.chunk_index, outcome=report.outcome,
                  records_in=totals.records_in, written=totals.written, quarantined=totals.quarantined,
                  partitions=[f"{p.dataset}/dt={p.dt}" for p in report.partitions],
                  quarantine=sorted(report.quarantine_keys.values()), seconds=round(report.seconds, 3))
        if report.outcome not in (DUPLICATE, SUPERSEDED):  # a skipped version's rows never land
            for name, c in report.counts.items():
                metrics.put(self.namespace, {"dataset": name},
                            {"Objects": c.objects, "RecordsIn": c.records_in, "RecordsWritten": c.written,
                             "RecordsQuarantined": c.quarantined})
        metrics.put(self.namespace, {"function": "transform"},
                    {"Bytes": report.bytes_read, "DurationMs": round(report.seconds * 1000, 1)},
                    {"Bytes": "Bytes", "DurationMs": "Milliseconds"})
        if self.events is not None and report.partitions:  # a commit, or a duplicate that finished one
            self._partition_events(report)
        return report

    def _dead_letter(self, record: dict[str, Any], pointer: ObjectPointer | None, exc: Exception) -> bool:
        """Move a message that can never succeed to the DLQ now (True), with its reason."""
        reason = f"{type(exc).__name__}: {exc}"
        logs.error(log, "message can never succeed; moved to the DLQ now", message_id=record.get("messageId"),
                   error=reason[:2000])
        metrics.put(self.namespace, {"function": "transform"}, {"PoisonMessages": 1})
        if pointer is not None and not isinstance(exc, BadMessage):
            self._mark(pointer, reason, "object", int(record.get("attributes", {}).get("ApproximateReceiveCount", 1)))
        return dead_letter(self.sqs, self.dlq_url, record, reason)

    def _mark(self, pointer: ObjectPointer, error: str, stage: str, attempts: int) -> None:
        try:
            ref = SourceRef(f"s3://{pointer.bucket}/{pointer.key}", pointer.etag, pointer.chunk_index, pointer.identity,
                            pointer.version)
            self.committer.mark_failed(ref, error, stage=stage, attempts=attempts,
                                       datasets=[pointer.dataset] if pointer.dataset else [])
        except Exception:  # noqa: BLE001 - a marker is a courtesy; the DLQ keeps the message itself
            logs.error(log, "could not write the failure marker", exc_info=True)

    def _partition_events(self, report: ObjectReport) -> None:
        """Announce the partitions a commit wrote, once its step 5 is done (the replaced rows are
        gone): by the delivery that commits, or by the redelivery that finishes a step 5 that
        failed. Best effort: the commit stands whatever happens here (a retry of the message would
        find it committed and announce nothing), so a failure is logged and counted (metric
        ``PartitionEventsFailed``), never raised."""
        try:
            self._put_partition_events(report)
        except Exception as exc:  # noqa: BLE001 - see above
            logs.error(log, "partition events not sent; the commit stands (consumers of silver_partition_ready "
                       "miss them: run their job on these partitions by hand)", source=report.uri,
                       partitions=[f"{p.dataset}/dt={p.dt}" for p in report.partitions],
                       error=f"{type(exc).__name__}: {exc}")
            metrics.put(self.namespace, {"function": "transform"}, {"PartitionEventsFailed": len(report.partitions)})

    def _put_partition_events(self, report: ObjectReport) -> None:
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
                codes = sorted({e.get("ErrorCode", "?") for e in resp.get("Entries", []) if e.get("ErrorCode")})
                raise RuntimeError(f"EventBridge refused {resp['FailedEntryCount']} partition event(s) "
                                   f"({', '.join(codes) or 'no error code'}) on bus {self.event_bus}")
