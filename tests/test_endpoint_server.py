"""The embedded endpoint's server (local/server.py): what it changes in moto's app and in how
requests are served, checked over real HTTP with boto3."""
from __future__ import annotations

import logging
import threading

import boto3
import pytest
from botocore.config import Config

from elt_sdk.local.server import ThreadServer


@pytest.fixture(scope="module")
def server():
    srv = ThreadServer()
    yield srv
    srv.stop()


def client(server: ThreadServer, service: str, **config):
    return boto3.client(service, endpoint_url=server.url, region_name="us-east-2", aws_access_key_id="x",
                        aws_secret_access_key="x", config=Config(**{"max_pool_connections": 16, **config}))


def test_an_empty_put_with_expect_continue_is_answered(server):
    s3 = client(server, "s3", read_timeout=5, retries={"max_attempts": 1})
    s3.create_bucket(Bucket="empty-put", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_object(Bucket="empty-put", Key="a", Body=b"")  # boto3 sends Expect: 100-continue, Content-Length: 0
    assert s3.get_object(Bucket="empty-put", Key="a")["Body"].read() == b""


def test_connections_are_kept_alive(server):
    s3 = client(server, "s3")
    s3.create_bucket(Bucket="keep-alive", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    opened: list[str] = []

    class Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if "Starting new HTTP connection" in message or "Resetting dropped connection" in message:
                opened.append(message)

    log = logging.getLogger("urllib3.connectionpool")
    handler, level = Count(), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        for i in range(50):
            s3.put_object(Bucket="keep-alive", Key=f"k{i}", Body=b"x" * 100)
            s3.get_object(Bucket="keep-alive", Key=f"k{i}")["Body"].read()
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert len(opened) <= 1, opened


def test_queues_lose_nothing_and_count_right_under_concurrent_sends_and_deletes(server):
    sqs = client(server, "sqs")
    url = sqs.create_queue(QueueName="fast-queues")["QueueUrl"]
    sent = 400

    def send(start: int) -> None:
        for i in range(start, sent, 4):
            sqs.send_message(QueueUrl=url, MessageBody=str(i))

    received: set[str] = set()

    def consume() -> None:
        while len(received) < sent:
            msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            for m in msgs:
                received.add(m["Body"])
            if msgs:
                sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                                for i, m in enumerate(msgs)])

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)] + [threading.Thread(target=consume)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert received == {str(i) for i in range(sent)}
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"]) == ("0", "0")
    sqs.send_message(QueueUrl=url, MessageBody="late", DelaySeconds=60)
    sqs.send_message(QueueUrl=url, MessageBody="now")
    got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    assert [m["Body"] for m in got] == ["now"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (attrs["ApproximateNumberOfMessages"], attrs["ApproximateNumberOfMessagesNotVisible"],
            attrs["ApproximateNumberOfMessagesDelayed"]) == ("0", "1", "1")


def test_download_copies_what_gets_would_in_one_request(server, tmp_path):
    """The archive route answers the latest version of each object under the prefixes, none
    deleted, byte for byte what one GET per key copies."""
    from elt_sdk.local.endpoint import EmbeddedEndpoint
    from elt_sdk.local.runtime import _download_by_gets

    s3 = client(server, "s3")
    s3.create_bucket(Bucket="archive", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_bucket_versioning(Bucket="archive", VersioningConfiguration={"Status": "Enabled"})
    blobs = {f"silver/ds/dt=2025-06-0{i % 3 + 1}/f{i}.parquet": bytes(range(256)) * (i * 7 + 1) for i in range(12)}
    blobs["_elt/objects/m.json"] = b'{"current": null}'
    blobs["silver/ds/empty"] = b""
    for key, body in blobs.items():
        s3.put_object(Bucket="archive", Key=key, Body=body)
    s3.put_object(Bucket="archive", Key="silver/ds/dt=2025-06-01/f0.parquet", Body=b"second version")
    s3.delete_object(Bucket="archive", Key="silver/ds/dt=2025-06-02/f1.parquet")  # a delete marker
    s3.put_object(Bucket="archive", Key="elsewhere/x", Body=b"not asked for")

    endpoint = EmbeddedEndpoint()
    endpoint.url = server.url
    prefixes = ["silver/", "_elt/objects/"]
    assert endpoint.download("archive", prefixes, tmp_path / "tar") == len(blobs) - 1
    _download_by_gets(s3, "archive", prefixes, tmp_path / "gets")

    def tree(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}

    got = tree(tmp_path / "tar")
    assert got == tree(tmp_path / "gets")
    assert got["silver/ds/dt=2025-06-01/f0.parquet"] == b"second version"
    assert "silver/ds/dt=2025-06-02/f1.parquet" not in got and "elsewhere/x" not in got
    assert got["silver/ds/empty"] == b"" and got["_elt/objects/m.json"] == b'{"current": null}'
    with pytest.raises(OSError):  # no such bucket: the caller falls back to GETs
        endpoint.download("no-such-bucket", prefixes, tmp_path / "none")


def test_download_never_writes_outside_its_folder(server, tmp_path):
    from elt_sdk.local.endpoint import EmbeddedEndpoint

    s3 = client(server, "s3")
    s3.create_bucket(Bucket="archive-escape", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_object(Bucket="archive-escape", Key="silver/../../escaped", Body=b"x")
    endpoint = EmbeddedEndpoint()
    endpoint.url = server.url
    with pytest.raises(Exception, match="outside"):
        endpoint.download("archive-escape", ["silver/"], tmp_path / "out")
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()


def test_download_of_an_archive_that_breaks_off_is_an_oserror(server, tmp_path, monkeypatch):
    """A stream cut short (a member's bytes missing) is the caller's cue to copy by GETs: OSError,
    like a server that does not answer."""
    from elt_sdk.local import server as server_module
    from elt_sdk.local.endpoint import EmbeddedEndpoint

    s3 = client(server, "s3")
    s3.create_bucket(Bucket="archive-cut", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_object(Bucket="archive-cut", Key="silver/a", Body=b"x" * 5000)
    whole = server_module.tar_stream

    def cut(members):
        data = b"".join(whole(members))
        yield data[:1500]  # the header and part of the first member

    monkeypatch.setattr(server_module, "tar_stream", cut)  # the server runs in this process (a thread)
    endpoint = EmbeddedEndpoint()
    endpoint.url = server.url
    with pytest.raises(OSError, match="ended early"):
        endpoint.download("archive-cut", ["silver/"], tmp_path / "out")


def test_a_wake_ends_long_polls_in_progress_and_long_polls_still_deliver(server):
    """``POST /_elt/wake`` (what a stopping pipeline sends) ends a 20 s long poll at once, empty;
    a long poll that is not woken still answers as soon as a message arrives."""
    import time

    from elt_sdk.local.endpoint import EmbeddedEndpoint

    sqs = client(server, "sqs", read_timeout=30)
    url = sqs.create_queue(QueueName="wake")["QueueUrl"]
    answers: list[tuple[float, list]] = []

    def poll() -> None:
        started = time.monotonic()
        got = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=20).get("Messages", [])
        answers.append((time.monotonic() - started, got))

    pollers = [threading.Thread(target=poll) for _ in range(3)]
    for t in pollers:
        t.start()
    endpoint = EmbeddedEndpoint()
    endpoint.url = server.url
    deadline = time.monotonic() + 15
    while any(t.is_alive() for t in pollers) and time.monotonic() < deadline:
        time.sleep(0.2)  # (a poll that began after a wake needs the next one)
        endpoint.wake()
    assert len(answers) == 3 and all(not got and waited < 15 for waited, got in answers), answers

    waiter = threading.Thread(target=poll)
    waiter.start()
    time.sleep(0.5)
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    waiter.join(timeout=15)
    assert len(answers) == 4 and [m["Body"] for m in answers[3][1]] == ["hello"] and answers[3][0] < 15


@pytest.mark.parametrize("environ, operation", [
    ({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem",
      "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=x/20261201/us-east-2/dynamodb/aws4_request, Sig..."},
     "dynamodb PutItem"),
    ({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage",
      "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=x/20261201/us-east-2/sqs/aws4_request, Sig..."},
     "sqs ReceiveMessage"),
    ({"REQUEST_METHOD": "PUT", "PATH_INFO": "/bronze-bucket/bronze/shipments/a.jsonl",
      "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=x/20261201/us-east-2/s3/aws4_request, Sig..."},
     "s3 PUT object"),
    ({"REQUEST_METHOD": "GET", "PATH_INFO": "/silver-bucket", "QUERY_STRING": "list-type=2&prefix=silver%2F",
      "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=x/20261201/us-east-2/s3/aws4_request, Sig..."},
     "s3 GET bucket?list-type"),
    ({"REQUEST_METHOD": "GET", "PATH_INFO": "/b/k"}, "unsigned GET object"),
])
def test_requests_are_counted_by_service_and_operation(environ, operation):
    from elt_sdk.local.server import operation_of

    assert operation_of(environ) == operation


def test_stats_count_what_was_served(server):
    import json
    from urllib.request import urlopen

    s3 = client(server, "s3")
    s3.create_bucket(Bucket="counted", CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    with urlopen(f"{server.url}/_elt/stats") as resp:
        before = json.loads(resp.read())["requests"]
    for i in range(3):
        s3.put_object(Bucket="counted", Key=f"k{i}", Body=b"x")
    with urlopen(f"{server.url}/_elt/stats") as resp:
        after = json.loads(resp.read())
    assert after["requests"]["s3 PUT object"] - before.get("s3 PUT object", 0) == 3 and after["cpu_s"] > 0


def _stats(server: ThreadServer) -> dict:
    import json
    from urllib.request import urlopen

    with urlopen(f"{server.url}/_elt/stats") as resp:
        return json.loads(resp.read())


def _fast(server: ThreadServer, service: str) -> int:
    """Requests of ``service`` the fast path answered so far."""
    return sum(n for op, n in _stats(server)["fast_path"].items() if op.startswith(f"{service} "))


def _told_twice(server: ThreadServer, monkeypatch, service: str, story) -> tuple[list, list, int]:
    """``story`` with the fast path, then with moto alone; and how many of its requests the fast
    path answered the first time."""
    from elt_sdk.local import server as server_module

    before = _fast(server, service)
    fast = story(server, "fast-path")
    answered_fast = _fast(server, service) - before
    monkeypatch.setattr(server_module, "FAST_PATHS", {})
    moto = story(server, "moto-path")
    assert _fast(server, service) - before == answered_fast  # none the second time
    return fast, moto, answered_fast


def _s3_story(server: ThreadServer, bucket: str) -> list:
    """What boto3 sees of plain and less plain object GETs and PUTs, and of the S3 events they
    send, with what differs by nature (request ids, dates, version ids) left out."""
    from botocore.exceptions import ClientError

    s3, sqs = client(server, "s3"), client(server, "sqs")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "us-east-2"})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    queue = sqs.create_queue(QueueName=f"{bucket}-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    sqs.purge_queue(QueueUrl=queue)  # the test event

    def seen(call, **kwargs):
        try:
            r = call(Bucket=bucket, **kwargs)
        except ClientError as exc:
            return ("error", exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"])
        out = {k: v for k, v in r.items() if k not in ("ResponseMetadata", "LastModified", "VersionId")}
        if "Body" in out:
            out["Body"] = out["Body"].read()
        headers = r["ResponseMetadata"]["HTTPHeaders"]
        out["headers"] = sorted((h, v) for h, v in headers.items()  # values too, but those that differ by nature
                                if h not in ("date", "x-amzn-requestid", "server", "x-amz-version-id", "last-modified"))
        out["versioned"] = bool(r.get("VersionId"))
        return out

    story = [seen(s3.put_object, Key="bronze/a.jsonl", Body=b'{"a": 1}\n'),
             seen(s3.put_object, Key="silver/dt=2026-12-01/p.parquet", Body=b"PAR1", IfNoneMatch="*"),
             seen(s3.put_object, Key="silver/dt=2026-12-01/p.parquet", Body=b"again", IfNoneMatch="*"),
             seen(s3.put_object, Key="_meta/m.json", Body=b"{}", IfNoneMatch="*")]
    etag = s3.head_object(Bucket=bucket, Key="_meta/m.json")["ETag"]
    story += [seen(s3.put_object, Key="_meta/m.json", Body=b'{"v": 2}', IfMatch=etag),
              seen(s3.put_object, Key="_meta/m.json", Body=b'{"v": 3}', IfMatch=etag),
              seen(s3.put_object, Key="_meta/missing.json", Body=b"{}", IfMatch=etag),
              seen(s3.put_object, Key="with meta/x y.json", Body=b"{}", Metadata={"who": "me"},
                   ContentType="application/json"),
              seen(s3.put_object, Key="empty", Body=b""),
              seen(s3.get_object, Key="bronze/a.jsonl"),
              seen(s3.get_object, Key="bronze/a.jsonl", ChecksumMode="ENABLED"),
              seen(s3.get_object, Key="_meta/m.json", IfMatch=s3.head_object(Bucket=bucket, Key="_meta/m.json")["ETag"]),
              seen(s3.get_object, Key="_meta/m.json", IfMatch=etag),
              seen(s3.get_object, Key="with meta/x y.json"),
              seen(s3.get_object, Key="empty"),
              seen(s3.get_object, Key="no/such/key"),
              seen(s3.get_object, Key="bronze/a.jsonl", Range="bytes=0-3")]
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    story.append(sorted((v["Key"], v["Size"], v["ETag"]) for v in versions))
    events = []
    while msgs := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
        for m in msgs:
            import json

            record = json.loads(m["Body"])["Records"][0]
            events.append((record["eventName"], record["s3"]["object"]["key"], record["s3"]["object"]["size"],
                           record["s3"]["object"]["eTag"]))
        sqs.delete_message_batch(QueueUrl=queue, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                          for i, m in enumerate(msgs)])
    story.append(sorted(events))
    return story


def test_the_s3_fast_path_answers_what_moto_answers(server, monkeypatch):
    fast, moto, answered_fast = _told_twice(server, monkeypatch, "s3", _s3_story)
    assert fast == moto
    # the plain ones only (5 PUTs, 4 GETs): never a failing precondition, metadata, a Range, a key
    # with a space or a missing key
    assert answered_fast == 9, answered_fast
    assert fast[0]["versioned"] and "x-amz-checksum-crc32" in dict(fast[0]["headers"])
    assert fast[2][:2] == ("error", "PreconditionFailed") and fast[-1] != []


def test_named_queue_attributes_are_what_all_of_them_say(server):
    from botocore.exceptions import ClientError

    sqs = client(server, "sqs")
    url = sqs.create_queue(QueueName="named-attributes", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "m"} for i in range(3)])
    sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "VisibilityTimeout",
             "MessageRetentionPeriod", "QueueArn"]
    every = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    named = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    assert named == {k: every[k] for k in names}
    assert (named["ApproximateNumberOfMessages"], named["ApproximateNumberOfMessagesNotVisible"]) == ("2", "1")
    with pytest.raises(ClientError, match="InvalidAttributeName"):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout", "NoSuchAttribute"])


def _dynamodb_story(server: ThreadServer, table: str) -> list:
    import json

    from botocore.exceptions import ClientError

    ddb = client(server, "dynamodb")
    ddb.create_table(TableName=table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")

    def seen(**kwargs):
        try:
            r = ddb.put_item(**{"TableName": table, **kwargs})
        except ClientError as exc:
            return ("error", exc.response["Error"]["Code"], exc.response.get("Item"))
        return json.loads(json.dumps({k: v for k, v in r.items() if k != "ResponseMetadata"}).replace(table, "T"))

    claim = {"ConditionExpression": "attribute_not_exists(pk) OR #s = :failed",
             "ExpressionAttributeNames": {"#s": "status"}, "ExpressionAttributeValues": {":failed": {"S": "FAILED"}},
             "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
    story = [seen(Item={"pk": {"S": "plain"}, "n": {"N": "1"}}),
             seen(Item={"pk": {"S": "claimed"}, "status": {"S": "IN_PROGRESS"}}, **claim),
             seen(Item={"pk": {"S": "claimed"}, "status": {"S": "IN_PROGRESS"}}, **claim),
             seen(Item={"pk": {"S": "claimed"}, "status": {"S": "COMPLETED"}, "ttl": {"N": "99"}}),
             seen(Item={"pk": {"S": "failed"}, "status": {"S": "FAILED"}}),
             seen(Item={"pk": {"S": "failed"}, "status": {"S": "IN_PROGRESS"}}, **claim),
             seen(Item={"pk": {"S": ""}}),
             seen(Item={"pk": {"S": "unused"}}, ConditionExpression="attribute_not_exists(pk)",
                  ExpressionAttributeNames={"#s": "status"}),
             seen(Item={"pk": {"S": "old"}, "v": {"N": "2"}}, ReturnValues="ALL_OLD"),
             seen(Item={"pk": {"S": "old"}, "v": {"N": "3"}}, ReturnValues="ALL_OLD"),
             seen(Item={"pk": {"S": "capacity"}}, ReturnConsumedCapacity="TOTAL"),
             seen(Item={"pk": {"S": "bad"}}, ConditionExpression="attribute_not_exists(pk) AND"),
             seen(Item={"pk": {"S": "binary"}, "b": {"B": b"\x00\x01"}}),
             seen(Item={"pk": {"S": "binary"}, "b": {"B": b"\x00\x01"}, "v": {"N": "2"}}, ConditionExpression="b = :b",
                  ExpressionAttributeValues={":b": {"B": b"\x00\x01"}}),
             seen(TableName=f"{table}-missing", Item={"pk": {"S": "x"}})]
    story.append(sorted(ddb.scan(TableName=table)["Items"], key=lambda i: i["pk"]["S"]))
    return story


def test_the_dynamodb_fast_path_answers_what_moto_answers(server, monkeypatch):
    fast, moto, answered_fast = _told_twice(server, monkeypatch, "dynamodb", _dynamodb_story)
    assert fast == moto
    # plain, the first claim, the completion, the failed one, its claim: never an error, a
    # ReturnValues, a consumed capacity, a binary value (moto decodes it) or a missing table
    assert answered_fast == 5, answered_fast
    assert fast[2][:2] == ("error", "ConditionalCheckFailedException") and fast[2][2]["status"] == {"S": "IN_PROGRESS"}
    assert [row["pk"]["S"] for row in fast[-1]] == ["binary", "capacity", "claimed", "failed", "old", "plain"]
    assert fast[-1][0]["v"] == {"N": "2"}  # the binary condition held


def _sqs_story(server: ThreadServer, name: str) -> list:
    from botocore.exceptions import ClientError

    sqs = client(server, "sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    fifo = sqs.create_queue(QueueName=f"{name}.fifo", Attributes={"FifoQueue": "true",
                                                                  "ContentBasedDeduplication": "true"})["QueueUrl"]

    def seen(call, **kwargs):
        try:
            r = call(**kwargs)
        except ClientError as exc:
            return ("error", exc.response["Error"]["Code"])
        return {k: sorted((sorted((f, "id" if f in ("MessageId", "SequenceNumber") else v) for f, v in e.items())
                           for e in v), key=str)
                for k, v in r.items() if k != "ResponseMetadata"}

    def entries(n, **extra):
        return [{"Id": f"m{i}", "MessageBody": f"body {i}", **extra} for i in range(n)]

    story = [seen(sqs.send_message_batch, QueueUrl=url, Entries=entries(2)),
             seen(sqs.send_message_batch, QueueUrl=url, Entries=entries(1, MessageAttributes={
                 "k": {"DataType": "String", "StringValue": "v"}})),
             seen(sqs.send_message_batch, QueueUrl=url, Entries=entries(1, DelaySeconds=0)),
             seen(sqs.send_message_batch, QueueUrl=url, Entries=entries(1) + entries(1)),
             seen(sqs.send_message_batch, QueueUrl=url, Entries=[{"Id": "not ok!", "MessageBody": "x"}]),
             seen(sqs.send_message_batch, QueueUrl=url, Entries=entries(11)),
             seen(sqs.send_message_batch, QueueUrl=fifo, Entries=entries(1, MessageGroupId="g")),
             seen(sqs.send_message_batch, QueueUrl=f"{url}-missing", Entries=entries(1))]
    received = []
    while msgs := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get("Messages"):
        received += msgs
    story.append(sorted(m["Body"] for m in received))
    handles = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)]
    story += [seen(sqs.delete_message_batch, QueueUrl=url, Entries=handles[:1] * 2),
              seen(sqs.delete_message_batch, QueueUrl=url, Entries=handles[:2] + [{"Id": "x", "ReceiptHandle": "bogus"}]),
              seen(sqs.delete_message_batch, QueueUrl=url, Entries=handles[:1]),
              seen(sqs.delete_message_batch, QueueUrl=f"{url}-missing", Entries=handles[:1])]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])
    story.append(attrs["Attributes"])
    return story


def test_the_sqs_fast_path_answers_what_moto_answers(server, monkeypatch):
    fast, moto, answered_fast = _told_twice(server, monkeypatch, "sqs", _sqs_story)
    assert fast == moto
    # the plain send, and the delete of two good handles and a bogus one, and of one deleted
    # already: never attributes, a delay, a FIFO queue, a duplicate or a missing queue
    assert answered_fast == 3, answered_fast
    assert fast[8] == ["body 0", "body 0", "body 0", "body 1"]
    assert fast[10]["Failed"] != [] and fast[-1] == {"ApproximateNumberOfMessages": "0",
                                                     "ApproximateNumberOfMessagesNotVisible": "2"}
