"""Replay: run the bronze objects of a time window through the pipeline again, replacing their
rows (``elt-sdk replay`` and the ops workflow's replay function both call this module).

Two ways, as in the reference pipeline:

- ``copy``: each object is copied under ``<replay prefix><stamp>/...`` with S3 metadata naming
  the version of its original it stands for (``layout.replay_metadata``); the bucket's
  notification sends the copy to ingest, which routes it by its original's key and sends a
  ``force`` pointer. Needs only ``s3:PutObject`` on the replay prefix.
- ``sqs``: pointer messages (version 2, ``force``, chunked as ingest chunks) go straight to the
  queue. Needs ``sqs:SendMessage``.

Either way the transform replaces the object's current rows: a ``force`` pointer whose etag is
the current version's is that same version again, and its commit swaps the old files for the new
(never a duplicated row). The version a replay names is the one current in silver (its manifest)
when that is the content in bronze now, else the bronze object's own (its etag and write time):
replays read the latest version of each key, so an old version never comes back.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from botocore.exceptions import ClientError

from elt_sdk import layout, logs
from elt_sdk.aws.s3 import PRECONDITION, error_code, strip_etag
from elt_sdk.source import ObjectVersion

log = logs.get("replay")
COPY, SQS = "copy", "sqs"


@dataclass
class ReplayItem:
    key: str
    etag: str
    size: int
    modified: datetime
    version: ObjectVersion
    committed: bool
    """The version is the one current in silver (else: not transformed yet, failed, or newer)."""

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "etag": self.etag, "size": self.size, "modified": self.modified.isoformat(),
                "version": self.version.to_dict(), "committed": self.committed}


def stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H-%M-%SZ")


def plan(s3: Any, bucket: str, prefix: str, start: datetime | None, end: datetime | None, *,
         replay_prefix: str = layout.REPLAY_PREFIX, committer: Any = None) -> list[ReplayItem]:
    """The objects under ``prefix`` written in ``[start, end)`` (replay copies excluded), each
    with the version a replay of it names (from its manifest when ``committer`` can read it)."""
    items: list[ReplayItem] = []
    root = replay_prefix.rstrip("/") + "/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key, modified = obj["Key"], obj["LastModified"]
            if key.startswith(root) or (start and modified < start) or (end and modified >= end):
                continue
            etag = strip_etag(obj["ETag"])
            version, committed = ObjectVersion(etag, "", int(modified.timestamp() * 1000)), False
            current = _current(committer, key)
            if current and current["version"].get("etag") == etag:
                version, committed = ObjectVersion.from_dict(current["version"]), True
            items.append(ReplayItem(key, etag, int(obj.get("Size", 0)), modified, version, committed))
    return items


def _current(committer: Any, key: str) -> dict[str, Any] | None:
    if committer is None:
        return None
    try:
        return committer.current(key)
    except ClientError as exc:  # no read access to the manifests: the bronze object's version will do
        logs.warning(log, "cannot read the object's manifest; replaying its bronze version", key=key,
                     error=error_code(exc))
        return None


def copy(s3: Any, bucket: str, items: list[ReplayItem], *, at: datetime, bronze_prefix: str = layout.BRONZE_PREFIX,
         replay_prefix: str = layout.REPLAY_PREFIX, on_item: Callable[[ReplayItem], None] = lambda i: None) -> dict[str, Any]:
    """Copy each item under the replay prefix (only if it is still the version planned)."""
    copied, changed = 0, []
    base = replay_prefix.rstrip("/")
    for item in items:
        dest = layout.replay_key(item.key, stamp(at), bronze_prefix=bronze_prefix, replay_prefix=base)
        try:
            s3.copy_object(Bucket=bucket, Key=dest, CopySource={"Bucket": bucket, "Key": item.key},
                           CopySourceIfMatch=f'"{item.etag}"', MetadataDirective="REPLACE",
                           Metadata=layout.replay_metadata(item.version.etag, item.version.modified_ms,
                                                           item.version.sequencer))
            copied += 1
        except ClientError as exc:
            if error_code(exc) not in PRECONDITION + ("NoSuchKey", "404"):
                raise
            changed.append(item.key)  # overwritten or deleted since listed: its own event covers it
        on_item(item)
    return {"copied": copied, "changed": changed, "dest_prefix": f"{base}/{stamp(at)}/"}


def send(s3: Any, sqs: Any, queue_url: str, bucket: str, items: list[ReplayItem], *, registry: Any, chunk_bytes: int,
         bronze_prefix: str = layout.BRONZE_PREFIX, replay_prefix: str = layout.REPLAY_PREFIX,
         on_item: Callable[[ReplayItem], None] = lambda i: None) -> dict[str, Any]:
    """Send each item's pointer messages (as ingest makes them, with ``force``) to the queue."""
    from elt_sdk.aws.events import ObjectCreated
    from elt_sdk.aws.ingest import Ingestor

    ingestor = Ingestor(s3=s3, sqs=sqs, queue_url=queue_url, idempotency=None, registry=registry,  # type: ignore[arg-type]
                        chunk_bytes=chunk_bytes, bronze_prefix=bronze_prefix, replay_prefix=replay_prefix)
    objects = messages = 0
    for item in items:
        obj = ObjectCreated(bucket, item.key, item.etag, item.size, item.version.sequencer, item.version.modified_ms)
        pointers = [dataclasses.replace(p, force=True) for p in ingestor.pointers(obj)]
        ingestor.send(pointers)
        objects += 1
        messages += len(pointers)
        on_item(item)
    return {"sent": objects, "messages": messages}
