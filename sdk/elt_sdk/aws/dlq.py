"""The dead-letter queue: list it, show a message, redrive it to the queue, purge it.

A redrive uses SQS's message move task where the endpoint has one (it moves messages as they
are, server side). Otherwise, and with a limit (``max_messages``), it receives, sends to the
queue, and deletes from the DLQ only what the queue accepted: interrupted anywhere, a message is
in the DLQ (back after the receive's visibility timeout), in the queue, or both; never in
neither. A message in both is a duplicate delivery, which the commit protocol absorbs (a version
already committed is skipped; one committed twice replaces its own rows). Messages redriven this
way are sent with ``force`` off and marked ``elt_redriven``, so an object whose version was
committed meanwhile (by a replay, say) is skipped rather than transformed again, and without
their ``elt_error`` attribute. (SQS's own move task sends messages unchanged: one of those whose
version was committed meanwhile is transformed again, and the commit then finds it a duplicate.)
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from elt_sdk import logs

from elt_sdk.aws.dead_letter import ERROR_ATTR, REDRIVEN_ATTR  # noqa: F401 - ERROR_ATTR: part of this module's interface

log = logs.get("dlq")


@dataclass
class DlqMessage:
    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    message_attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def pointer(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        return data if isinstance(data, dict) and "key" in data else None

    @property
    def error(self) -> str | None:
        return self.message_attributes.get(ERROR_ATTR, {}).get("StringValue")

    def summary(self) -> dict[str, Any]:
        p = self.pointer or {}
        sent = int(self.attributes.get("SentTimestamp", 0)) / 1000
        return {"message_id": self.message_id, "key": p.get("origin") or p.get("key"), "bucket": p.get("bucket"),
                "copy": p.get("key") if p.get("origin") else None, "dataset": p.get("dataset"), "etag": p.get("etag"),
                "chunk": p.get("chunk_index", 0) if p.get("chunk_count", 1) > 1 else None, "force": p.get("force"),
                "error": self.error, "receive_count": int(self.attributes.get("ApproximateReceiveCount", 0) or 0),
                "sent_at": sent or None, "age_s": round(time.time() - sent, 1) if sent else None,
                **({} if self.pointer else {"body": self.body[:2000]})}


def _receive(sqs: Any, url: str, n: int, hold_s: int) -> list[DlqMessage]:
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=max(1, min(n, 10)), AttributeNames=["All"],
                               MessageAttributeNames=["All"], VisibilityTimeout=hold_s,
                               WaitTimeSeconds=0).get("Messages", [])
    return [DlqMessage(m["MessageId"], m["ReceiptHandle"], m["Body"], m.get("Attributes", {}),
                       m.get("MessageAttributes", {})) for m in msgs]


def _release(sqs: Any, url: str, msgs: list[DlqMessage]) -> None:
    """Make received messages visible again at once."""
    for i in range(0, len(msgs), 10):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(n), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0} for n, m in enumerate(msgs[i:i + 10])])


def snapshot(sqs: Any, url: str, *, limit: int | None = None, hold_s: int = 10) -> list[DlqMessage]:
    """Every message of the DLQ (up to ``limit``), each received once and then made visible again."""
    seen: dict[str, DlqMessage] = {}
    received: list[DlqMessage] = []
    empty = 0
    try:
        while limit is None or len(seen) < limit:
            got = _receive(sqs, url, 10 if limit is None else limit - len(seen), hold_s)
            received += got
            new = [m for m in got if m.message_id not in seen]
            for m in new:
                seen[m.message_id] = m
            if not new:
                empty += 1
                if empty >= 2:
                    break
            else:
                empty = 0
    finally:
        _release(sqs, url, received)
    return sorted(seen.values(), key=lambda m: int(m.attributes.get("SentTimestamp", 0)))


def depth(sqs: Any, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs.get("ApproximateNumberOfMessages", 0)) + int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))


def unforced(body: str) -> str:
    """A pointer message's body with ``force`` off (other bodies unchanged)."""
    from elt_sdk.aws.messages import ObjectPointer
    from elt_sdk.errors import BadMessage

    try:
        pointer = ObjectPointer.from_json(body)
    except BadMessage:
        return body
    return dataclasses.replace(pointer, force=False).to_json() if pointer.force else body


def _sendable(attrs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, a in attrs.items():
        if name == ERROR_ATTR:
            continue
        value = {k: a[k] for k in ("DataType", "StringValue", "BinaryValue") if k in a}
        if "StringValue" in value or "BinaryValue" in value:
            out[name] = value
    return out


@dataclass
class RedriveResult:
    mode: str
    moved: int = 0
    failed: int = 0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def redrive(sqs: Any, dlq_url: str, queue_url: str, *, max_messages: int | None = None, native: bool = True,
            hold_s: int = 30, on_moved: Callable[[int], None] = lambda n: None,
            move_timeout_s: float = 600.0) -> RedriveResult:
    """Move the DLQ's messages back to the queue (at most ``max_messages``)."""
    if native and max_messages is None:
        moved = _move_task(sqs, dlq_url, queue_url, move_timeout_s)
        if moved is not None:
            return moved
    result = RedriveResult("receive-send-delete")
    budget = max_messages if max_messages is not None else depth(sqs, dlq_url)
    # at most what was there when we started: a message that fails again at once and comes back
    # while we work is not redriven a second time
    while result.moved + result.failed < budget:
        msgs = _receive(sqs, dlq_url, budget - result.moved - result.failed, hold_s)
        if not msgs:
            break
        resp = sqs.send_message_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "MessageBody": unforced(m.body),
             "MessageAttributes": {**_sendable(m.message_attributes), REDRIVEN_ATTR: {"DataType": "String", "StringValue": "1"}}}
            for n, m in enumerate(msgs)])
        sent = {int(s["Id"]) for s in resp.get("Successful", [])}
        ok = [m for n, m in enumerate(msgs) if n in sent]
        if ok:  # deleted only once the queue holds them
            sqs.delete_message_batch(QueueUrl=dlq_url, Entries=[
                {"Id": str(n), "ReceiptHandle": m.receipt_handle} for n, m in enumerate(ok)])
        refused = [m for n, m in enumerate(msgs) if n not in sent]
        if refused:
            _release(sqs, dlq_url, refused)
            result.failed += len(refused)
            result.detail = str(resp.get("Failed", [])[:1])
            logs.warning(log, "the queue refused some redriven messages; they stay in the DLQ", failed=resp.get("Failed"))
        result.moved += len(ok)
        on_moved(len(ok))
    return result


def _move_task(sqs: Any, dlq_url: str, queue_url: str, timeout_s: float) -> RedriveResult | None:
    """SQS's own redrive (server side, messages unchanged); None when the endpoint has none."""
    arn = lambda url: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]  # noqa: E731
    source, dest = arn(dlq_url), arn(queue_url)
    try:
        handle = sqs.start_message_move_task(SourceArn=source, DestinationArn=dest)["TaskHandle"]
    except Exception as exc:  # noqa: BLE001 - not implemented (moto: HTTP 500), not permitted: do it by hand
        logs.info(log, "no message move task on this endpoint; redriving by receive, send, delete",
                  error=f"{type(exc).__name__}: {exc}"[:300])
        return None
    deadline = time.time() + timeout_s
    while True:
        tasks = sqs.list_message_move_tasks(SourceArn=source, MaxResults=10).get("Results", [])
        task = next((t for t in tasks if t.get("TaskHandle") == handle), tasks[0] if tasks else {})
        status = task.get("Status", "RUNNING")
        if status in ("COMPLETED", "FAILED", "CANCELLED") or time.time() > deadline:
            moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
            return RedriveResult("message-move-task", moved=moved, failed=0 if status == "COMPLETED" else 1,
                                 detail=f"{status}{': ' + task['FailureReason'] if task.get('FailureReason') else ''}")
        time.sleep(1)


def purge(sqs: Any, dlq_url: str) -> int:
    """Delete every message of the DLQ; how many there were."""
    n = depth(sqs, dlq_url)
    sqs.purge_queue(QueueUrl=dlq_url)
    return n
