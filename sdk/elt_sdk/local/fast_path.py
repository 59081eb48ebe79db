"""The requests a local run makes most, answered from moto's backends without its web layer.

Each object a local run carries costs five plain S3 object GETs and PUTs (the upload, the read,
the pending manifest, the file, the commit record), two DynamoDB ``PutItem`` (ingest's claim
and its completion), an SQS send and a share of a delete. moto answers one in about 1.1 ms of
its process's CPU, of which its backend takes 0.15 ms (S3 ``put_object``), 0.005 ms
(``get_object``) or 0.17 ms (``put_item`` with its condition): the rest is Flask, werkzeug and
moto's generic response classes, which parse every header and the body against the service
model for every option the service has.

Here such a request is answered by the same backend and validation calls moto's own handler
makes (``S3Response.put_object``/``get_object``, ``DynamoHandler.put_item``,
``SQSResponse.send_message_batch``/``delete_message_batch``), with the headers it answers, but
only when nothing in it needs more:

- S3: a path-style key of plain characters, no query, no header outside the few boto3 sends for
  a plain call (a CRC32 checksum included), ``If-Match``/``If-None-Match`` that hold, a bucket
  with no policy, CORS, default encryption, object lock or access logging;
- DynamoDB: a ``PutItem`` with an item and at most a condition expression and its names and
  values, no binary values (moto decodes them from base64 as it parses), no return values, on a
  table that exists, whose validation and condition pass;
- SQS: a ``SendMessageBatch`` of messages with a body and nothing else, or a
  ``DeleteMessageBatch``, on a standard queue, whose entries moto's checks accept.

Never with moto's IAM enforcement on (``INITIAL_NO_AUTH_ACTION_COUNT``), an ``x-moto-account-id``
header, or outside the ``aws`` partition. Anything else, a failing precondition or condition
included, returns ``None`` before anything is written (the body put back), and moto answers it,
errors and all; an error after a write is the request's error (a 500), never a second write.
moto's bookkeeping of which access keys were used (``mark_account_as_visited``) is skipped.
"""
from __future__ import annotations

import io
import json
import os
import re
import uuid
import zlib
from typing import Any, Callable

Answer = Callable[[Callable], "list[bytes] | None"]
"""What a request will be answered with, decided before anything is written: call it to write
and answer (or, where the backend itself refuses before writing, None)."""

_SEGMENT = r"(?!\.\.?(?:/|$))[A-Za-z0-9._=+-]+"
PLAIN_KEY = re.compile(rf"/[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/(?:{_SEGMENT}/)*{_SEGMENT}")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
SENT_BY_BOTO3 = frozenset({
    "HTTP_HOST", "HTTP_ACCEPT_ENCODING", "HTTP_USER_AGENT", "HTTP_AUTHORIZATION", "HTTP_CONNECTION",
    "HTTP_AMZ_SDK_INVOCATION_ID", "HTTP_AMZ_SDK_REQUEST", "HTTP_X_AMZ_DATE", "HTTP_X_AMZ_SECURITY_TOKEN",
    "HTTP_X_AMZ_CONTENT_SHA256", "HTTP_IF_MATCH",
})
PUT_ALSO = frozenset({"HTTP_EXPECT", "HTTP_IF_NONE_MATCH", "HTTP_X_AMZ_CHECKSUM_CRC32",
                      "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"})
GET_ALSO = frozenset({"HTTP_X_AMZ_CHECKSUM_MODE"})
CREDENTIAL = re.compile(r"Credential=([^/,]+)/([^/,]*)/([^/,]+)/([^/,]+)/")
PUT_ITEM = "DynamoDB_20120810.PutItem"
SEND_BATCH, DELETE_BATCH = "AmazonSQS.SendMessageBatch", "AmazonSQS.DeleteMessageBatch"
PUT_ITEM_FIELDS = frozenset({"TableName", "Item", "ConditionExpression", "ExpressionAttributeNames",
                             "ExpressionAttributeValues", "ReturnValues", "ReturnConsumedCapacity",
                             "ReturnValuesOnConditionCheckFailure"})
UNEXPECTED = (ImportError, AttributeError, KeyError, TypeError, ValueError)
"""moto's internals moved, or the request is odd: moto answers it, its own way."""


def s3_object(environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    """The response to a plain object GET or PUT, or None for moto to answer."""
    return _answer(_plan_s3, environ, start_response)


def dynamodb_put_item(environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    """The response to a plain ``PutItem``, or None for moto to answer (the body left for it)."""
    return _answer(_plan_put_item, environ, start_response)


def sqs_batch(environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    """The response to a ``SendMessageBatch`` of plain messages or a ``DeleteMessageBatch``, or
    None for moto to answer (the body left for it)."""
    return _answer(_plan_sqs_batch, environ, start_response)


def _answer(plan: Callable[[dict[str, Any]], Answer | None], environ: dict[str, Any],
            start_response: Callable) -> list[bytes] | None:
    """Plan (where anything unexpected leaves the request to moto), then write and answer (where
    nothing is caught: after a write, an error is the request's)."""
    try:
        answer = plan(environ)
    except UNEXPECTED:
        return None
    return answer(start_response) if answer is not None else None


def _account_and_region(environ: dict[str, Any]) -> tuple[str, str] | None:
    """The account moto answers this request for (the one its access key maps to) and the region
    its signature names; None where moto would decide otherwise or check more."""
    from moto import settings
    from moto.iam.models import get_account_id_from
    from moto.utilities.utils import get_partition

    scope = credential_scope(environ)
    if scope is None or "HTTP_X_MOTO_ACCOUNT_ID" in environ or settings.INITIAL_NO_AUTH_ACTION_COUNT != float("inf") \
            or get_partition(scope[2]) != "aws":
        return None
    account = os.environ["MOTO_ACCOUNT_ID"] if "MOTO_ACCOUNT_ID" in os.environ else get_account_id_from(scope[0])
    return account, scope[2]


def credential_scope(environ: dict[str, Any]) -> tuple[str, str, str, str] | None:
    """(access key, date, region, service) from a SigV4 request's ``Authorization`` header, or
    None for an unsigned request."""
    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.groups() if match else None  # type: ignore[return-value]


def _read_body(environ: dict[str, Any]) -> bytes:
    """The request's body, put back for moto to read should it answer after all."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    return raw


def _plan_s3(environ: dict[str, Any]) -> Answer | None:
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
    if method not in ("GET", "PUT") or environ.get("QUERY_STRING") or host not in LOOPBACK_HOSTS \
            or not PLAIN_KEY.fullmatch(path) or environ.get("CONTENT_TYPE") \
            or environ.get("HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING-"):
        return None
    allowed = SENT_BY_BOTO3 | (PUT_ALSO if method == "PUT" else GET_ALSO)
    if any(k.startswith("HTTP_") and k not in allowed for k in environ):
        return None
    who = _account_and_region(environ)
    if who is None:
        return None
    from moto.s3.models import s3_backends

    backend = s3_backends[who[0]]["aws"]
    bucket_name, key_name = path[1:].split("/", 1)
    bucket = backend.buckets.get(bucket_name)
    if bucket is None or bucket.policy or bucket.cors or bucket.encryption or bucket.object_lock_enabled \
            or bucket.logging:
        return None
    if method == "PUT":
        return _plan_put(backend, bucket, key_name, environ)
    return _plan_get(backend, bucket_name, key_name, environ)


def _plan_put(backend: Any, bucket: Any, key_name: str, environ: dict[str, Any]) -> Answer | None:
    from moto.s3.utils import metadata_from_headers
    from werkzeug.datastructures import EnvironHeaders

    algorithm = environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM")
    checksum = environ.get("HTTP_X_AMZ_CHECKSUM_CRC32")
    if (algorithm or checksum) and (algorithm != "CRC32" or not checksum):
        return None  # another algorithm, or a checksum in a trailer: moto reads it
    if_match, if_none_match = environ.get("HTTP_IF_MATCH"), environ.get("HTTP_IF_NONE_MATCH")
    if if_match or if_none_match:  # under the server's lock: nothing changes the key until the write
        current = backend.get_object(bucket.name, key_name)
        if if_none_match and (if_none_match != "*" or current is not None):
            return None
        if if_match and (current is None or if_match.replace('"', "") != current.etag.replace('"', "")):
            return None
    metadata = metadata_from_headers(EnvironHeaders(environ))
    body = _read_body(environ)

    def write(start_response: Callable) -> list[bytes]:
        new_key = backend.put_object(bucket.name, key_name, body, storage="STANDARD", encryption=None,
                                     kms_key_id=None, bucket_key_enabled=None, lock_mode=None, lock_legal_status=None,
                                     lock_until=None, checksum_value=checksum)
        new_key.set_metadata(metadata)
        new_key.set_acl(bucket.acl)
        new_key.website_redirect_location = None
        headers = {}
        if algorithm:
            new_key.checksum_algorithm = algorithm
            headers["x-amz-checksum-crc32"] = checksum
        backend.put_object_tagging(new_key, {})
        headers.update(new_key.response_dict)
        return _respond(start_response, headers, b"", content_type="text/html; charset=utf-8")  # as moto answers

    return write


def _plan_get(backend: Any, bucket_name: str, key_name: str, environ: dict[str, Any]) -> Answer | None:
    from moto.s3.utils import ARCHIVE_STORAGE_CLASSES

    key = backend.get_object(bucket_name, key_name)
    if key is None or key.storage_class in ARCHIVE_STORAGE_CLASSES:
        return None
    if_match = environ.get("HTTP_IF_MATCH")
    if if_match and key.etag not in (if_match, f'"{if_match}"'):
        return None
    headers: dict[str, str] = {}
    if key.version_id != "null":
        headers["x-amz-version-id"] = key.version_id
    headers.update(key.response_dict)
    if environ.get("HTTP_X_AMZ_CHECKSUM_MODE") == "ENABLED" and key.checksum_algorithm:
        value = key.checksum_value
        if key.checksum_type == "COMPOSITE":
            value = f"{key.checksum_value}-{key.checksum_parts}"
        headers[f"x-amz-checksum-{key.checksum_algorithm.lower()}"] = value
        if key.checksum_type:
            headers["x-amz-checksum-type"] = key.checksum_type
    headers.update(key.metadata)
    headers["Accept-Ranges"] = "bytes"
    body = key.value
    return lambda start_response: _respond(start_response, headers, body)


def _has_binary(value: Any) -> bool:
    """A ``B``/``BS`` value anywhere in DynamoDB JSON."""
    if isinstance(value, dict):
        return "B" in value or "BS" in value or any(_has_binary(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_binary(v) for v in value)
    return False


def _plan_put_item(environ: dict[str, Any]) -> Answer | None:
    from moto.dynamodb.comparisons import create_condition_expression_parser
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.responses import (validate_attributes_used, validate_put_has_empty_attrs,
                                         validate_put_has_empty_keys, validate_put_has_gsi_keys_set_to_none)

    who = _account_and_region(environ) if environ.get("HTTP_X_AMZ_TARGET") == PUT_ITEM else None
    if who is None:
        return None
    request = json.loads(_read_body(environ))
    if not isinstance(request, dict) or not set(request) <= PUT_ITEM_FIELDS \
            or request.get("ReturnValues", "NONE") != "NONE" or request.get("ReturnConsumedCapacity", "NONE") != "NONE":
        return None
    backend = dynamodb_backends[who[0]][who[1]]
    name, item = request["TableName"], request["Item"]
    table = backend.tables.get(name)
    condition = request.get("ConditionExpression")
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues")
    if table is None or _has_binary(item) or _has_binary(values) or (values is not None and (
            not values or any(not k.startswith(":") or v == {"NS": []} for k, v in values.items()))):
        return None
    try:  # what moto's handler checks, in its order
        validate_put_has_empty_keys(item, table)
        validate_put_has_empty_attrs(item, table)
        validate_put_has_gsi_keys_set_to_none(item, table)
        parser = create_condition_expression_parser(condition, names, values or {})
        parser.parse()
        validate_attributes_used(names, parser.expr_attr_names_found)
    except DynamodbException:
        return None

    def write(start_response: Callable) -> list[bytes] | None:
        try:
            backend.put_item(name, item, None, condition, names, values or {}, not condition,
                             request.get("ReturnValuesOnConditionCheckFailure"))
        except DynamodbException:  # the backend's own checks and the condition: raised before it writes
            return None
        body = b"{}"
        return _respond(start_response, {"x-amz-crc32": str(zlib.crc32(body) & 0xFFFFFFFF)}, body,
                        content_type="application/x-amz-json-1.0")

    return write


def _plan_sqs_batch(environ: dict[str, Any]) -> Answer | None:
    from moto.sqs.exceptions import SQSException
    from moto.sqs.models import sqs_backends

    target = environ.get("HTTP_X_AMZ_TARGET")
    who = _account_and_region(environ) if target in (SEND_BATCH, DELETE_BATCH) else None
    if who is None:
        return None
    request = json.loads(_read_body(environ))
    entries = request.get("Entries") if isinstance(request, dict) else None
    if set(request or ()) != {"QueueUrl", "Entries"} or not isinstance(entries, list) or not entries:
        return None
    backend = sqs_backends[who[0]][who[1]]
    queue_name = request["QueueUrl"].rsplit("/", 1)[-1]
    queue = backend.queues.get(queue_name)
    if queue is None or queue.fifo_queue:
        return None
    if target == SEND_BATCH:
        if any(set(e) != {"Id", "MessageBody"} for e in entries):
            return None  # attributes, delays, groups: moto's to validate

        def send(start_response: Callable) -> list[bytes] | None:
            try:  # moto checks every entry before it sends any
                sent, failed = backend.send_message_batch(queue_name, {
                    str(i): {**e, "MessageAttributes": {}, "DelaySeconds": None} for i, e in enumerate(entries)})
            except SQSException:
                return None
            return _json(start_response, {"Successful": [{"Id": m.user_id, "MessageId": m.id,
                                                          "MD5OfMessageBody": m.body_md5} for m in sent],
                                          "Failed": failed})

        return send
    handles = [e["ReceiptHandle"] for e in entries]
    if len(set(handles)) != len(handles):
        return None  # moto's BatchEntryIdsNotDistinct

    def delete(start_response: Callable) -> list[bytes] | None:
        try:  # an unknown queue is refused before any delete; a bad handle is a failed entry
            done, failed = backend.delete_message_batch(queue_name, entries)
        except SQSException:
            return None
        return _json(start_response, {"Successful": [{"Id": i} for i in done], "Failed": failed})

    return delete


def _json(start_response: Callable, result: dict[str, Any]) -> list[bytes]:
    return _respond(start_response, {}, json.dumps(result).encode(), content_type="application/x-amz-json-1.0")


def _respond(start_response: Callable, headers: dict[str, Any], body: bytes, content_type: str = "") -> list[bytes]:
    out = [(k, str(v)) for k, v in headers.items() if k.lower() != "content-length"]
    out += [("Content-Length", str(len(body))), ("x-amzn-requestid", uuid.uuid4().hex),
            ("Access-Control-Allow-Origin", "*")]
    if content_type:
        out.append(("Content-Type", content_type))
    start_response("200 OK", out)
    return [body]
