"""Fault injection over the local pipeline: random sequences of uploads (valid, invalid, mixed,
poison, overwritten, deleted), duplicate S3 events, duplicate and concurrent SQS deliveries,
transforms killed mid-object, S3 and DynamoDB throttling and 500s (botocore event hooks), replays
and DLQ redrives — then, once the queues drain, silver must be exact.

The same machine runs with ``silver_format = iceberg`` (a sqlite catalog, the tables on the
embedded endpoint's S3): the transform hands each object to the commit queue, a ``commit`` rule
runs the committer (sometimes twice at once on the same messages, sometimes dying after its
snapshot and before the queue heard of it), and one more invariant holds: every snapshot the
table ever had holds whole objects only, and no key's version goes back from one snapshot to the
next (the final one holds each key's newest version, as the checks below say).

Invariants, per bronze key:
- silver holds the rows of at most one version of the key, every valid record of it exactly
  once, and no other rows; quarantine holds exactly that version's invalid records;
- if the key's newest upload is a readable, non-poison version that was not deleted, silver
  holds exactly that version; if it is poison, its pointer is in the DLQ and a marker says why;
- the main queue is empty and the DLQ holds only poison objects' messages.

CI runs a fixed seed and a small budget; more on demand:
``ELT_FAULTS_EXAMPLES=200 ELT_FAULTS_STEPS=40 pytest tests/test_fault_injection.py -s``.
A failure reports the sequence as found: shrinking it runs hundreds of sequences against the
endpoint (minutes, and CI looked hung), so it is on demand too: ``ELT_FAULTS_SHRINK=1``.
"""
from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import random
import shutil
import tempfile
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import boto3
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

from elt_sdk import layout
from elt_sdk.aws import handlers
from elt_sdk.local.endpoint import EmbeddedEndpoint
from elt_sdk.local.esm import LambdaContext
from elt_sdk.local.provision import provision
from elt_sdk.settings import Settings

EXAMPLES = int(os.environ.get("ELT_FAULTS_EXAMPLES", "20"))
STEPS = int(os.environ.get("ELT_FAULTS_STEPS", "30"))
ICEBERG_EXAMPLES = int(os.environ.get("ELT_FAULTS_ICEBERG_EXAMPLES", "12"))
PHASES = [Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if os.environ.get("ELT_FAULTS_SHRINK") else [])
KEYS = [f"bronze/shipments/k{i}.jsonl" for i in range(4)] + ["bronze/mixed/m0.jsonl"]
FIGURES: Counter = Counter()


class Killed(BaseException):
    """The process running the handler died (a Lambda timeout or OOM): no cleanup runs."""


class Faults:
    """botocore event hooks that fail the calls of the thread they are armed on."""

    def __init__(self) -> None:
        self.local = threading.local()

    def arm(self, kind: str | None, after: int) -> None:
        self.local.kind, self.local.after = kind, after

    def disarm(self) -> None:
        self.local.kind = None

    def __call__(self, event_name: str, **kwargs) -> None:
        kind = getattr(self.local, "kind", None)
        if kind is None:
            return
        self.local.after -= 1
        if self.local.after > 0:
            return
        service, operation = event_name.split(".")[1:3]
        if kind == "kill":  # a dead process makes no more calls: every later one on this thread dies too
            if self.local.after == 0:
                FIGURES["fault: kill"] += 1
            raise Killed(f"killed at {service}.{operation}")
        self.local.kind = None  # one fault per arming
        FIGURES[f"fault: {kind}"] += 1
        code, status = {"throttle": ("SlowDown" if service == "s3" else "ThrottlingException", 503),
                        "500": ("InternalError", 500)}[kind]
        raise ClientError({"Error": {"Code": code, "Message": f"injected {kind}"},
                           "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


FAULTS = Faults()


@dataclass
class Version:
    number: int
    kind: str  # valid | invalid | mixed | poison | empty
    valid: list[str] = field(default_factory=list)  # shipment ids
    invalid: int = 0


@dataclass
class KeyModel:
    versions: list[Version] = field(default_factory=list)
    deleted: bool = False


def body_for(key: str, version: Version, rng: random.Random) -> bytes:
    if version.kind == "poison":
        return b"\x1f\x8b\x08\x00 not really gzip"
    if version.kind == "empty":
        return b""
    tag = key.rsplit("/", 1)[1].split(".")[0]
    lines = []
    n = rng.randint(1, 6)
    for i in range(n):
        sid = f"{tag}-v{version.number}-{i}"
        good = version.kind == "valid" or (version.kind == "mixed" and rng.random() < 0.6)
        rec = {"record_type": "shipments", "event_time": f"2025-06-{1 + rng.randrange(3):02d}T{rng.randrange(24):02d}:00:00Z",
               "shipment_id": sid, "origin": "Oslo", "destination": "Rome", "carrier": "DHL",
               "weight_kg": round(rng.uniform(0.1, 50), 2)}
        if good:
            version.valid.append(sid)
            lines.append(json.dumps(rec).encode())
        else:
            version.invalid += 1
            lines.append(rng.choice([json.dumps({**rec, "weight_kg": "heavy"}).encode(), json.dumps(rec).encode()[:-9],
                                     b"\xff\xfe garbage"]))
    body = b"\n".join(lines) + b"\n"
    return gzip.compress(body, mtime=0) if rng.random() < 0.25 else body


def invoke(run: Callable[[str, str | None], None], fault: str | None, twice: bool, figure: str) -> None:
    """``run("a", fault)``; with ``twice``, also ``run("b", None)`` at the same time (``figure`` counts it)."""
    if not twice:
        run("a", fault)
        return
    threads = [threading.Thread(target=run, args=(n, fault if n == "a" else None)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    FIGURES[figure] += 1


class PipelineMachine(RuleBasedStateMachine):
    endpoint: EmbeddedEndpoint
    silver_format = "parquet"

    @initialize(seed=st.integers(0, 2**32 - 1))
    def provision(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.settings = Settings(name_prefix=f"f{uuid.uuid4().hex[:10]}", region="us-east-2", max_receive_count=5,
                                 silver_format=self.silver_format)
        self.catalog_dir = tempfile.mkdtemp(prefix="elt-faults-") if self.iceberg else None
        self.res = provision(self.settings, self.endpoint.client,
                             iceberg_catalog=f"sqlite:///{self.catalog_dir}/catalog.db" if self.iceberg else "")
        self.saved_env = {k: os.environ.get(k) for k in self.res.handler_environment(self.settings)}
        os.environ.update(self.res.handler_environment(self.settings))
        handlers.reset()
        self.s3, self.sqs = self.endpoint.client("s3"), self.endpoint.client("sqs")
        self.model: dict[str, KeyModel] = {k: KeyModel() for k in KEYS}
        self.events: dict[str, dict] = {}  # the last S3 event of each key
        self.faulted: Counter = Counter()  # faults per message id (an innocent object must never reach the DLQ)
        FIGURES["sequences"] += 1

    def teardown(self) -> None:
        if not hasattr(self, "res"):
            return
        try:
            self.drain()
            self.check()
        finally:
            FAULTS.disarm()
            for k, v in self.saved_env.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
            handlers.reset()
            if self.catalog_dir:
                shutil.rmtree(self.catalog_dir, ignore_errors=True)

    @property
    def iceberg(self) -> bool:
        return self.silver_format == "iceberg"

    # -- the world ---------------------------------------------------------------------------------

    @rule(key=st.sampled_from(KEYS), kind=st.sampled_from(["valid", "valid", "invalid", "mixed", "mixed", "poison", "empty"]))
    def upload(self, key: str, kind: str) -> None:
        m = self.model[key]
        version = Version(len(m.versions) + 1, kind)
        if key.startswith("bronze/mixed/") and kind == "poison":
            version.kind = "valid"  # routed by record_type: keep it simple and readable
        body = body_for(key, version, self.rng)
        self.s3.put_object(Bucket=self.res.bronze_bucket, Key=key, Body=body)
        m.versions.append(version)
        m.deleted = False
        FIGURES["uploads"] += 1

    @rule(key=st.sampled_from(KEYS))
    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=self.res.bronze_bucket, Key=key)
        self.model[key].deleted = True

    @rule(concurrently=st.booleans())
    def ingest(self, concurrently: bool) -> None:
        """Deliver pending S3 notifications to ingest (sometimes two invocations at once, with
        injected throttling)."""
        msgs = self.sqs.receive_message(QueueUrl=self.res.events_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        bodies = []
        for m in msgs:
            body = json.loads(m["Body"])
            self.sqs.delete_message(QueueUrl=self.res.events_queue_url, ReceiptHandle=m["ReceiptHandle"])
            if "Records" in body:
                from urllib.parse import unquote_plus
                self.events[unquote_plus(body["Records"][0]["s3"]["object"]["key"])] = body
                bodies.append(body)
        for body in bodies:
            self.invoke_ingest(body, fault=self.rng.random() < 0.2)

    @precondition(lambda self: bool(self.events))
    @rule(data=st.data())
    def duplicate_s3_event(self, data) -> None:
        key = data.draw(st.sampled_from(sorted(self.events)))
        threads = [threading.Thread(target=self.invoke_ingest, args=(self.events[key], False)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        FIGURES["duplicate S3 events"] += 1

    def invoke_ingest(self, event: dict, fault: bool) -> None:
        for attempt in range(3):  # Lambda's async invoke retries twice
            FAULTS.arm(self.rng.choice(["throttle", "500"]) if fault and attempt == 0 else None, self.rng.randint(1, 3))
            try:
                handlers.ingest_handler(event, LambdaContext("ingest", 30))
                return
            except Exception:  # noqa: BLE001 - retried, as Lambda does
                continue
            finally:
                FAULTS.disarm()

    @rule(batch=st.integers(1, 10), fault=st.sampled_from([None, None, "throttle", "500", "kill"]), twice=st.booleans())
    def transform(self, batch: int, fault: str | None, twice: bool) -> None:
        """One transform invocation on up to ``batch`` messages, the event source mapping's way;
        sometimes a fault, sometimes the same messages delivered to a second invocation at once."""
        msgs = self.sqs.receive_message(QueueUrl=self.res.queue_url, MaxNumberOfMessages=batch,
                                        AttributeNames=["All"]).get("Messages", [])
        if not msgs:
            return
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m.get("Attributes", {}), "eventSource": "aws:sqs"} for m in msgs]}
        ids = {m["MessageId"] for m in msgs}
        if fault and all(self.faulted[i] < 2 for i in ids):
            for i in ids:
                self.faulted[i] += 1
        else:
            fault = None
        results: dict[str, object] = {}

        def run(name: str, armed: str | None) -> None:
            FAULTS.arm(armed, self.rng.randint(1, 12))
            try:
                results[name] = handlers.transform_handler(event, LambdaContext("transform", 120))
            except Killed:
                results[name] = "killed"
            except Exception as exc:  # noqa: BLE001 - a crashed invocation fails its whole batch
                results[name] = exc
            finally:
                FAULTS.disarm()

        # at-least-once: the same messages handled by two invocations at once
        invoke(run, fault, twice, "concurrent duplicate deliveries")
        outcome = results["a"]
        failed = ids if not isinstance(outcome, dict) else {f["itemIdentifier"] for f in outcome["batchItemFailures"]}
        for m in msgs:
            if m["MessageId"] in failed:  # back to the queue at once (Lambda waits out the visibility timeout)
                self.sqs.change_message_visibility(QueueUrl=self.res.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                   VisibilityTimeout=0)
            else:
                self.sqs.delete_message(QueueUrl=self.res.queue_url, ReceiptHandle=m["ReceiptHandle"])
        FIGURES["transform invocations"] += 1

    @rule(batch=st.integers(1, 10), kill=st.sampled_from(["kill", "throttle", "500"]))
    def transform_faulty(self, batch: int, kill: str) -> None:
        """A transform invocation that dies mid-object or meets a throttled or failing AWS call."""
        self.transform(batch, kill, False)

    @precondition(lambda self: self.iceberg)
    @rule(batch=st.integers(1, 10), fault=st.sampled_from([None, None, "lost ack", "throttle", "500"]),
          twice=st.booleans())
    def commit(self, batch: int, fault: str | None, twice: bool) -> None:
        """One committer invocation on up to ``batch`` commit messages; sometimes two at once on
        the same messages; "lost ack": it dies after its snapshot, before the queue hears of it."""
        url = self.res.commit_queue_url
        msgs = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch, AttributeNames=["All"]).get("Messages", [])
        if not msgs:
            return
        event = {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                              "attributes": m.get("Attributes", {}), "eventSource": "aws:sqs"} for m in msgs]}
        ids = {m["MessageId"] for m in msgs}
        if not fault or any(self.faulted[i] >= 2 for i in ids):
            fault = None
        for i in ids if fault else ():
            self.faulted[i] += 1
        results: dict[str, object] = {}

        def run(name: str, armed: str | None) -> None:
            FAULTS.arm(armed if armed in ("throttle", "500") else None, self.rng.randint(1, 6))
            try:
                results[name] = handlers.commit_handler(event, LambdaContext("committer", 300))
            except Exception as exc:  # noqa: BLE001 - a crashed invocation fails its whole batch
                results[name] = exc
            finally:
                FAULTS.disarm()

        invoke(run, fault, twice, "concurrent committer invocations")
        outcome = results["a"]
        if fault == "lost ack":
            FIGURES["fault: lost ack"] += 1
            outcome = "killed"
        failed = ids if not isinstance(outcome, dict) else {f["itemIdentifier"] for f in outcome["batchItemFailures"]}
        for m in msgs:
            if m["MessageId"] in failed:
                self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
            else:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        FIGURES["committer invocations"] += 1

    @rule(key=st.sampled_from(KEYS))
    def replay(self, key: str) -> None:
        """The ops workflow's replay (S3 copy under the replay prefix) of one key's current bytes."""
        try:
            head = self.s3.head_object(Bucket=self.res.bronze_bucket, Key=key)
        except ClientError:
            return
        stamp = uuid.uuid4().hex[:8]
        dest = layout.replay_key(key, stamp)
        self.s3.copy_object(Bucket=self.res.bronze_bucket, Key=dest, CopySource={"Bucket": self.res.bronze_bucket, "Key": key},
                            MetadataDirective="REPLACE", Metadata=layout.replay_metadata(
                                head["ETag"].strip('"'), int(head["LastModified"].timestamp() * 1000)))
        FIGURES["replays"] += 1

    @rule()
    def redrive(self) -> None:
        """Move every DLQ message back to the main queue (receive -> send -> delete)."""
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.res.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return
            for m in msgs:
                self.sqs.send_message(QueueUrl=self.res.queue_url, MessageBody=m["Body"])
                self.sqs.delete_message(QueueUrl=self.res.dlq_url, ReceiptHandle=m["ReceiptHandle"])
                FIGURES["redriven messages"] += 1

    # -- the checks --------------------------------------------------------------------------------

    def drain(self) -> None:
        for _ in range(200):
            self.ingest(False)
            commits = self.depth(self.res.commit_queue_url) if self.iceberg else 0
            before = self.depth(self.res.queue_url) + self.depth(self.res.events_queue_url) + commits
            if before == 0:
                return
            self.transform(10, None, False)
            if self.iceberg:
                self.commit(10, None, False)
        raise AssertionError("the queues did not drain")

    def table(self):
        from elt_sdk.iceberg.catalog import from_environment

        return from_environment().load("shipments")

    @staticmethod
    def by_tag(ids: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for sid in ids:
            out.setdefault(sid.split("-v")[0], []).append(sid)
        return out

    def depth(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(v) for v in attrs.values())

    def silver(self) -> dict[str, list[str]]:
        if self.iceberg:
            table = self.table()
            return self.by_tag(table.scan().to_arrow().column("shipment_id").to_pylist()) if table else {}
        ids: dict[str, list[str]] = {}
        for obj in self.s3.list_objects_v2(Bucket=self.res.silver_bucket, Prefix="silver/").get("Contents", []):
            table = pq.read_table(io.BytesIO(self.s3.get_object(Bucket=self.res.silver_bucket, Key=obj["Key"])["Body"].read()))
            for sid in table.column("shipment_id").to_pylist():
                ids.setdefault(sid.split("-v")[0], []).append(sid)
        return ids

    def quarantine(self) -> Counter:
        counts: Counter = Counter()
        for obj in self.s3.list_objects_v2(Bucket=self.res.quarantine_bucket, Prefix="quarantine/shipments/").get("Contents", []):
            for line in self.s3.get_object(Bucket=self.res.quarantine_bucket, Key=obj["Key"])["Body"].read().splitlines():
                counts[json.loads(line)["source"].rsplit("/", 1)[1].split(".")[0]] += 1
        return counts

    def check(self) -> None:
        silver, quarantined = self.silver(), self.quarantine()
        dlq = [json.loads(m["Body"]) for m in self.sqs.receive_message(
            QueueUrl=self.res.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])]
        for key, m in self.model.items():
            tag = key.rsplit("/", 1)[1].split(".")[0]
            rows = sorted(silver.get(tag, []))
            FIGURES["records checked"] += len(rows) + quarantined.get(tag, 0)
            versions = {v.number: v for v in m.versions}
            landed = {int(r.split("-v")[1].split("-")[0]) for r in rows}
            FIGURES["duplicated"] += len(rows) - len(set(rows))
            assert len(rows) == len(set(rows)), f"{key}: duplicated rows {rows}"
            assert len(landed) <= 1, f"{key}: rows of several versions in silver: {rows}"
            if landed:
                [n] = landed
                assert rows == sorted(versions[n].valid), f"{key}: version {n} incomplete or mixed: {rows}"
            if not m.versions or m.deleted:
                continue
            newest = m.versions[-1]
            if newest.kind == "poison":
                assert not landed or versions[next(iter(landed))].kind != "poison"
                continue
            expected = sorted(newest.valid)
            FIGURES["lost"] += len(set(expected) - set(rows))
            assert rows == expected, f"{key}: newest version {newest.number} ({newest.kind}) should be in silver, got {rows}"
            if not key.startswith("bronze/mixed/"):
                assert quarantined.get(tag, 0) == newest.invalid, f"{key}: quarantine {quarantined.get(tag)} != {newest.invalid}"
        if self.iceberg:
            self.check_snapshots()
            assert self.depth(self.res.commit_dlq_url) == 0, "a commit message in the committer's DLQ"
        poison_keys = {k for k, m in self.model.items() if any(v.kind == "poison" for v in m.versions)}
        for msg in dlq:
            assert (msg.get("origin") or msg["key"]) in poison_keys, f"an innocent object in the DLQ: {msg}"
        assert self.depth(self.res.queue_url) == 0

    def check_snapshots(self) -> None:
        """Every snapshot ever committed holds whole object versions, and no key goes back to an
        older version from one snapshot to the next."""
        table = self.table()
        if table is None:
            return
        versions = {key.rsplit("/", 1)[1].split(".")[0]: {v.number: v for v in m.versions} for key, m in self.model.items()}
        last: dict[str, int] = {}
        for snapshot in sorted(table.snapshots(), key=lambda s: s.sequence_number):
            ids = table.scan(snapshot_id=snapshot.snapshot_id).to_arrow().column("shipment_id").to_pylist()
            for tag, rows in self.by_tag(ids).items():
                landed = {int(r.split("-v")[1].split("-")[0]) for r in rows}
                assert len(landed) == 1, f"snapshot {snapshot.snapshot_id}: {tag} has rows of versions {landed}"
                [n] = landed
                assert sorted(rows) == sorted(versions[tag][n].valid), \
                    f"snapshot {snapshot.snapshot_id}: {tag} version {n} not whole: {sorted(rows)}"
                assert n >= last.get(tag, 0), f"snapshot {snapshot.snapshot_id}: {tag} went back from v{last[tag]} to v{n}"
                last[tag] = n
            FIGURES["snapshots checked"] += 1

    @invariant()
    def no_staging_outside_elt(self) -> None:
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=self.res.silver_bucket).get("Contents", [])]
        assert all(k.startswith((layout.SILVER_PREFIX, layout.META_PREFIX)) for k in keys), keys


@pytest.fixture(scope="module")
def endpoint():
    boto3.setup_default_session()
    boto3.DEFAULT_SESSION.events.register("before-call", FAULTS)  # clients made from now on carry the hook
    with EmbeddedEndpoint("us-east-2") as ep:
        yield ep
    boto3.DEFAULT_SESSION.events.unregister("before-call", FAULTS)


@pytest.mark.slow
@pytest.mark.parametrize("silver_format", ["parquet", pytest.param("iceberg", marks=pytest.mark.skipif(
    importlib.util.find_spec("pyiceberg") is None, reason="the iceberg extra"))])
def test_silver_stays_exact_under_faults(endpoint, capsys, silver_format):
    machine = type(f"PipelineMachine_{silver_format}", (PipelineMachine,), {"silver_format": silver_format,
                                                                           "endpoint": endpoint})
    examples = EXAMPLES if silver_format == "parquet" else ICEBERG_EXAMPLES
    FIGURES.clear()
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None, derandomize=True,
        phases=PHASES,
        suppress_health_check=list(HealthCheck)))
    with capsys.disabled():
        print(f"\nfault injection ({silver_format}): " + ", ".join(f"{k} {v}" for k, v in sorted(FIGURES.items())))
    assert FIGURES["sequences"] >= examples and FIGURES["lost"] == 0 and FIGURES["duplicated"] == 0
    if silver_format == "iceberg":
        assert FIGURES["snapshots checked"] > 0 and FIGURES["committer invocations"] > 0
    assert sum(v for k, v in FIGURES.items() if k.startswith("fault:")) > 0
