"""``elt-sdk invoke`` runs one handler on an event file against a stack; ``elt-sdk event`` prints
realistic events to start from (the ``sam local invoke -e`` / ``sam local generate-event`` loop)."""
from __future__ import annotations

import hashlib
import json
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, state
from elt_sdk.cli.targeting import TargetSpec, target_options


@click.command("invoke")
@click.argument("function", type=click.Choice(["ingest", "transform"]))
@click.option("--event", "-e", "event_file", required=True, type=click.File("r"),
              help="The event (JSON); '-' reads stdin. 'elt-sdk event s3-put|sqs' prints one.")
@click.option("--remote", is_flag=True, help="Invoke the deployed function instead of running the handler here.")
@target_options
def command(function: str, event_file: Any, remote: bool, target: TargetSpec) -> None:
    """Run the ingest or transform handler once on an event, against the targeted stack's
    resources (the local stack by default): the handler code of this install, in this process,
    as Lambda would call it, its logs on stderr and its result on stdout.

    ingest takes an S3 notification (it claims the object and enqueues its pointer); transform
    takes an SQS event of pointer messages (it commits the object's rows; failures come back in
    batchItemFailures). Exit codes: 0 done, 1 the handler raised or reported failures, 2 bad
    arguments.
    """
    from elt_sdk import logs

    try:
        event = json.load(event_file)
    except ValueError as exc:
        raise UsageProblem(f"the event is not JSON: {exc}") from None
    t = target.resolve()
    if remote and t.kind != "deployed":
        raise UsageProblem("--remote invokes a deployed function: name the stack (--stack-name/--region/--profile)")
    logs.configure(sys.stderr, level="INFO")
    try:
        result = t.invoke(function, event, remote=remote)
    except Exception as exc:  # the handler's own failure: what Lambda would report
        raise RunFailure(f"{function} raised {type(exc).__name__}: {exc}") from None
    emit_json(result)
    if function == "transform" and (result or {}).get("batchItemFailures"):
        raise RunFailure(f"{len(result['batchItemFailures'])} message(s) failed (they would be retried)")


@click.group("event")
def event() -> None:
    """Print a realistic event for 'elt-sdk invoke' (edit it, or pipe it: ... | elt-sdk invoke ingest -e -)."""


def _object(target: TargetSpec, bucket: str | None, key: str, file: Path | None, etag: str | None,
            size: int | None) -> tuple[str, str | None, int | None]:
    """The bucket, etag and size: given, from a local file, or read from the targeted stack."""
    if file is not None:
        data = file.read_bytes()
        etag, size = etag or hashlib.md5(data).hexdigest(), len(data) if size is None else size  # noqa: S324 - S3's ETag
    if bucket and etag and size is not None:
        return bucket, etag, size
    from elt_sdk.local import stack

    if target.given or stack.read_state() is not None:
        t = target.resolve()
        bucket = bucket or t.bronze_bucket
        if etag is None or size is None:
            try:
                head = t.client("s3").head_object(Bucket=bucket, Key=key)
                etag, size = etag or head["ETag"].strip('"'), head["ContentLength"] if size is None else size
            except Exception:  # noqa: BLE001 - not uploaded yet: leave them out (ingest looks them up)
                pass
    return bucket or state().settings.bronze_bucket, etag, size


@event.command("s3-put")
@click.option("--key", "-k", required=True, help="The object key (e.g. bronze/shipments/a.jsonl).")
@click.option("--bucket", "-b", default=None, help="Default: the targeted stack's bronze bucket.")
@click.option("--file", "file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Take size and ETag from this local file (as uploaded in one part).")
@click.option("--etag", default=None)
@click.option("--size", type=click.IntRange(0), default=None)
@target_options
def s3_put(key: str, bucket: str | None, file: Path | None, etag: str | None, size: int | None,
           target: TargetSpec) -> None:
    """An S3 ObjectCreated:Put notification, as S3 sends it to the ingest function. Size and ETag
    come from --file, the options, or the object on the targeted stack; left out when unknown
    (ingest then reads them from S3, as for any hand-made event)."""
    bucket, etag, size = _object(target, bucket, key, file, etag, size)
    now = datetime.now(timezone.utc)
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "sequencer": f"{time.time_ns():016X}"}
    if size is not None:
        obj["size"] = size
    if etag:
        obj["eTag"] = etag
    emit_json({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": state().settings.region,
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "eventName": "ObjectCreated:Put", "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "bronze-to-ingest",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"}, "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj}}]})


@event.command("sqs")
@click.option("--key", "-k", required=True, help="The object key the pointer names.")
@click.option("--bucket", "-b", default=None, help="Default: the targeted stack's bronze bucket.")
@click.option("--dataset", "-d", default=None, help="Default: routed by the key, as ingest does.")
@click.option("--file", "file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Take size and ETag from this local file.")
@click.option("--etag", default=None)
@click.option("--size", type=click.IntRange(0), default=None)
@click.option("--force", is_flag=True, help="Transform even if this version is already committed (as a replay does).")
@click.option("--receive-count", type=click.IntRange(1), default=1, show_default=True)
@target_options
def sqs(key: str, bucket: str | None, dataset: str | None, file: Path | None, etag: str | None, size: int | None,
        force: bool, receive_count: int, target: TargetSpec) -> None:
    """An SQS event holding one pointer message (version 2), as the event source mapping hands
    it to the transform function. The ETag must be the object's: the transform reads exactly
    that version."""
    from elt_sdk.aws.messages import ObjectPointer

    bucket, etag, size = _object(target, bucket, key, file, etag, size)
    if not etag or size is None:
        raise UsageProblem(f"no ETag/size for {key}: give --file, --etag and --size, or upload it first ('elt-sdk put')")
    settings = state().settings
    if dataset is None:
        routed = state().registry.route_key(key)
        dataset = routed.name if routed else None
    now_ms = int(time.time() * 1000)
    body = ObjectPointer(bucket=bucket, key=key, etag=etag, size=size, dataset=dataset, chunk_end=size,
                         modified_ms=now_ms, force=force).to_json()
    emit_json({"Records": [{
        "messageId": str(uuid.uuid4()), "receiptHandle": "AQEB" + uuid.uuid4().hex, "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": str(now_ms),
                       "SenderId": "AROAEXAMPLE:ingest", "ApproximateFirstReceiveTimestamp": str(now_ms)},
        "messageAttributes": {}, "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's digest
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{settings.region}:123456789012:{settings.queue_name}",
        "awsRegion": settings.region}]})
