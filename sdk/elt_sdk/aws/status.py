"""What a stack is doing: queues, recent objects, rows per dataset, last errors (``elt-sdk status``).

Everything is read from the stack itself, so it works the same on the local stack and on AWS:
queue attributes (depth, in flight, delayed); the age of the oldest message from CloudWatch
(``ApproximateAgeOfOldestMessage``) or, on the local stack, from what the stack records; objects
*ingested* from the idempotency table (a claim's time is its expiry minus the TTL), *transformed*
from the object manifests (``_elt/objects/``, ``current.committed_at``), *failed* from the failure
markers (``quarantine/_failed/``) and the DLQ; rows written and quarantined per dataset from the
manifests' counts (the current version of each object committed in the window); last errors from
the markers and the DLQ messages' ``elt_error`` attribute.
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

from elt_sdk import layout
from elt_sdk.aws.idempotency.dynamodb import TTL_ATTR
from elt_sdk.aws.target import DEPLOYED, LOCAL, StackTarget

QUEUE_ATTRS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
               "ApproximateNumberOfMessagesDelayed")
MAX_MANIFESTS = 20_000
"""Manifests read per call at most (one GET each); past it the figures say they are partial."""


def queue_counts(sqs: Any, url: str) -> dict[str, int]:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(QUEUE_ATTRS))["Attributes"]
    return {"depth": int(attrs.get("ApproximateNumberOfMessages", 0)),
            "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            "delayed": int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))}


def queues(target: StackTarget) -> dict[str, Any]:
    """The cheap part: queue depths (and the local stack's ingest backlog). ``drained`` is true
    when no message waits or is being worked on anywhere the stack can tell."""
    sqs = target.client("sqs")
    main = queue_counts(sqs, target.require("queue_url")[0])
    dlq = queue_counts(sqs, target.outputs["dlq_url"]) if target.outputs.get("dlq_url") else None
    events = queue_counts(sqs, target.outputs["events_queue_url"]) if target.outputs.get("events_queue_url") else None
    out: dict[str, Any] = {"queue_depth": main["depth"], "in_flight": main["in_flight"], "delayed": main["delayed"],
                           "dlq_depth": dlq["depth"] + dlq["in_flight"] if dlq else 0}
    if events is not None:
        out["ingest_backlog"] = events["depth"] + events["in_flight"] + events["delayed"]
    if target.outputs.get("commit_queue_url"):  # Iceberg silver: objects handed off, not yet committed
        commits = queue_counts(sqs, target.outputs["commit_queue_url"])
        out["commit_backlog"] = commits["depth"] + commits["in_flight"] + commits["delayed"]
        if target.outputs.get("commit_dlq_url"):
            commit_dlq = queue_counts(sqs, target.outputs["commit_dlq_url"])
            out["commit_dlq_depth"] = commit_dlq["depth"] + commit_dlq["in_flight"]
    out["drained"] = (main["depth"] + main["in_flight"] + main["delayed"] + out.get("ingest_backlog", 0)
                      + out.get("commit_backlog", 0)) == 0
    return out


def oldest_age(target: StackTarget, url: str, local_stats: dict[str, Any] | None) -> tuple[float | None, str]:
    """Seconds since the oldest message of queue ``url`` was sent, and where that came from."""
    if local_stats is not None:
        age = (local_stats.get("oldest_message_age_s") or {}).get(url)
        if age is not None:
            return float(age), "local stack"
    try:
        cw = target.client("cloudwatch")
        now = datetime.now(timezone.utc)
        points = cw.get_metric_statistics(Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
                                          Dimensions=[{"Name": "QueueName", "Value": url.rstrip("/").rsplit("/", 1)[-1]}],
                                          StartTime=now - timedelta(minutes=15), EndTime=now, Period=60,
                                          Statistics=["Maximum"]).get("Datapoints", [])
        if points:
            latest = max(points, key=lambda p: p["Timestamp"])
            return float(latest["Maximum"]), "cloudwatch"
    except Exception:  # noqa: BLE001 - no CloudWatch rights, or none at all: the age is unknown
        pass
    return None, "unknown"


def peek(sqs: Any, url: str, n: int = 10) -> list[dict[str, Any]]:
    """Up to ``n`` messages of a queue without taking them (visibility 0). Only for queues
    without a redrive policy (the DLQ): a receive counts as a delivery."""
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=min(n, 10), AttributeNames=["All"],
                               MessageAttributeNames=["All"], VisibilityTimeout=0, WaitTimeSeconds=0).get("Messages", [])
    return msgs


def _recent(s3: Any, bucket: str, prefix: str, cutoff: datetime | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Objects under ``prefix`` modified since ``cutoff`` (newest first), at most ``limit``."""
    found: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found += [o for o in page.get("Contents", []) if cutoff is None or o["LastModified"] >= cutoff]
    found.sort(key=lambda o: o["LastModified"], reverse=True)
    return found[:limit], len(found) > limit


def _get_json(s3: Any, bucket: str, keys: list[str]) -> list[dict[str, Any]]:
    def one(key: str) -> dict[str, Any] | None:
        try:
            return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception:  # noqa: BLE001 - removed meanwhile, or not ours
            return None

    with ThreadPoolExecutor(8) as pool:
        return [d for d in pool.map(one, keys) if d is not None]


def ingested_since(target: StackTarget, cutoff_s: float | None, max_items: int = 100_000) -> dict[str, int]:
    """Claims in the idempotency table made since ``cutoff_s`` (a claim's time is its expiry
    minus the TTL setting), by status."""
    table = target.outputs.get("idempotency_table")
    if not table:
        return {}
    ttl = target.settings.idempotency_ttl_seconds
    ddb = target.client("dynamodb")
    out = {"completed": 0, "in_progress": 0}
    seen = 0
    for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="#s, #e",
                                                    ExpressionAttributeNames={"#s": "status", "#e": TTL_ATTR}):
        for item in page.get("Items", []):
            seen += 1
            claimed = int(item.get(TTL_ATTR, {}).get("N", 0)) - ttl
            if cutoff_s is None or claimed >= cutoff_s:
                out["completed" if item.get("status", {}).get("S") == "COMPLETED" else "in_progress"] += 1
        if seen >= max_items:
            out["partial"] = 1
            break
    return out


def gather(target: StackTarget, *, window_s: float | None = 86400.0, local_stats: dict[str, Any] | None = None,
           errors: int = 5) -> dict[str, Any]:
    """The whole status of ``target`` over the last ``window_s`` seconds (None: everything)."""
    now = time.time()
    cutoff = datetime.fromtimestamp(now - window_s, timezone.utc) if window_s is not None else None
    out: dict[str, Any] = {"target": target.description, "window_s": window_s, "at": now, **queues(target)}
    out["oldest_message_age_s"], out["oldest_message_age_source"] = oldest_age(
        target, target.outputs["queue_url"], local_stats if target.kind == LOCAL else None)
    s3 = target.client("s3")
    # objects transformed: manifests committed in the window, and their counts per dataset
    listed, partial = _recent(s3, target.silver_bucket, f"{layout.META_PREFIX}objects/", cutoff, MAX_MANIFESTS)
    manifests = _get_json(s3, target.silver_bucket, [o["Key"] for o in listed])
    datasets: dict[str, dict[str, Any]] = {}
    transformed = 0
    for m in manifests:
        cur = m.get("current") or {}
        if not cur or (cutoff is not None and cur.get("committed_at", 0) < cutoff.timestamp()):
            continue
        transformed += 1
        for name, c in (cur.get("counts") or {}).items():
            d = datasets.setdefault(name, {"objects": 0, "records_in": 0, "written": 0, "quarantined": 0})
            d["objects"] += 1
            for k in ("records_in", "written", "quarantined"):
                d[k] += int(c.get(k, 0))
    for d in datasets.values():
        d["quarantine_ratio"] = round(d["quarantined"] / d["records_in"], 4) if d["records_in"] else 0.0
    # objects failed: failure markers in the window (and the DLQ)
    markers_listed, _ = _recent(s3, target.quarantine_bucket, f"{layout.QUARANTINE_PREFIX}{layout.FAILED}/", cutoff,
                                MAX_MANIFESTS)
    markers = _get_json(s3, target.quarantine_bucket, [o["Key"] for o in markers_listed[:errors]])
    out["objects"] = {"ingested": ingested_since(target, cutoff.timestamp() if cutoff else None),
                      "transformed": transformed, "failed": len(markers_listed),
                      **({"partial": True} if partial else {})}
    out["datasets"] = dict(sorted(datasets.items()))
    last: list[dict[str, Any]] = [{"source": "marker", "key": m.get("key"), "error": m.get("error"),
                                   "stage": m.get("stage"), "at": m.get("at")} for m in markers]
    if target.outputs.get("dlq_url") and out["dlq_depth"]:
        for msg in peek(target.client("sqs"), target.outputs["dlq_url"], errors):
            body = _pointer_key(msg.get("Body", ""))
            err = msg.get("MessageAttributes", {}).get("elt_error", {}).get("StringValue")
            sent = int(msg.get("Attributes", {}).get("SentTimestamp", 0)) / 1000
            last.append({"source": "dlq", "message_id": msg["MessageId"], "key": body, "error": err, "at": sent})
    last.sort(key=lambda e: e.get("at") or 0, reverse=True)
    out["errors"] = last[:errors]
    if target.kind == LOCAL and local_stats:
        out["local_stack"] = {k: local_stats.get(k) for k in ("ingest", "transform", "ingest_given_up")}
    if target.kind == DEPLOYED and target.outputs.get("ingest_failures_url"):
        out["ingest_failures"] = queue_counts(target.client("sqs"), target.outputs["ingest_failures_url"])["depth"]
    return out


def _pointer_key(body: str) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict):
        return data.get("origin") or data.get("key")
    return None
