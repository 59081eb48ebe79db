"""S3 "object created" notifications, in every shape they reach the ingest handler: straight
from S3, wrapped in SQS, or from EventBridge. Keys arrive percent-encoded (``+`` for space)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class ObjectCreated:
    bucket: str
    key: str
    etag: str
    size: int | None

    @property
    def idempotency_key(self) -> str:
        """Object-level identity, as the reference pipeline defines it: ``s3://bucket/key#etag``."""
        return f"s3://{self.bucket}/{self.key}#{self.etag}"


@dataclass
class ParsedEvent:
    objects: list[ObjectCreated]
    test_events: int = 0
    ignored: int = 0


def parse(event: Any) -> ParsedEvent:
    out = ParsedEvent([])
    for obj in _walk(event, out):
        out.objects.append(obj)
    return out


def _walk(event: Any, out: ParsedEvent) -> Iterator[ObjectCreated]:
    if not isinstance(event, dict):
        out.ignored += 1
        return
    if event.get("Event") == "s3:TestEvent":
        out.test_events += 1
        return
    if event.get("source") == "aws.s3" and "detail" in event:  # EventBridge: keys are not encoded
        d = event["detail"]
        yield ObjectCreated(d["bucket"]["name"], d["object"]["key"], d["object"].get("etag", "").strip('"'),
                            d["object"].get("size"))
        return
    for record in event.get("Records", []):
        if record.get("eventSource") == "aws:sqs" or "body" in record:
            try:
                yield from _walk(json.loads(record["body"]), out)
            except (ValueError, KeyError):
                out.ignored += 1
            continue
        if record.get("eventSource") != "aws:s3" or not str(record.get("eventName", "")).startswith("ObjectCreated"):
            out.ignored += 1
            continue
        s3 = record["s3"]
        obj = s3["object"]
        yield ObjectCreated(s3["bucket"]["name"], unquote_plus(obj["key"]), str(obj.get("eTag", "")).strip('"'),
                            obj.get("size"))
