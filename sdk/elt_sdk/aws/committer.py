"""The committer function: an SQS batch of commit messages -> one snapshot per Iceberg table.

Fed by the commit queue with reserved concurrency 1 (one writer per table, so commits rarely
conflict; when they do — a redelivery meeting a running invocation, maintenance — the committer
plans again). Each message's fate:

- committed, already committed (a redelivery) or superseded by a newer round of its object:
  deleted from the queue;
- refused for good (not a commit message, a staged file that cannot be read, a schema change the
  table cannot take): to the commit DLQ at once, with the reason, and the object's failure marker
  in quarantine; its rows never become visible;
- anything else (a throttled S3 call, too many conflicts): reported in ``batchItemFailures`` and
  retried; on its last receive the marker is written.
"""
from __future__ import annotations

import time
from typing import Any

from elt_sdk import logs, metrics
from elt_sdk.aws.dead_letter import dead_letter
from elt_sdk.errors import BadMessage
from elt_sdk.iceberg.committer import COMMITTED, FAILED, CommitMessage, IcebergCommitter

log = logs.get("committer")


class SqsCommitter:
    def __init__(self, *, committer: IcebergCommitter, metrics_namespace: str, sqs: Any = None,
                 dlq_url: str | None = None, max_receive_count: int = 5):
        self.committer = committer
        self.namespace = metrics_namespace
        self.sqs, self.dlq_url, self.max_receive_count = sqs, dlq_url, max_receive_count

    def handle(self, event: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
        started = time.perf_counter()
        failures: list[dict[str, str]] = []
        parsed: list[tuple[dict[str, Any], CommitMessage]] = []
        for record in event.get("Records", []):
            try:
                parsed.append((record, CommitMessage.parse(record["body"])))
            except BadMessage as exc:
                if not self._dead_letter(record, f"BadMessage: {exc}"):
                    failures.append({"itemIdentifier": record.get("messageId", "?")})
        try:
            results = {r.message.commit: r for r in self.committer.commit([m for _, m in parsed])}
        except Exception as exc:  # noqa: BLE001 - the catalog is down, say: every message is retried
            logs.error(log, "commit batch failed; every message will be retried", exc_info=True,
                       error=f"{type(exc).__name__}: {exc}", messages=len(parsed))
            for record, message in parsed:
                failures.append({"itemIdentifier": record.get("messageId", "?")})
                self._last_receive(record, message, f"{type(exc).__name__}: {exc}")
            return {"batchItemFailures": failures}
        counts: dict[str, int] = {}
        for record, message in parsed:
            result = results[message.commit]
            counts[result.status] = counts.get(result.status, 0) + 1
            if result.status != FAILED:
                continue
            error = result.error or "commit failed"
            if result.permanent:
                self._mark(message, error, record)
                if self._dead_letter(record, error):
                    continue
            else:
                logs.error(log, "commit failed; it will be retried", message_id=record.get("messageId"),
                           source=message.source, error=error[:2000])
                self._last_receive(record, message, error)
            failures.append({"itemIdentifier": record.get("messageId", "?")})
        snapshots = sorted({f"{t}@{s}" for r in results.values() for t, s in r.snapshots.items()})
        logs.info(log, "commit batch done", messages=len(event.get("Records", [])), snapshots=snapshots,
                  seconds=round(time.perf_counter() - started, 3), **{k.replace(" ", "_"): v for k, v in counts.items()})
        metrics.put(self.namespace, {"function": "committer"},
                    {"ObjectsCommitted": counts.get(COMMITTED, 0), "CommitsFailed": counts.get(FAILED, 0),
                     "DurationMs": round((time.perf_counter() - started) * 1000, 1)}, {"DurationMs": "Milliseconds"})
        return {"batchItemFailures": failures}

    def _last_receive(self, record: dict[str, Any], message: CommitMessage, error: str) -> None:
        receives = int(record.get("attributes", {}).get("ApproximateReceiveCount", "1") or 1)
        if receives >= self.max_receive_count:
            self._mark(message, error, record)

    def _mark(self, message: CommitMessage, error: str, record: dict[str, Any]) -> None:
        try:
            self.committer.mark_failed(message, error,
                                       int(record.get("attributes", {}).get("ApproximateReceiveCount", "1") or 1))
        except Exception:  # noqa: BLE001 - a marker is a courtesy; the DLQ keeps the message
            logs.error(log, "could not write the failure marker", exc_info=True)

    def _dead_letter(self, record: dict[str, Any], reason: str) -> bool:
        logs.error(log, "commit message can never succeed; moved to the DLQ now", message_id=record.get("messageId"),
                   error=reason[:2000])
        return dead_letter(self.sqs, self.dlq_url, record, reason)


def maintain(event: dict[str, Any], env: Any) -> dict[str, Any]:
    """The scheduled maintenance function's work: every table (or ``event["dataset"]``)."""
    from elt_sdk import settings as s
    from elt_sdk.aws.s3 import S3Store
    from elt_sdk.iceberg import catalog, maintenance

    import boto3

    cfg = s.Settings.load(env=env)
    warehouse = catalog.from_environment(env)
    store = S3Store(boto3.client("s3"), env[s.ENV_SILVER_BUCKET])
    reports = maintenance.maintain(warehouse, store, snapshot_retention_days=cfg.iceberg_snapshot_retention_days,
                                   orphan_age_days=cfg.iceberg_orphan_age_days,
                                   datasets=[event["dataset"]] if event.get("dataset") else None)
    out = [r.to_dict() for r in reports]
    logs.info(log, "maintenance done", reports=out)
    return {"reports": out}
