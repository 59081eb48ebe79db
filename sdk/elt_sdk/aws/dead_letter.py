"""Moving a message that can never succeed to a DLQ at once, with its reason: the transform's
and the committer's functions do it (``aws/dlq.py`` is the operator's side of the DLQ)."""
from __future__ import annotations

from typing import Any

from elt_sdk import logs

log = logs.get("dlq")
ERROR_ATTR = "elt_error"
"""The message attribute holding why a message was dead-lettered."""
REDRIVEN_ATTR = "elt_redriven"
"""Set on a message ``elt-sdk dlq redrive`` sent back to the queue: its first receive there is
not a first delivery (the transform checks for a committed version before transforming)."""


def dead_letter(sqs: Any, dlq_url: str | None, record: dict[str, Any], reason: str) -> bool:
    """Send a Lambda SQS record to the DLQ now. False when there is no DLQ to send to or the send
    failed: the record then stays on its queue, whose redrive policy applies."""
    if sqs is None or not dlq_url:
        return False
    try:
        sqs.send_message(QueueUrl=dlq_url, MessageBody=record["body"], MessageAttributes={
            ERROR_ATTR: {"DataType": "String", "StringValue": reason[:4000]},
            "elt_source_message_id": {"DataType": "String", "StringValue": str(record.get("messageId", "?"))}})
    except Exception:  # noqa: BLE001 - see above
        logs.error(log, "could not send the message to the DLQ; it stays on the queue", exc_info=True)
        return False
    return True
