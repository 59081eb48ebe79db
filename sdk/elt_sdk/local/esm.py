"""How Lambda feeds functions, re-enacted against SQS on the embedded endpoint.

``EventSourceMapping`` is the SQS event source: batches of up to ``batch_size`` records in the
real event shape, ``batchItemFailures`` honoured, failed messages left on the queue so SQS counts
their receives and moves them to the DLQ after maxReceiveCount. ``AsyncInvoker`` is S3's async
invoke of the ingest function: the event is the message body, retried twice on error, as Lambda
does by default.
"""
from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote_plus

from elt_sdk.aws.context import LambdaContext  # noqa: F401 - also importable from here, as before

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class Stats:
    invocations: int = 0
    messages: int = 0
    succeeded: int = 0
    failed: int = 0
    results: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)
    """Receipt handles of the messages a poll received and then deleted or made visible again."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Receiving:
    """What both pollers tell about the messages they hold: ``on_receive`` (set by the caller)
    hears of a batch before the handler runs, ``stats.settled`` once it is dealt with; a process
    that dies in between leaves the rest to its parent (``function.py`` makes them visible again)."""

    on_receive: Callable[[list[str]], None] | None = None
    stats: Stats

    def _received(self, msgs: list[dict[str, Any]]) -> None:
        if self.on_receive is not None and msgs:
            self.on_receive([m["ReceiptHandle"] for m in msgs])

    def _settled(self, msgs: list[dict[str, Any]]) -> None:
        if self.on_receive is not None and msgs:
            with self.stats.lock:
                self.stats.settled.extend(m["ReceiptHandle"] for m in msgs)


class EventSourceMapping(_Receiving):
    def __init__(self, sqs: Any, queue_url: str, handler: Handler, *, function_name: str, timeout_s: int,
                 batch_size: int, region: str, retry_delay_s: int = 0, wait_s: int = 0):
        self.sqs, self.queue_url, self.handler = sqs, queue_url, handler
        self.function_name, self.timeout_s, self.batch_size = function_name, timeout_s, batch_size
        self.region = region
        self.retry_delay_s = retry_delay_s  # Lambda waits out the visibility timeout; locally we need not
        self.wait_s = wait_s  # long polling, as the event source mapping does (0: answer at once, for tests)
        self.arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.stats = Stats()

    def poll_once(self) -> int:
        msgs = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=min(self.batch_size, 10),
                                        AttributeNames=["All"], MessageAttributeNames=["All"],
                                        WaitTimeSeconds=self.wait_s).get("Messages", [])
        if not msgs:
            return 0
        self._received(msgs)
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
        self._settled(msgs)
        with self.stats.lock:
            self.stats.invocations += 1
            self.stats.messages += len(msgs)
            self.stats.succeeded += len(done)
            self.stats.failed += len(msgs) - len(done)
        return len(msgs)


class AsyncInvoker(_Receiving):
    """S3 -> Lambda: each notification (a message on the local events queue) is one async invoke;
    like Lambda, several run at once (up to ``concurrency``), each retried twice on error."""

    def __init__(self, sqs: Any, queue_url: str, handler: Handler, *, function_name: str, timeout_s: int,
                 retry_attempts: int = 2, concurrency: int = 8, wait_s: int = 0):
        self.sqs, self.queue_url, self.handler = sqs, queue_url, handler
        self.function_name, self.timeout_s, self.retry_attempts = function_name, timeout_s, retry_attempts
        self.stats = Stats()
        self.given_up: list[dict[str, Any]] = []
        self.deliveries: list[tuple[str, str]] = []
        """(object key, event body) for each S3 event handled, in order: to deliver one again
        (``local/function.py`` reports the new ones; the last body for a key is the one to send)."""
        self._pool = ThreadPoolExecutor(max(concurrency, 1), thread_name_prefix="elt-ingest")
        self.wait_s = wait_s

    def poll_once(self) -> int:
        msgs = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                        AttributeNames=["ApproximateReceiveCount"],
                                        WaitTimeSeconds=self.wait_s).get("Messages", [])
        self._received(msgs)
        done = list(self._pool.map(self._invoke, msgs))
        finished = [m for m, ok in zip(msgs, done) if ok]
        for i in range(0, len(finished), 10):
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(finished[i:i + 10])])
        for m, ok in zip(msgs, done):
            if not ok:  # retried at once (Lambda waits a minute or two)
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"],
                                                   VisibilityTimeout=0)
        self._settled(msgs)
        return len(msgs)

    def _invoke(self, m: dict[str, Any]) -> bool:
        """One async invocation; True when the event is done with (handled, or given up on)."""
        event = json.loads(m["Body"])
        for record in event.get("Records", []) if isinstance(event, dict) else []:
            key = record.get("s3", {}).get("object", {}).get("key")
            if key:
                self.deliveries.append((unquote_plus(key), m["Body"]))
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
            elif attempt > self.retry_attempts:
                self.stats.failed += 1
                self.given_up.append(event)  # Lambda's on-failure destination
        return ok or attempt > self.retry_attempts

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def queue_depth(sqs: Any, queue_url: str) -> int:
    """Visible + in-flight (+ delayed) messages."""
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attrs.values())
