"""Ingest and transform handlers against moto's server over real HTTP (the embedded endpoint)."""
from __future__ import annotations

import contextlib
import gzip
import io
import json

import pyarrow.parquet as pq
import pytest

from elt_sdk import hookimpl

from elt_sdk.aws import compaction, handlers, ops, quality_gate
from elt_sdk.aws.events import parse
from elt_sdk.aws.idempotency.base import AlreadyCompleted, AlreadyInProgress, Idempotency
from elt_sdk.aws.idempotency.dynamodb import DynamoDBPersistence
from elt_sdk.local.esm import EventSourceMapping, LambdaContext, queue_depth

from conftest import ThrottlesFirstSilverDelete, notifications


def lines(n: int, start: int = 0, bad: tuple[int, ...] = ()) -> bytes:
    out = []
    for i in range(start, start + n):
        rec = {"record_type": "shipments", "event_time": f"2025-06-{1 + i % 3:02d}T12:00:00Z", "shipment_id": f"S{i}",
               "origin": "Oslo", "destination": "Rome", "carrier": "DHL", "weight_kg": 1.5 + i}
        if i in bad:
            rec["weight_kg"] = str(rec["weight_kg"])
        out.append(json.dumps(rec))
    return ("\n".join(out) + "\n").encode()


def s3_event(bucket: str, key: str, etag: str = "", size: int | None = None) -> dict:
    from urllib.parse import quote_plus
    obj = {"key": quote_plus(key, safe="/").replace("%2F", "%2F")}
    if etag:
        obj["eTag"] = etag
    if size is not None:
        obj["size"] = size
    return {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": "us-east-2",
                         "s3": {"bucket": {"name": bucket}, "object": obj}}]}


def ctx(timeout: int = 30) -> LambdaContext:
    return LambdaContext("test", timeout)


def silver_rows(endpoint, bucket: str, dataset: str = "shipments") -> list[dict]:
    s3 = endpoint.client("s3")
    rows = []
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix=f"silver/{dataset}/").get("Contents", []):
        rows += pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())).to_pylist()
    return rows


def drive(endpoint, settings, res, *, rounds: int = 50) -> EventSourceMapping:
    esm = EventSourceMapping(endpoint.client("sqs"), res.queue_url, handlers.transform_handler, function_name="t",
                             timeout_s=60, batch_size=settings.batch_size, region=settings.region)
    for _ in range(rounds):
        if esm.poll_once() == 0 and queue_depth(endpoint.client("sqs"), res.queue_url) == 0:
            break
    return esm


def test_s3_event_parsing():
    ev = {"Records": [
        {"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
         "s3": {"bucket": {"name": "b"}, "object": {"key": "raw%2Fmy+file%2B1.json", "size": 3, "eTag": "abc"}}},
        {"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "x"}}},
        {"eventSource": "aws:sqs", "body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})},
    ]}
    parsed = parse(ev)
    assert [(o.bucket, o.key, o.etag, o.size) for o in parsed.objects] == [("b", "raw/my file+1.json", "abc", 3)]
    assert parsed.test_events == 1 and parsed.ignored == 1
    assert parsed.objects[0].idempotency_key == "s3://b/raw/my file+1.json#abc"


def test_uploaded_jsonl_object_ends_as_parquet_in_silver(endpoint, stack):
    settings, res = stack
    s3 = endpoint.client("s3")
    key = "bronze/shipments/2025/june batch+1.jsonl"
    s3.put_object(Bucket=res.bronze_bucket, Key=key, Body=lines(30, bad=(4, 9)))
    # the bucket notification put the real S3 event on the local events queue
    sqs = endpoint.client("sqs")
    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=res.events_queue_url, MaxNumberOfMessages=10)["Messages"]]
    event = next(b for b in bodies if "Records" in b)
    assert event["Records"][0]["s3"]["object"]["key"] != key  # percent-encoded on the wire
    counts = handlers.ingest_handler(event, ctx())
    assert counts["enqueued"] == 1 and counts["messages"] == 1 and counts["skipped"] == 0
    drive(endpoint, settings, res)
    rows = silver_rows(endpoint, res.silver_bucket)
    assert sorted(r["shipment_id"] for r in rows) == sorted(f"S{i}" for i in range(30) if i not in (4, 9))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket)["Contents"]]
    assert {k.split("/")[2] for k in keys if k.startswith("silver/")} == {"dt=2025-06-01", "dt=2025-06-02", "dt=2025-06-03"}
    assert not [k for k in keys if k.startswith(("quarantine/", "_elt/staging/"))]  # quarantine has its own bucket
    qkeys = [o["Key"] for o in s3.list_objects_v2(Bucket=res.quarantine_bucket)["Contents"]]
    [qkey] = [k for k in qkeys if k.startswith("quarantine/shipments/")]
    q = [json.loads(x) for x in s3.get_object(Bucket=res.quarantine_bucket, Key=qkey)["Body"].read().splitlines()]
    assert [r["line"] for r in q] == [5, 10] and q[0]["source"] == f"s3://{res.bronze_bucket}/{key}"


def test_same_s3_event_twice_is_skipped_the_second_time(endpoint, stack):
    settings, res = stack
    s3 = endpoint.client("s3")
    put = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/a.jsonl", Body=lines(5))
    event = s3_event(res.bronze_bucket, "bronze/shipments/a.jsonl", put["ETag"].strip('"'), 10)
    first = handlers.ingest_handler(event, ctx())
    second = handlers.ingest_handler(event, ctx())
    assert (first["enqueued"], first["skipped"]) == (1, 0)
    assert (second["enqueued"], second["skipped"]) == (0, 1)
    assert queue_depth(endpoint.client("sqs"), res.queue_url) == 1
    [item] = endpoint.client("dynamodb").scan(TableName=res.table)["Items"]
    etag = put["ETag"].strip('"')
    modified = int(s3.head_object(Bucket=res.bronze_bucket, Key="bronze/shipments/a.jsonl")["LastModified"].timestamp() * 1000)
    assert item["pk"]["S"] == f"s3://{res.bronze_bucket}/bronze/shipments/a.jsonl#{etag}@{modified}"  # key, etag, version
    assert item["status"]["S"] == "COMPLETED" and int(item["expiration"]["N"]) > 0


def test_same_sqs_message_twice_leaves_one_copy_of_each_row(endpoint, stack):
    settings, res = stack
    s3, sqs = endpoint.client("s3"), endpoint.client("sqs")
    put = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/b.jsonl", Body=lines(40))
    handlers.ingest_handler(s3_event(res.bronze_bucket, "bronze/shipments/b.jsonl", put["ETag"].strip('"'), 1), ctx())
    [msg] = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10)["Messages"]
    event = {"Records": [{"messageId": msg["MessageId"], "receiptHandle": msg["ReceiptHandle"], "body": msg["Body"],
                          "attributes": {}, "eventSource": "aws:sqs"}]}
    assert handlers.transform_handler(event, ctx()) == {"batchItemFailures": []}
    keys_first = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket)["Contents"])
    assert handlers.transform_handler(event, ctx()) == {"batchItemFailures": []}  # redelivery
    keys_second = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket)["Contents"])
    assert keys_first == keys_second
    rows = silver_rows(endpoint, res.silver_bucket)
    assert len(rows) == 40 and len({r["shipment_id"] for r in rows}) == 40


def test_one_bad_message_is_the_only_batch_item_failure(endpoint, stack):
    settings, res = stack
    s3 = endpoint.client("s3")
    good = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/good.jsonl", Body=lines(3))
    bad = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/bad.jsonl.gz", Body=b"\x1f\x8b\x08\x00garbage")
    from elt_sdk.aws.messages import ObjectPointer
    records = [
        {"messageId": "m-good", "body": ObjectPointer(res.bronze_bucket, "bronze/shipments/good.jsonl", good["ETag"].strip('"'), 1, "shipments").to_json()},
        {"messageId": "m-bad", "body": ObjectPointer(res.bronze_bucket, "bronze/shipments/bad.jsonl.gz", bad["ETag"].strip('"'), 1, "shipments").to_json()},
        {"messageId": "m-junk", "body": "not a pointer"},
    ]
    result = handlers.transform_handler({"Records": records}, ctx())
    assert result == {"batchItemFailures": []}  # neither can ever succeed: both went to the DLQ at once
    assert len(silver_rows(endpoint, res.silver_bucket)) == 3
    dlq = endpoint.client("sqs").receive_message(QueueUrl=res.dlq_url, MaxNumberOfMessages=10,
                                                 MessageAttributeNames=["All"])["Messages"]
    reasons = {m["MessageAttributes"]["elt_source_message_id"]["StringValue"]: m["MessageAttributes"]["elt_error"]["StringValue"]
               for m in dlq}
    assert set(reasons) == {"m-bad", "m-junk"}
    assert "gzip" in reasons["m-bad"] and "not a pointer message" in reasons["m-junk"]


def test_a_message_whose_object_always_fails_ends_in_the_dlq(endpoint, stack):
    settings, res = stack
    s3, sqs = endpoint.client("s3"), endpoint.client("sqs")
    bad = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/poison.gz", Body=b"\x1f\x8b\x08\x00garbage")
    ok = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/fine.jsonl", Body=lines(7))
    for key, put in (("bronze/shipments/poison.gz", bad), ("bronze/shipments/fine.jsonl", ok)):
        handlers.ingest_handler(s3_event(res.bronze_bucket, key, put["ETag"].strip('"'), 30), ctx())
    esm = drive(endpoint, settings, res)
    assert queue_depth(sqs, res.queue_url) == 0
    dlq = sqs.receive_message(QueueUrl=res.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                              MessageAttributeNames=["All"])["Messages"]
    assert [json.loads(m["Body"])["key"] for m in dlq] == ["bronze/shipments/poison.gz"]
    assert "not a readable gzip stream" in dlq[0]["MessageAttributes"]["elt_error"]["StringValue"]
    assert esm.stats.failed == 0  # never retried: a corrupt gzip cannot get better
    assert len(silver_rows(endpoint, res.silver_bucket)) == 7
    [marker] = [o["Key"] for o in s3.list_objects_v2(Bucket=res.quarantine_bucket, Prefix="quarantine/_failed/")["Contents"]]
    body = json.loads(s3.get_object(Bucket=res.quarantine_bucket, Key=marker)["Body"].read())
    assert body["key"] == "bronze/shipments/poison.gz" and "gzip" in body["error"] and body["stage"] == "object"


def test_a_message_that_keeps_failing_is_retried_then_dead_lettered_with_a_marker(endpoint, stack):
    """A fault that is not the object's (here: a plugin whose map returns the wrong shape) is
    retried up to max_receive_count; the last attempt leaves a marker, and silver nothing."""
    settings, res = stack
    from elt_sdk.aws.s3 import S3Store
    from elt_sdk.aws.transform import SqsTransform
    from elt_sdk.commit import Committer
    from elt_sdk.pipeline import Transformer
    from elt_sdk.plugins import load_registry

    class DropsAColumn:
        @hookimpl
        def elt_map(self, dataset, table):
            return table.drop_columns(["carrier"])

    s3, sqs = endpoint.client("s3"), endpoint.client("sqs")
    app = SqsTransform(s3=s3, transformer=Transformer(load_registry(extra_plugins=[("drops", DropsAColumn())])),
                       committer=Committer(S3Store(s3, res.silver_bucket), S3Store(s3, res.quarantine_bucket)),
                       silver_bucket=res.silver_bucket, metrics_namespace="t", sqs=sqs, dlq_url=res.dlq_url,
                       max_receive_count=settings.max_receive_count)
    put = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/m.jsonl", Body=lines(4))
    handlers.ingest_handler(s3_event(res.bronze_bucket, "bronze/shipments/m.jsonl", put["ETag"].strip('"'), 1), ctx())
    esm = EventSourceMapping(sqs, res.queue_url, lambda e, c: app.handle(e), function_name="t", timeout_s=60,
                             batch_size=10, region=settings.region)
    for _ in range(20):
        if esm.poll_once() == 0 and queue_depth(sqs, res.queue_url) == 0:
            break
    assert esm.stats.failed == settings.max_receive_count
    [dead] = sqs.receive_message(QueueUrl=res.dlq_url, MaxNumberOfMessages=10)["Messages"]
    assert json.loads(dead["Body"])["key"] == "bronze/shipments/m.jsonl"
    assert silver_rows(endpoint, res.silver_bucket) == []
    assert s3.list_objects_v2(Bucket=res.silver_bucket, Prefix="_elt/staging/").get("KeyCount") == 0
    [marker] = [o["Key"] for o in s3.list_objects_v2(Bucket=res.quarantine_bucket, Prefix="quarantine/_failed/")["Contents"]]
    body = json.loads(s3.get_object(Bucket=res.quarantine_bucket, Key=marker)["Body"].read())
    assert "dropped column(s) carrier" in body["error"] and body["attempts"] == settings.max_receive_count


def test_large_object_is_split_into_byte_ranges_and_every_row_lands_once(endpoint, stack, monkeypatch):
    settings, res = stack
    monkeypatch.setenv("ELT_CHUNK_BYTES", "2000")
    handlers.reset()
    s3 = endpoint.client("s3")
    body = lines(200, bad=(17, 150))
    put = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/big.jsonl", Body=body)
    counts = handlers.ingest_handler(s3_event(res.bronze_bucket, "bronze/shipments/big.jsonl", put["ETag"].strip('"'), len(body)), ctx())
    assert counts["messages"] == -(-len(body) // 2000) > 10
    drive(endpoint, settings, res, rounds=200)
    rows = silver_rows(endpoint, res.silver_bucket)
    assert sorted(r["shipment_id"] for r in rows) == sorted(f"S{i}" for i in range(200) if i not in (17, 150))
    # gzip objects are never split
    gz = gzip.compress(body)
    put = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/big.jsonl.gz", Body=gz)
    counts = handlers.ingest_handler(s3_event(res.bronze_bucket, "bronze/shipments/big.jsonl.gz", put["ETag"].strip('"'), len(gz) * 100), ctx())
    assert counts["messages"] == 1


def test_a_message_for_an_overwritten_object_is_dropped(endpoint, stack):
    settings, res = stack
    s3 = endpoint.client("s3")
    first = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/c.jsonl", Body=lines(3))
    handlers.ingest_handler(s3_event(res.bronze_bucket, "bronze/shipments/c.jsonl", first["ETag"].strip('"'), 1), ctx())
    s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/c.jsonl", Body=lines(5, start=100))
    drive(endpoint, settings, res)
    assert silver_rows(endpoint, res.silver_bucket) == []  # the stale pointer did not read the new bytes
    assert queue_depth(endpoint.client("sqs"), res.dlq_url) == 0


@contextlib.contextmanager
def partition_events(endpoint, settings):
    """A queue subscribed to ``silver_partition_ready`` events; yields a function that returns the
    details received so far."""
    sqs, events = endpoint.client("sqs"), endpoint.client("events")
    rule = f"{settings.name_prefix}-ready"
    target = sqs.create_queue(QueueName=f"{settings.name_prefix}-partitions")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=rule, EventPattern=json.dumps({"detail-type": ["silver_partition_ready"]}))
    events.put_targets(Rule=rule, Targets=[{"Id": "q", "Arn": arn}])

    def received() -> list[dict]:
        got = sqs.receive_message(QueueUrl=target, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"])["detail"] for m in got]

    try:
        yield received
    finally:
        events.remove_targets(Rule=rule, Ids=["q"])
        events.delete_rule(Name=rule)


def test_partition_ready_events_reach_eventbridge(endpoint, stack, monkeypatch):
    settings, res = stack
    monkeypatch.setenv("ELT_EMIT_PARTITION_EVENTS", "true")
    handlers.reset()
    s3 = endpoint.client("s3")
    with partition_events(endpoint, settings) as received:
        put = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/d.jsonl", Body=lines(6))
        handlers.ingest_handler(s3_event(res.bronze_bucket, "bronze/shipments/d.jsonl", put["ETag"].strip('"'), 1), ctx())
        drive(endpoint, settings, res)
        got = received()
    details = sorted((d["dataset"], d["dt"], d["rows"]) for d in got)
    assert details == [("shipments", "2025-06-01", 2), ("shipments", "2025-06-02", 2), ("shipments", "2025-06-03", 2)]
    for d in got:  # consumers list or read exactly the partition's files
        assert d["prefix"] == f"silver/shipments/dt={d['dt']}/" and d["bucket"] == res.silver_bucket
        assert d["keys"] and all(k.startswith(d["prefix"]) and k.endswith(".parquet") for k in d["keys"])


def test_a_redelivery_that_finishes_a_failed_step_5_announces_the_partitions(endpoint, stack):
    """v2 of an object lands (step 4), then its delete of v1's files is throttled: v1's rows are
    still readable, so nothing is announced and the message comes back. The redelivery finds v2
    current, finishes step 5 and announces v2's partitions, which are exact only now."""
    from elt_sdk.aws.s3 import S3Store
    from elt_sdk.aws.transform import SqsTransform
    from elt_sdk.commit import Committer, manifest_key
    from elt_sdk.pipeline import Transformer
    from elt_sdk.plugins import load_registry

    settings, res = stack
    s3, sqs = endpoint.client("s3"), endpoint.client("sqs")
    key = "bronze/shipments/finish.jsonl"
    notifications(endpoint, res)  # earlier tests' objects
    s3.put_object(Bucket=res.bronze_bucket, Key=key, Body=lines(6))
    [v1] = notifications(endpoint, res)  # S3's own events: v2's sequencer orders it after v1
    handlers.ingest_handler(v1, ctx())
    drive(endpoint, settings, res)
    s3.put_object(Bucket=res.bronze_bucket, Key=key, Body=lines(9, start=100))
    [v2] = notifications(endpoint, res)
    handlers.ingest_handler(v2, ctx())
    [pointer] = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10)["Messages"]

    class ThrottledOnce(ThrottlesFirstSilverDelete, S3Store):
        pass

    silver = ThrottledOnce(s3, res.silver_bucket)
    app = SqsTransform(s3=s3, transformer=Transformer(load_registry()),
                       committer=Committer(silver, S3Store(s3, res.quarantine_bucket)),
                       silver_bucket=res.silver_bucket, metrics_namespace="t", sqs=sqs, dlq_url=res.dlq_url,
                       events=endpoint.client("events"))

    def deliver(receives: int) -> dict:
        return app.handle({"Records": [{"messageId": "m", "body": pointer["Body"],
                                        "attributes": {"ApproximateReceiveCount": str(receives)}}]})

    with partition_events(endpoint, settings) as received:
        assert deliver(1) == {"batchItemFailures": [{"itemIdentifier": "m"}]} and silver.throttled
        assert len(silver_rows(endpoint, res.silver_bucket)) == 6 + 9  # both versions readable: not announced
        assert received() == []
        assert deliver(2) == {"batchItemFailures": []}
        got = received()
    assert sorted(r["shipment_id"] for r in silver_rows(endpoint, res.silver_bucket)) == sorted(f"S{i}" for i in range(100, 109))
    current = json.loads(s3.get_object(Bucket=res.silver_bucket, Key=manifest_key(key))["Body"].read())["current"]
    assert sorted((d["dt"], d["rows"]) for d in got) == [("2025-06-01", 3), ("2025-06-02", 3), ("2025-06-03", 3)]
    assert sorted(k for d in got for k in d["keys"]) == sorted(current["files"]["silver"])


def test_idempotency_locks_expire_and_ttl_is_checked_in_code(endpoint, stack):
    settings, res = stack
    now = [1_000_000.0]
    idem = Idempotency(DynamoDBPersistence(endpoint.client("dynamodb"), res.table), ttl_seconds=100, clock=lambda: now[0])
    idem.claim("k", remaining_ms=5000)
    with pytest.raises(AlreadyInProgress):
        idem.claim("k", remaining_ms=5000)
    now[0] += 6  # the first invocation died: its lock has expired
    idem.claim("k", remaining_ms=5000)
    idem.complete("k")
    with pytest.raises(AlreadyCompleted):
        idem.claim("k", remaining_ms=5000)
    now[0] += 101  # past the TTL; DynamoDB may not have deleted it yet, the code does not care
    idem.claim("k", remaining_ms=5000)
    idem.release("k")
    idem.claim("k", remaining_ms=5000)  # released claims can be taken at once


def test_compaction_merges_a_partitions_files_into_a_separate_prefix(endpoint, stack):
    settings, res = stack
    s3 = endpoint.client("s3")
    for name, start in (("e1", 0), ("e2", 30)):  # two objects: two part files per day
        put = s3.put_object(Bucket=res.bronze_bucket, Key=f"bronze/shipments/{name}.jsonl", Body=lines(9, start=start))
        handlers.ingest_handler(s3_event(res.bronze_bucket, f"bronze/shipments/{name}.jsonl", put["ETag"].strip('"'), 1), ctx())
    drive(endpoint, settings, res)
    day = "silver/shipments/dt=2025-06-01/"
    before = [o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket, Prefix=day)["Contents"]]
    assert len(before) == 2
    result = compaction.handler({"dataset": "shipments", "dt": "2025-06-01"}, ctx())
    assert (result["input_files"], result["output_files"], result["rows"]) == (2, 1, 6)
    [key] = result["keys"]
    assert key.startswith("silver_compacted/shipments/dt=2025-06-01/")
    merged = pq.read_table(io.BytesIO(s3.get_object(Bucket=res.silver_bucket, Key=key)["Body"].read()))
    originals = [pq.read_table(io.BytesIO(s3.get_object(Bucket=res.silver_bucket, Key=k)["Body"].read())) for k in before]
    assert sorted(merged.column("shipment_id").to_pylist()) == sorted(
        i for t in originals for i in t.column("shipment_id").to_pylist())
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket, Prefix=day)["Contents"]] == before
    with pytest.raises(ValueError, match="never rewrites in place"):
        compaction.handler({"dataset": "shipments", "dt": "2025-06-01", "output_prefix": "silver/"}, ctx())


def test_quality_gate_passes_a_clean_partition_and_marks_a_failing_one(endpoint, stack):
    settings, res = stack
    s3 = endpoint.client("s3")
    clean = lines(9)
    dupes = lines(9).replace(b'"DHL"', b'"Pigeon"')  # same shipment ids again, a carrier the rules refuse
    for name, body in (("q1", clean), ("q2", dupes)):
        put = s3.put_object(Bucket=res.bronze_bucket, Key=f"bronze/shipments/{name}.jsonl", Body=body)
        handlers.ingest_handler(s3_event(res.bronze_bucket, f"bronze/shipments/{name}.jsonl", put["ETag"].strip('"'), 1), ctx())
        drive(endpoint, settings, res)
        verdict = quality_gate.handler({"detail": {"dataset": "shipments", "dt": "2025-06-01"}}, ctx())
        failed = {r["rule"] for r in verdict["results"] if not r["passed"]}
        if name == "q1":
            assert (verdict["passed"], verdict["rows"], failed) == (True, 3, set())
        else:
            assert (verdict["passed"], verdict["rows"], failed) == (False, 6, {"accepted_values", "unique"})
    results = s3.list_objects_v2(Bucket=res.silver_bucket, Prefix="quality/results/shipments/dt=2025-06-01/")["Contents"]
    assert len(results) == 2 and all(o["Key"].endswith("Z.json") for o in results)  # one verdict per check
    marker = json.loads(s3.get_object(Bucket=res.silver_bucket, Key="quality/quarantine/shipments/dt=2025-06-01.json")["Body"].read())
    assert marker["passed"] is False and marker["rows"] == 6


def test_a_replayed_object_is_routed_like_its_original_and_overwrites_its_rows(endpoint, stack):
    settings, res = stack
    s3, sqs = endpoint.client("s3"), endpoint.client("sqs")
    put = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/r.jsonl", Body=lines(6))
    handlers.ingest_handler(s3_event(res.bronze_bucket, "bronze/shipments/r.jsonl", put["ETag"].strip('"'), 1), ctx())
    drive(endpoint, settings, res)
    first = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket, Prefix="silver/")["Contents"])

    result = ops.replay_handler({"bronze_bucket": res.bronze_bucket, "window_hours": 1}, ctx())
    copy = f"{result['dest_prefix']}shipments/r.jsonl"
    assert result["copied"] == 1 and copy.startswith("bronze/replay/")
    head = s3.head_object(Bucket=res.bronze_bucket, Key=copy)
    handlers.ingest_handler(s3_event(res.bronze_bucket, copy, head["ETag"].strip('"'), 1), ctx())
    [message] = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    assert json.loads(message["Body"])["dataset"] == "shipments"  # by its original's prefix, not record by record
    drive(endpoint, settings, res)
    again = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket, Prefix="silver/")["Contents"])
    assert len(again) == len(first) and not set(again) & set(first)  # the same version, replaced
    assert len(silver_rows(endpoint, res.silver_bucket)) == 6  # not duplicated
    assert "Contents" not in s3.list_objects_v2(Bucket=res.quarantine_bucket, Prefix="quarantine/")


def test_replay_keys_map_back_to_their_originals():
    from elt_sdk import layout
    for bronze, replay in (("bronze/", "bronze/replay/"), ("raw/", "replays")):
        original = f"{bronze}shipments/2025/06/a.jsonl"
        copy = layout.replay_key(original, "2026-01-01T00-00-00Z", bronze_prefix=bronze, replay_prefix=replay)
        assert copy == f"{replay.rstrip('/')}/2026-01-01T00-00-00Z/shipments/2025/06/a.jsonl"
        assert layout.replayed_key(copy, bronze_prefix=bronze, replay_prefix=replay) == original
        assert layout.replayed_key(original, bronze_prefix=bronze, replay_prefix=replay) == original


def test_compaction_in_place_then_a_new_version_takes_its_rows_out_of_the_compacted_file(endpoint, stack):
    settings, res = stack
    s3 = endpoint.client("s3")

    def upload(name: str, body: bytes) -> None:
        put = s3.put_object(Bucket=res.bronze_bucket, Key=f"bronze/shipments/{name}.jsonl", Body=body)
        handlers.ingest_handler(s3_event(res.bronze_bucket, f"bronze/shipments/{name}.jsonl", put["ETag"].strip('"'), 1), ctx())
        drive(endpoint, settings, res)

    upload("c1", lines(9))
    upload("c2", lines(9, start=30))
    result = compaction.handler({"dataset": "shipments", "dt": "2025-06-01", "in_place": True}, ctx())
    assert (result["files_before"], result["files_after"], result["rows"]) == (2, 1, 6)
    day = "silver/shipments/dt=2025-06-01/"
    [key] = [o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket, Prefix=day)["Contents"]]
    assert key == result["keys"][0] and "/compacted-" in key
    upload("c1", lines(4, start=100))  # a new version of c1: its compacted rows leave, its new ones land
    ids = sorted(r["shipment_id"] for r in silver_rows(endpoint, res.silver_bucket))
    assert ids == sorted([f"S{i}" for i in range(30, 39)] + [f"S{i}" for i in range(100, 104)])
    part = json.loads(s3.get_object(Bucket=res.silver_bucket, Key="_elt/partitions/shipments/2025-06-01.json")["Body"].read())
    [(compacted, entry)] = part["files"].items()
    assert compacted != key and [s["rows"] for s in entry["segments"]] == [3]  # c2's three rows of that day


def test_dlq_redrive_interrupted_between_send_and_delete_loses_nothing(endpoint, stack):
    """Interrupted after the queue accepted a batch but before the DLQ deleted it: the messages
    are in both; a second redrive sends them again; the duplicates add no row."""
    import dataclasses

    from elt_sdk.aws import dlq
    from elt_sdk.aws.messages import ObjectPointer

    settings, res = stack
    s3, sqs = endpoint.client("s3"), endpoint.client("sqs")
    for n in range(3):
        key = f"bronze/shipments/d{n}.jsonl"
        put = s3.put_object(Bucket=res.bronze_bucket, Key=key, Body=lines(4, start=10 * n))
        handlers.ingest_handler(s3_event(res.bronze_bucket, key, put["ETag"].strip('"'), 1), ctx())
    for m in sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10)["Messages"]:  # as if they had failed
        body = dataclasses.replace(ObjectPointer.from_json(m["Body"]), force=True).to_json()
        sqs.send_message(QueueUrl=res.dlq_url, MessageBody=body,
                         MessageAttributes={"elt_error": {"DataType": "String", "StringValue": "TimeoutError: S3"}})
        sqs.delete_message(QueueUrl=res.queue_url, ReceiptHandle=m["ReceiptHandle"])
    assert dlq.depth(sqs, res.dlq_url) == 3 and queue_depth(sqs, res.queue_url) == 0

    class Interrupted:
        def __getattr__(self, name):
            return getattr(sqs, name)

        def delete_message_batch(self, **kwargs):
            raise KeyboardInterrupt  # Ctrl-C right after the send

    with pytest.raises(KeyboardInterrupt):
        dlq.redrive(Interrupted(), res.dlq_url, res.queue_url, native=False, hold_s=1)
    assert queue_depth(sqs, res.queue_url) == 3 and dlq.depth(sqs, res.dlq_url) == 3  # in both, none lost
    import time
    time.sleep(1.2)  # the receive's visibility timeout: back in the DLQ
    result = dlq.redrive(sqs, res.dlq_url, res.queue_url, native=False)
    assert (result.moved, result.failed) == (3, 0) and dlq.depth(sqs, res.dlq_url) == 0
    redriven = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                   VisibilityTimeout=0)["Messages"]
    assert all(not json.loads(m["Body"])["force"] and "elt_error" not in m.get("MessageAttributes", {}) for m in redriven)
    drive(endpoint, settings, res)
    assert sorted(r["shipment_id"] for r in silver_rows(endpoint, res.silver_bucket)) == \
        sorted(f"S{10 * n + i}" for n in range(3) for i in range(4))


def test_replay_reads_the_latest_version_and_never_brings_an_old_one_back(endpoint, stack):
    from datetime import datetime, timedelta, timezone

    from elt_sdk.aws import replay
    from elt_sdk.aws.s3 import S3Store
    from elt_sdk.commit import Committer
    from elt_sdk.plugins import load_registry

    settings, res = stack
    s3, sqs = endpoint.client("s3"), endpoint.client("sqs")
    key = "bronze/shipments/v.jsonl"
    for sequencer, body in (("0A", lines(6)), ("0B", lines(3, start=50))):  # version 1, then version 2 of one key
        put = s3.put_object(Bucket=res.bronze_bucket, Key=key, Body=body)
        event = s3_event(res.bronze_bucket, key, put["ETag"].strip('"'), len(body))
        event["Records"][0]["s3"]["object"]["sequencer"] = sequencer  # S3's order of the key's versions
        handlers.ingest_handler(event, ctx())
        drive(endpoint, settings, res)
    latest = sorted(f"S{i}" for i in range(50, 53))
    assert sorted(r["shipment_id"] for r in silver_rows(endpoint, res.silver_bucket)) == latest
    now = datetime.now(timezone.utc)
    [item] = replay.plan(s3, res.bronze_bucket, "bronze/shipments/", now - timedelta(hours=1), now + timedelta(seconds=5),
                         committer=Committer(S3Store(s3, res.silver_bucket)))
    assert item.committed and item.etag == put["ETag"].strip('"')
    done = replay.copy(s3, res.bronze_bucket, [item], at=now)
    copy = done["dest_prefix"] + "shipments/v.jsonl"
    head = s3.head_object(Bucket=res.bronze_bucket, Key=copy)
    handlers.ingest_handler(s3_event(res.bronze_bucket, copy, head["ETag"].strip('"'), 1), ctx())
    drive(endpoint, settings, res)
    assert sorted(r["shipment_id"] for r in silver_rows(endpoint, res.silver_bucket)) == latest
    sent = replay.send(s3, sqs, res.queue_url, res.bronze_bucket, [item], registry=load_registry(), chunk_bytes=1 << 20)
    assert sent == {"sent": 1, "messages": 1}
    drive(endpoint, settings, res)
    assert sorted(r["shipment_id"] for r in silver_rows(endpoint, res.silver_bucket)) == latest
    assert "Contents" not in s3.list_objects_v2(Bucket=res.quarantine_bucket, Prefix="quarantine/shipments/")


def test_a_duplicate_first_delivery_is_dropped_at_its_commit_and_a_redriven_one_before_its_transform(
        endpoint, stack, monkeypatch):
    """A pointer received for the first time skips the manifest read (the object is most likely
    new); delivered again once committed, the commit finds the version current and drops it. A
    message ``dlq redrive`` sent back is checked before the transform. Neither adds rows, files
    or dataset metrics."""
    from elt_sdk import metrics
    from elt_sdk.aws.dlq import redrive
    from elt_sdk.aws.s3 import S3Store
    from elt_sdk.aws.transform import SqsTransform
    from elt_sdk.commit import Committer
    from elt_sdk.pipeline import Transformer
    from elt_sdk.plugins import load_registry

    settings, res = stack
    s3, sqs = endpoint.client("s3"), endpoint.client("sqs")
    put = s3.put_object(Bucket=res.bronze_bucket, Key="bronze/shipments/dup.jsonl", Body=lines(6))
    handlers.ingest_handler(s3_event(res.bronze_bucket, "bronze/shipments/dup.jsonl", put["ETag"].strip('"'), 1), ctx())
    [pointer] = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0)["Messages"]
    drive(endpoint, settings, res)
    before = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket, Prefix="silver/")["Contents"])
    assert len(silver_rows(endpoint, res.silver_bucket)) == 6

    calls: list[str] = []

    class Watched(Committer):
        def committed(self, source, fingerprint):
            calls.append("read first")
            return super().committed(source, fingerprint)

        def commit(self, attempt):
            outcome = super().commit(attempt)
            calls.append(f"commit: {outcome.status}")
            return outcome

    emitted: list[dict] = []
    monkeypatch.setattr(metrics, "put", lambda ns, dims, values, *a, **k: emitted.append(dict(dims)))
    app = SqsTransform(s3=s3, transformer=Transformer(load_registry()),
                       committer=Watched(S3Store(s3, res.silver_bucket), S3Store(s3, res.quarantine_bucket)),
                       silver_bucket=res.silver_bucket, metrics_namespace="t", sqs=sqs, dlq_url=res.dlq_url)

    def deliver(body: str, attributes: dict) -> None:
        assert app.handle({"Records": [{"messageId": "m", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
                                        "messageAttributes": attributes}]}) == {"batchItemFailures": []}

    deliver(pointer["Body"], {})
    assert calls == ["commit: already committed"]
    sqs.send_message(QueueUrl=res.dlq_url, MessageBody=pointer["Body"])
    assert redrive(sqs, res.dlq_url, res.queue_url, native=False).moved == 1
    [back] = sqs.receive_message(QueueUrl=res.queue_url, MaxNumberOfMessages=10,
                                 MessageAttributeNames=["All"])["Messages"]
    deliver(back["Body"], {k: {"stringValue": v["StringValue"], "dataType": v["DataType"]}
                           for k, v in back["MessageAttributes"].items()})
    assert calls == ["commit: already committed", "read first"]  # skipped before any transform
    assert not [d for d in emitted if "dataset" in d]
    after = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=res.silver_bucket, Prefix="silver/")["Contents"])
    assert after == before and len(silver_rows(endpoint, res.silver_bucket)) == 6
