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
    sequencer: str = ""
    event_time_ms: int = 0

    @property
    def idempotency_key(self) -> str:
        """Object-version identity: the reference pipeline's ``s3://bucket/key#etag``, plus the
        upload's place in the key's history (``@sequencer``, or ``@<event time in ms>``), so a
        duplicate delivery of one upload is skipped but the same bytes uploaded again after
        another version are a new version (A, B, then A again must end with A's rows)."""
        order = self.sequencer or (str(self.event_time_ms) if self.event_time_ms else "")
        return f"s3://{self.bucket}/{self.key}#{self.etag}" + (f"@{order}" if order else "")


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
        obj = d["object"]
        yield ObjectCreated(d["bucket"]["name"], obj["key"], str(obj.get("etag", obj.get("eTag", ""))).strip('"'),
                            obj.get("size"), str(obj.get("sequencer", "")), _ms(event.get("time")))
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
                            obj.get("size"), str(obj.get("sequencer", "")), _ms(record.get("eventTime")))


def _ms(stamp: Any) -> int:
    """An event time (ISO 8601, or epoch seconds) in milliseconds; 0 when absent or unreadable."""
    if stamp is None or stamp == "":
        return 0
    if isinstance(stamp, (int, float)):
        return int(stamp * 1000)
    from datetime import datetime

    try:
        return int(datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return 0
