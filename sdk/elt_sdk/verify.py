"""The reference pipeline's acceptance checklist (SEED-NOTES steps 0-11), against any target:
the embedded endpoint (``local/target.py``), the local stack, or a deployed stack
(``aws/deployed.py``). Steps 9-11 check what the target has: the Glue tables and their partition
projection (and the reference's three Athena queries, run through DuckDB on the same files), the
quality gate (its state machine's recent runs, or the gate's check run here), the dashboard and
alarms; a module the target lacks is SKIP, not a failure."""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Protocol

from elt_sdk import layout
from elt_sdk.plugins import Registry

OUTPUTS = ("bronze_bucket", "silver_bucket", "queue_url", "dlq_url", "ingest_lambda", "transform_lambda",
           "idempotency_table")
REQUIRED_OUTPUTS = OUTPUTS[:2] + ("queue_url", "ingest_lambda", "transform_lambda")


STEPS = {0: "who am I", 1: "deployment outputs", 2: "bronze notification -> ingest", 3: "lambdas",
         4: "idempotency table", 5: "queue and DLQ", 6: "seed upload", 7: "silver appears",
         8: "idempotency: same event twice", 9: "Glue tables and Athena queries", 10: "quality gate",
         11: "dashboard and alarms"}
NEEDS = {7: (6,), 10: (6, 7)}
"""Steps that need others' results (silver needs the seed; the gate checks the seed's partition)."""


class Target(Protocol):
    description: str
    outputs: dict[str, str]
    bronze_prefix: str
    kind: str
    settings: Any

    def stores(self) -> tuple[Any, Any]:
        """The silver and quarantine buckets as ``Store``s."""

    def s3_filesystem(self) -> Any:
        """pyarrow's S3 filesystem on the target (the reference queries read silver through it)."""

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
    status: str  # OK, WARN, SKIP (the target lacks the module), FAIL
    detail: str

    def line(self) -> str:
        return f"[{self.step}] {self.status:<4} {self.name}: {self.detail}"


def selected(steps: Iterable[int] | None) -> list[int]:
    """The steps to run for ``--step`` (all when none), with the steps they need; 0 and 1 (who
    and what is checked) always run."""
    if not steps:
        return sorted(STEPS)
    out = {0, 1}
    for step in steps:
        if step not in STEPS:
            raise ValueError(f"no step {step}: steps are 0-{max(STEPS)}")
        out |= {step, *NEEDS.get(step, ())}
    return sorted(out)


def run_checklist(target: Target, registry: Registry, *, window_s: float = 300, dataset: str = "shipments",
                  on_check: Callable[[Check], None] = lambda c: None, steps: Iterable[int] | None = None) -> list[Check]:
    checks: list[Check] = []
    seed: dict[str, Any] = {}
    wanted = selected(steps)

    def record(step: int, name: str, fn: Callable[[], tuple[str, str]]) -> None:
        if step not in wanted:
            return
        try:
            status, detail = fn()
        except Exception as exc:  # a failing step is a finding, not a crash
            status, detail = "FAIL", f"{type(exc).__name__}: {exc}"
        checks.append(Check(step, name, status, detail))
        on_check(checks[-1])

    out = target.outputs
    iceberg = bool(getattr(target, "iceberg", False))  # silver is Iceberg tables (a committer's queue)

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
        extra = ""
        if iceberg:
            commits, commit_dlq = depth(out["commit_queue_url"]), depth(out["commit_dlq_url"])
            extra, dlq = f" commits={commits} commit_dlq={commit_dlq}", dlq + commit_dlq
        status = "OK" if dlq == 0 else "WARN"
        return status, f"queue={main} dlq={dlq}{extra}" + ("" if dlq == 0 else " (inspect with 'elt-sdk dlq list', "
                                                                              "retry with 'elt-sdk dlq redrive')")

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

    def silver_iceberg():
        from pyiceberg.expressions import EqualTo

        from elt_sdk.commit import ELT_SOURCE

        warehouse = target.warehouse()  # type: ignore[attr-defined]
        deadline = time.time() + window_s
        while True:
            table = warehouse.load(dataset)
            rows = table.scan(row_filter=EqualTo(ELT_SOURCE, seed["key"])).to_arrow().num_rows if table else 0
            if rows:
                return "OK", f"{rows} row(s) of the seed object in Iceberg table {warehouse.namespace}.{dataset} " \
                             f"(snapshot {table.current_snapshot().snapshot_id})"
            if time.time() > deadline:
                return "FAIL", f"no rows of the seed object in {warehouse.namespace}.{dataset} within {window_s:.0f}s " \
                               "(is the committer running? 'elt-sdk status', the commit DLQ)"
            time.sleep(min(5.0, max(window_s / 50, 0.2)))

    def silver():
        if not seed:
            return "FAIL", "no seed upload"
        if iceberg:
            return silver_iceberg()
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

    def iceberg_tables():
        from elt_sdk import layout as lay
        from elt_sdk import query
        from elt_sdk.commit import ELT_SOURCE, ELT_VERSION

        warehouse = target.warehouse()  # type: ignore[attr-defined]
        names = warehouse.datasets()
        for name in names:
            table = warehouse.load(name)
            fields = [f.name for f in table.spec().fields]
            columns = {f.name for f in table.schema().fields}
            if fields != [lay.ICEBERG_PARTITION] or str(table.spec().fields[0].transform) != "day":
                return "FAIL", f"{warehouse.namespace}.{name}: partitioned by {table.spec()}, not day(event time) as dt"
            if not {ELT_SOURCE, ELT_VERSION} <= columns or "schema.name-mapping.default" not in table.properties:
                return "FAIL", f"{warehouse.namespace}.{name}: no {ELT_SOURCE}/{ELT_VERSION} columns or no name mapping"
        notes = [f"Iceberg tables in {warehouse.namespace}: {', '.join(names) or 'none yet'} (day partitions, "
                 "object columns, name mapping)"]
        if "shipments" in registry.datasets:
            con = query.connect(dict(registry.datasets), iceberg=warehouse, databases=[warehouse.namespace])
            counts = [len(query.run(con, sql.format(table=f'"{warehouse.namespace}".shipments'))[1])
                      for _, sql in query.REFERENCE_QUERIES]
            notes.append(f"the reference's three queries ran (DuckDB on each table's current snapshot): {counts} row(s)")
        return "OK", "; ".join(notes)

    def glue():
        from elt_sdk import query

        if iceberg:
            return iceberg_tables()
        notes = []
        db = out.get("glue_database")
        if db:
            tables = {t["Name"]: t for page in target.client("glue").get_paginator("get_tables").paginate(DatabaseName=db)
                      for t in page.get("TableList", [])}
            for name in sorted(registry.datasets):
                t = tables.get(name)
                if t is None:
                    return "FAIL", f"no table {db}.{name}"
                params = t.get("Parameters", {})
                keys = [k["Name"] for k in t.get("PartitionKeys", [])]
                if params.get("projection.enabled") != "true" or params.get("projection.dt.type") != "date" \
                        or "dt=${dt}" not in params.get("storage.location.template", "") or keys != ["dt"]:
                    return "FAIL", f"{db}.{name}: partition projection on dt is not set up: {params}"
            notes.append(f"database {db}: {len(registry.datasets)} table(s) with dt projection")
        else:
            notes.append("no Glue database on this target (glue_enabled off, or local)")
        if "shipments" in registry.datasets:
            dbname = db or query.database_name(target.settings.name_prefix)
            con = query.connect(dict(registry.datasets), filesystem=target.s3_filesystem(), bucket=out["silver_bucket"],
                                databases=[dbname])
            counts = []
            for _, sql in query.REFERENCE_QUERIES:
                counts.append(len(query.run(con, sql.format(table=f'"{dbname}".shipments'))[1]))
            notes.append(f"the reference's three queries ran (DuckDB on the silver files): {counts} row(s)")
        return "OK", "; ".join(notes)

    def quality_gate():
        if iceberg:
            return "SKIP", "the quality gate reads plain Parquet partitions (not yet Iceberg tables)"
        arn = out.get("quality_gate_state_machine")
        if arn:
            runs = target.client("stepfunctions").list_executions(stateMachineArn=arn, maxResults=5)["executions"]
            return "OK", f"state machine {arn}: {len(runs)} recent execution(s)" + (
                ": " + ", ".join(f"{r['name']} {r['status']}" for r in runs) if runs else " (start one with "
                "'elt-sdk dq check --start --dataset D --dt DATE')")
        from elt_sdk.quality import check_partition

        ds = registry.dataset(dataset)
        if not ds.quality_rules:
            return "SKIP", f"no gate state machine on this target, and {dataset} declares no rules"
        verdict = check_partition(target.stores()[0], ds, seed.get("dt") or datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                                  results_prefix=None, marker=False)
        status = "OK" if verdict["passed"] else "WARN"
        return status, f"no gate state machine on this target (quality_enabled off, or local); the gate's check " \
                       f"ran here on {dataset} dt={verdict['dt']}: {verdict['rows']} rows, " \
                       + ("passed" if verdict["passed"] else "failed: " + "; ".join(verdict["failed"]))

    def dashboard():
        name = out.get("dashboard")
        if not name:
            return "SKIP", "no dashboard on this target (observability_enabled off, or local: the embedded endpoint " \
                           "has no CloudWatch dashboards)"
        cw = target.client("cloudwatch")
        cw.get_dashboard(DashboardName=name)
        ours = {out.get(k, "").rstrip("/").rsplit("/", 1)[-1] for k in ("queue_url", "dlq_url", "ingest_failures_url")}
        ours |= {out.get("ingest_lambda", ""), out.get("transform_lambda", "")}
        ours.discard("")
        alarms = [a for page in cw.get_paginator("describe_alarms").paginate() for a in page.get("MetricAlarms", [])
                  if any(d.get("Value") in ours for d in a.get("Dimensions", []))]
        states: dict[str, int] = {}
        for a in alarms:
            states[a["StateValue"]] = states.get(a["StateValue"], 0) + 1
        return ("OK" if alarms else "WARN"), f"OK dashboard={name}; {len(alarms)} alarm(s) on the pipeline's " \
                                              f"functions and queues {states}"

    record(0, "who am I", whoami)
    record(1, "deployment outputs", outputs)
    if any(c.status == "FAIL" for c in checks):
        return checks
    record(2, STEPS[2], notification)
    record(3, STEPS[3], lambdas)
    record(4, STEPS[4], table)
    record(5, STEPS[5], queues)
    record(6, STEPS[6], seed_upload)
    record(7, STEPS[7], silver)
    record(8, STEPS[8], idempotency)
    record(9, STEPS[9], glue)
    record(10, STEPS[10], quality_gate)
    record(11, STEPS[11], dashboard)
    return checks
