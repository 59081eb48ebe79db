"""Ingest: S3 "object created" events -> one pointer message per object (or byte-range chunk).

Each object is claimed in the idempotency store first, so a duplicate event (S3 delivers at least
once; a replayed event; a manual re-invoke) is skipped instead of enqueued twice.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable

from botocore.exceptions import ClientError

from elt_sdk import layout, logs
from elt_sdk.aws import events
from elt_sdk.aws.idempotency.base import AlreadyCompleted, AlreadyInProgress, Idempotency
from elt_sdk.aws.messages import ObjectPointer
from elt_sdk.aws.errors import error_code
from elt_sdk.aws.s3 import strip_etag
from elt_sdk.formats import SNIFF_BYTES, plan_chunks, sniff

if TYPE_CHECKING:  # ingest only routes keys: its Lambda asset has no pyarrow for the registry to import
    from elt_sdk.bundled import Routes
    from elt_sdk.plugins import Registry

log = logs.get("ingest")


class IngestIncomplete(RuntimeError):
    """Raised after the whole event was handled when some object failed or was locked by another
    invocation: Lambda retries the event, and the objects already done are skipped then."""


@dataclass
class IngestCounts:
    objects: int = 0
    enqueued: int = 0
    messages: int = 0
    skipped: int = 0
    failed: int = 0
    missing: int = 0
    in_progress: int = 0
    test_events: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class Ingestor:
    def __init__(self, *, s3: Any, sqs: Any, queue_url: str, idempotency: Idempotency, registry: "Registry | Routes",
                 chunk_bytes: int, bronze_prefix: str = layout.BRONZE_PREFIX, replay_prefix: str = layout.REPLAY_PREFIX):
        self.s3, self.sqs, self.queue_url = s3, sqs, queue_url
        self.idempotency = idempotency
        self.registry = registry
        self.chunk_bytes = chunk_bytes
        self.bronze_prefix, self.replay_prefix = bronze_prefix, replay_prefix

    def handle(self, event: Any, remaining_ms: Callable[[], int]) -> IngestCounts:
        parsed = events.parse(event)
        counts = IngestCounts(objects=len(parsed.objects), test_events=parsed.test_events)
        for obj in parsed.objects:
            try:  # a DynamoDB or S3 error on one record of the event never skips the others
                self._one(obj, remaining_ms, counts)
            except Exception as exc:
                counts.failed += 1
                logs.error(log, "ingest of this object failed; the event will be retried", exc_info=True,
                           key=obj.key, error=f"{type(exc).__name__}: {exc}")
        logs.info(log, "ingest done", **counts.to_dict())
        if counts.failed or counts.in_progress:
            raise IngestIncomplete(f"{counts.failed} failed, {counts.in_progress} in progress elsewhere: {counts.to_dict()}")
        return counts

    def _one(self, obj: events.ObjectCreated, remaining_ms: Callable[[], int], counts: IngestCounts) -> None:
        origin = layout.replayed_key(obj.key, bronze_prefix=self.bronze_prefix, replay_prefix=self.replay_prefix)
        copy = origin != obj.key
        metadata: dict[str, str] = {}
        if copy or not obj.etag or obj.size is None or not (obj.sequencer or obj.event_time_ms):
            try:  # a hand-made event, or a replay copy (its metadata names its original's version)
                head = self.s3.head_object(Bucket=obj.bucket, Key=obj.key)
            except ClientError as exc:
                if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                    counts.missing += 1
                    logs.warning(log, "object no longer exists; nothing to ingest", key=obj.key)
                    return
                raise
            metadata = {k.lower(): v for k, v in head.get("Metadata", {}).items()}
            obj = events.ObjectCreated(obj.bucket, obj.key, strip_etag(head["ETag"]), head["ContentLength"],
                                       obj.sequencer, obj.event_time_ms or int(head["LastModified"].timestamp() * 1000))
        key = obj.idempotency_key
        try:
            self.idempotency.claim(key, remaining_ms())
        except AlreadyCompleted:
            counts.skipped += 1
            logs.info(log, "object already ingested; skipped", idempotency_key=key)
            return
        except AlreadyInProgress:
            counts.in_progress += 1
            logs.warning(log, "object is being ingested by another invocation", idempotency_key=key)
            return
        try:
            pointers = self.pointers(obj, origin if copy else None, metadata)
            self._send(pointers)
            self.idempotency.complete(key, {"messages": len(pointers)})
        except Exception as exc:
            self.idempotency.release(key)
            counts.failed += 1
            logs.error(log, "ingest failed; claim released", exc_info=True, idempotency_key=key, error=str(exc))
            return
        counts.enqueued += 1
        counts.messages += len(pointers)
        logs.info(log, "object enqueued", idempotency_key=key, messages=len(pointers), size=obj.size)

    def pointers(self, obj: events.ObjectCreated, origin: str | None = None,
                 metadata: dict[str, str] | None = None) -> list[ObjectPointer]:
        """One pointer per object (or byte-range chunk). A replay copy's pointer names its
        original (``origin``) and the original's version, from the copy's metadata."""
        ds = self.registry.route_key(origin or obj.key)
        meta = metadata or {}
        version = dict(sequencer=obj.sequencer, modified_ms=obj.event_time_ms)
        if origin is not None:
            version = dict(sequencer=meta.get(layout.META_ORIGIN_SEQUENCER, ""),
                           modified_ms=int(meta.get(layout.META_ORIGIN_MODIFIED_MS, obj.event_time_ms) or 0))
        base = dict(bucket=obj.bucket, key=obj.key, etag=obj.etag, size=obj.size or 0, dataset=ds.name if ds else None,
                    origin=origin, origin_etag=meta.get(layout.META_ORIGIN_ETAG, "") if origin else "",
                    force=origin is not None, **version)
        size = obj.size or 0
        if size <= self.chunk_bytes or self._kind(obj) != "lines":
            return [ObjectPointer(**base, chunk_end=size)]
        chunks = plan_chunks(size, self.chunk_bytes)
        return [ObjectPointer(**base, chunk_index=c.index, chunk_start=c.start, chunk_end=c.end, chunk_count=len(chunks))
                for c in chunks]

    def _kind(self, obj: events.ObjectCreated) -> str:
        """Only plain JSONL splits by byte range; gzip, arrays, documents and \r-only files go whole."""
        head = self.s3.get_object(Bucket=obj.bucket, Key=obj.key, Range=f"bytes=0-{SNIFF_BYTES - 1}")["Body"].read()
        return sniff(head)

    def _send(self, pointers: list[ObjectPointer]) -> None:
        for i in range(0, len(pointers), 10):
            batch = pointers[i:i + 10]
            resp = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "MessageBody": p.to_json()} for n, p in enumerate(batch)],
            )
            if resp.get("Failed"):
                raise RuntimeError(f"SQS refused {len(resp['Failed'])} message(s): {resp['Failed'][0]}")
