"""The reference pipeline's acceptance checklist (SEED-NOTES steps 0-8), against any target:
the embedded endpoint (``local/target.py``) or a deployed stack (``aws/deployed.py``)."""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from elt_sdk import layout
from elt_sdk.plugins import Registry

OUTPUTS = ("bronze_bucket", "silver_bucket", "queue_url", "dlq_url", "ingest_lambda", "transform_lambda",
           "idempotency_table")
REQUIRED_OUTPUTS = OUTPUTS[:2] + ("queue_url", "ingest_lambda", "transform_lambda")


class Target(Protocol):
    description: str
    outputs: dict[str, str]
    bronze_prefix: str

    def client(self, service: str) -> Any: ...

    def describe_function(self, name: str) -> str:
        """Something that shows the function exists (its ARN or handler); raise if it does not."""

    def notification(self) -> tuple[bool, str]:
        """Does the bronze bucket notify ingest on the bronze prefix?"""

    def invoke_ingest(self, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the ingest function synchronously with ``event`` and return its result."""


@dataclass
class Check:
    step: int
    name: str
    status: str  # OK, WARN, FAIL
    detail: str

    def line(self) -> str:
        return f"[{self.step}] {self.status:<4} {self.name}: {self.detail}"


def run_checklist(target: Target, registry: Registry, *, window_s: float = 300, dataset: str = "shipments",
                  on_check: Callable[[Check], None] = lambda c: None) -> list[Check]:
    checks: list[Check] = []
    seed: dict[str, Any] = {}

    def record(step: int, name: str, fn: Callable[[], tuple[str, str]]) -> None:
        try:
            status, detail = fn()
        except Exception as exc:  # a failing step is a finding, not a crash
            status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
        checks.append(Check(step, name, status, detail))
        on_check(checks[-1])

    out = target.outputs

    def whoami():
        ident = target.client("sts").get_caller_identity()
        return "OK", f"Account={ident['Account']} Arn={ident['Arn']} ({target.description})"

    def outputs():
        missing = [k for k in REQUIRED_OUTPUTS if not out.get(k)]
        if missing:
            return "FAIL", f"missing output(s): {', '.join(missing)}"
        return "OK", " ".join(f"{k}={out[k]}" for k in OUTPUTS if out.get(k))

    def notification():
        ok, detail = target.notification()
        return ("OK" if ok else "FAIL"), detail

    def lambdas():
        return "OK", f"ingest={target.describe_function(out['ingest_lambda'])} " \
                     f"transform={target.describe_function(out['transform_lambda'])}"

    def table():
        ddb = target.client("dynamodb")
        ttl = ddb.describe_time_to_live(TableName=out["idempotency_table"])["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            return "FAIL", f"TTL is {ttl.get('TimeToLiveStatus')}"
        items = ddb.scan(TableName=out["idempotency_table"], Limit=5).get("Items", [])
        bad = [i for i in items if "pk" not in i or "status" not in i]
        if bad:
            return "FAIL", f"items without pk/status: {bad[:1]}"
        return "OK", f"TTL {ttl['TimeToLiveStatus']} on {ttl.get('AttributeName')}; " \
                     f"{len(items)} sample item(s) with pk/status"

    def queues():
        sqs = target.client("sqs")
        depth = lambda url: int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])  # noqa: E731
                                ["Attributes"]["ApproximateNumberOfMessages"])
        main = depth(out["queue_url"])
        dlq = depth(out["dlq_url"]) if out.get("dlq_url") else 0
        status = "OK" if dlq == 0 else "WARN"
        return status, f"queue={main} dlq={dlq}" + ("" if dlq == 0 else " (inspect with 'elt-sdk dlq' or the console)")

    def seed_upload():
        ds = registry.dataset(dataset)
        rng = random.Random(time.time_ns())
        records = registry.hooks(ds).elt_fake_records(dataset=ds, rng=rng, count=50)
        now = datetime.now(timezone.utc)
        for r in records:  # fresh content: today's partition, a new content identity
            r[ds.event_time_field] = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        key = f"{ds.bronze_prefix}verify/verify-{now.strftime('%Y%m%dT%H%M%S%fZ')}.jsonl"
        target.client("s3").put_object(Bucket=out["bronze_bucket"], Key=key,
                                       Body="".join(json.dumps(r) + "\n" for r in records).encode())
        seed.update(key=key, at=now, dt=now.strftime("%Y-%m-%d"))
        return "OK", f"s3://{out['bronze_bucket']}/{key}"

    def silver():
        if not seed:
            return "FAIL", "no seed upload"
        s3 = target.client("s3")
        prefix = layout.silver_partition(dataset, seed["dt"])
        deadline = time.time() + window_s
        while True:
            objs = s3.list_objects_v2(Bucket=out["silver_bucket"], Prefix=prefix).get("Contents", [])
            fresh = [o for o in objs if o["LastModified"] >= seed["at"].replace(microsecond=0)]
            if fresh:
                return "OK", f"{len(fresh)} new Parquet object(s) under s3://{out['silver_bucket']}/{prefix}"
            if time.time() > deadline:
                return "FAIL", f"no new Parquet under {prefix} within {window_s:.0f}s"
            time.sleep(min(5.0, max(window_s / 50, 0.2)))

    def idempotency():
        s3 = target.client("s3")
        key = f"verify/idempotency/{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}.jsonl"
        ds = registry.dataset(dataset)
        body = "".join(json.dumps(r) + "\n" for r in registry.hooks(ds).elt_fake_records(
            dataset=ds, rng=random.Random(time.time_ns()), count=5)).encode()
        put = s3.put_object(Bucket=out["bronze_bucket"], Key=key, Body=body)  # outside the notified prefix
        event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                              "s3": {"bucket": {"name": out["bronze_bucket"]},
                                     "object": {"key": key, "size": len(body), "eTag": put["ETag"].strip('"')}}}]}
        first = target.invoke_ingest(event)
        second = target.invoke_ingest(event)
        if second.get("skipped", 0) >= 1 and first.get("enqueued", 0) >= 1:
            return "OK", f"OK: second invoke skipped (first enqueued={first['enqueued']}, second skipped={second['skipped']})"
        return "FAIL", f"second invoke not skipped: first={first}, second={second}"

    record(0, "who am I", whoami)
    record(1, "deployment outputs", outputs)
    if any(c.status == "FAIL" for c in checks):
        return checks
    record(2, "bronze notification -> ingest", notification)
    record(3, "lambdas", lambdas)
    record(4, "idempotency table", table)
    record(5, "queue and DLQ", queues)
    record(6, "seed upload", seed_upload)
    record(7, "silver appears", silver)
    record(8, "idempotency: same event twice", idempotency)
    return checks
