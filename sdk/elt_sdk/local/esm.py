"""How Lambda feeds functions, re-enacted against SQS on the embedded endpoint.

``EventSourceMapping`` is the SQS event source: batches of up to ``batch_size`` records in the
real event shape, ``batchItemFailures`` honoured, failed messages left on the queue so SQS counts
their receives and moves them to the DLQ after maxReceiveCount. ``AsyncInvoker`` is S3's async
invoke of the ingest function: the event is the message body, retried twice on error, as Lambda
does by default.
"""
from __future__ import annotations

import json
from urllib.parse import unquote_plus
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LambdaContext:
    function_name: str
    timeout_s: int
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.time)
    memory_limit_in_mb: int = 1024

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout_s - time.time()) * 1000))


@dataclass
class Stats:
    invocations: int = 0
    messages: int = 0
    succeeded: int = 0
    failed: int = 0
    results: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class EventSourceMapping:
    def __init__(self, sqs: Any, queue_url: str, handler: Handler, *, function_name: str, timeout_s: int,
                 batch_size: int, region: str, retry_delay_s: int = 0):
        self.sqs, self.queue_url, self.handler = sqs, queue_url, handler
        self.function_name, self.timeout_s, self.batch_size = function_name, timeout_s, batch_size
        self.region = region
        self.retry_delay_s = retry_delay_s  # Lambda waits out the visibility timeout; locally we need not
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.stats = Stats()

    def poll_once(self) -> int:
        msgs = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=min(self.batch_size, 10),
                                        AttributeNames=["All"], MessageAttributeNames=["All"],
                                        WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return 0
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
            "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": self.arn,
            "awsRegion": self.region,
        } for m in msgs]}
        try:
            response = self.handler(event, LambdaContext(self.function_name, self.timeout_s))
            failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        except Exception as exc:  # a crashed invocation fails the whole batch, as in Lambda
            failed = {m["MessageId"] for m in msgs}
            with self.stats.lock:
                self.stats.errors.append(f"{type(exc).__name__}: {exc}")
        done = [m for m in msgs if m["MessageId"] not in failed]
        for i in range(0, len(done), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(done[i:i + 10])])
        for m in msgs:
            if m["MessageId"] in failed:
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                   VisibilityTimeout=self.retry_delay_s)
        with self.stats.lock:
            self.stats.invocations += 1
            self.stats.messages += len(msgs)
            self.stats.succeeded += len(done)
            self.stats.failed += len(msgs) - len(done)
        return len(msgs)


class AsyncInvoker:
    """S3 -> Lambda: each notification (a message on the local events queue) is one async invoke."""

    def __init__(self, sqs: Any, queue_url: str, handler: Handler, *, function_name: str, timeout_s: int,
                 retry_attempts: int = 2):
        self.sqs, self.queue_url, self.handler = sqs, queue_url, handler
        self.function_name, self.timeout_s, self.retry_attempts = function_name, timeout_s, retry_attempts
        self.stats = Stats()
        self.given_up: list[dict[str, Any]] = []
        self.delivered: dict[str, str] = {}
        """The body of the last S3 event handled for each object key (to deliver one again)."""

    def poll_once(self) -> int:
        msgs = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                        AttributeNames=["ApproximateReceiveCount"], WaitTimeSeconds=0).get("Messages", [])
        for m in msgs:
            event = json.loads(m["Body"])
            for record in event.get("Records", []) if isinstance(event, dict) else []:
                key = record.get("s3", {}).get("object", {}).get("key")
                if key:
                    self.delivered[unquote_plus(key)] = m["Body"]
            attempt = int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            try:
                result = self.handler(event, LambdaContext(self.function_name, self.timeout_s))
                ok = True
            except Exception as exc:
                ok, result = False, None
                with self.stats.lock:
                    self.stats.errors.append(f"{type(exc).__name__}: {exc}")
            with self.stats.lock:
                self.stats.invocations += 1
                self.stats.messages += 1
                if ok:
                    self.stats.succeeded += 1
                    self.stats.results.append(result)
            if ok or attempt > self.retry_attempts:
                if not ok:
                    self.stats.failed += 1
                    self.given_up.append(event)  # Lambda's on-failure destination
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
            else:
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                   VisibilityTimeout=0)
        return len(msgs)


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Visible + in-flight (+ delayed) messages."""
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attrs.values())
