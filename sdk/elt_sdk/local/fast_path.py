"""The requests a local run makes most, answered from moto's backends without its web layer.

Each object a local run carries costs five plain S3 object GETs and PUTs (the upload, the read,
the pending manifest, the file, the commit record), two DynamoDB ``PutItem`` (ingest's claim
and its completion), an SQS send and a share of a delete. moto answers one in about 1.1 ms of its process's CPU, of which its backend
takes 0.15 ms (S3 ``put_object``), 0.005 ms (``get_object``) or 0.17 ms (``put_item`` with its
condition): the rest is Flask, werkzeug and moto's generic response classes, which parse every
header and the body against the service model for every option the service has.

Here such a request is answered by the same backend and validation calls moto's own handler
makes (``S3Response.put_object``/``get_object``, ``DynamoHandler.put_item``), with the headers it
answers, but only when nothing in it needs more:

- S3: a path-style key of plain characters, no query, no header outside the few boto3 sends for
  a plain call (a CRC32 checksum included), ``If-Match``/``If-None-Match`` that hold, a bucket
  with no policy, CORS, default encryption or object lock;
- DynamoDB: a ``PutItem`` with an item and at most a condition expression and its names and
  values, no return values, on a table that exists, whose validation and condition pass;
- SQS: a ``SendMessageBatch`` of messages with a body and nothing else, or a
  ``DeleteMessageBatch``, on a standard queue, whose entries moto's checks accept.

Anything else, a failing precondition or condition included, returns ``None`` before anything
is written, and moto answers it, errors and all.
"""
from __future__ import annotations

import io
import json
import os
import re
import uuid
import zlib
from typing import Any, Callable

PLAIN_KEY = re.compile(r"/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9/._=+-]+")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
SENT_BY_BOTO3 = frozenset({
    "HTTP_HOST", "HTTP_ACCEPT_ENCODING", "HTTP_USER_AGENT", "HTTP_AUTHORIZATION", "HTTP_CONNECTION",
    "HTTP_AMZ_SDK_INVOCATION_ID", "HTTP_AMZ_SDK_REQUEST", "HTTP_X_AMZ_DATE", "HTTP_X_AMZ_SECURITY_TOKEN",
    "HTTP_X_AMZ_CONTENT_SHA256", "HTTP_IF_MATCH",
})
PUT_ALSO = frozenset({"HTTP_EXPECT", "HTTP_IF_NONE_MATCH", "HTTP_X_AMZ_CHECKSUM_CRC32",
                      "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"})
GET_ALSO = frozenset({"HTTP_X_AMZ_CHECKSUM_MODE"})
CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]*/([^/]+)/")
PUT_ITEM = "DynamoDB_20120810.PutItem"
SEND_BATCH, DELETE_BATCH = "AmazonSQS.SendMessageBatch", "AmazonSQS.DeleteMessageBatch"
PUT_ITEM_FIELDS = frozenset({"TableName", "Item", "ConditionExpression", "ExpressionAttributeNames",
                             "ExpressionAttributeValues", "ReturnValues", "ReturnConsumedCapacity",
                             "ReturnValuesOnConditionCheckFailure"})


def s3_object(environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    """The response to a plain object GET or PUT, or None for moto to answer."""
    try:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        host = environ.get("HTTP_HOST", "").rsplit(":", 1)[0]
        if method not in ("GET", "PUT") or environ.get("QUERY_STRING") or host not in LOOPBACK_HOSTS \
                or not PLAIN_KEY.fullmatch(path):
            return None
        allowed = SENT_BY_BOTO3 | (PUT_ALSO if method == "PUT" else GET_ALSO)
        if any(k.startswith("HTTP_") and k not in allowed for k in environ) or environ.get("CONTENT_TYPE"):
            return None
        backend = _s3_backend(environ)
        bucket_name, key_name = path[1:].split("/", 1)
        bucket = backend.buckets.get(bucket_name)
        if bucket is None or bucket.policy or bucket.cors or bucket.encryption or bucket.object_lock_enabled:
            return None
        if method == "PUT":
            return _put(backend, bucket, key_name, environ, start_response)
        return _get(backend, bucket_name, key_name, environ, start_response)
    except (ImportError, AttributeError, KeyError, TypeError):  # moto's internals moved: its own way
        return None


def _account_and_region(environ: dict[str, Any]) -> tuple[str, str]:
    """The account moto answers this request for (the one its access key maps to) and the region
    its signature names; KeyError if it is not signed."""
    from moto.iam.models import get_account_id_from

    match = CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        raise KeyError("unsigned")
    return os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(match.group(1)), match.group(2)


def _s3_backend(environ: dict[str, Any]) -> Any:
    from moto.s3.models import s3_backends

    return s3_backends[_account_and_region(environ)[0]]["aws"]


def _put(backend: Any, bucket: Any, key_name: str, environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    from moto.s3.utils import metadata_from_headers
    from werkzeug.datastructures import EnvironHeaders

    algorithm = environ.get("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM")
    checksum = environ.get("HTTP_X_AMZ_CHECKSUM_CRC32")
    if (algorithm or checksum) and (algorithm != "CRC32" or not checksum):
        return None  # another algorithm, or a checksum in a trailer: moto reads it
    if_match, if_none_match = environ.get("HTTP_IF_MATCH"), environ.get("HTTP_IF_NONE_MATCH")
    if if_match or if_none_match:  # checked before the body is read: a failing one is moto's to answer
        current = backend.get_object(bucket.name, key_name)
        if if_none_match and (if_none_match != "*" or current is not None):
            return None
        if if_match and (current is None or if_match.replace('"', "") != current.etag.replace('"', "")):
            return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    new_key = backend.put_object(bucket.name, key_name, body, storage="STANDARD", encryption=None, kms_key_id=None,
                                 bucket_key_enabled=None, lock_mode=None, lock_legal_status=None, lock_until=None,
                                 checksum_value=checksum)
    new_key.set_metadata(metadata_from_headers(EnvironHeaders(environ)))
    new_key.set_acl(bucket.acl)
    new_key.website_redirect_location = None
    headers = {}
    if algorithm:
        new_key.checksum_algorithm = algorithm
        headers["x-amz-checksum-crc32"] = checksum
    backend.put_object_tagging(new_key, {})
    headers.update(new_key.response_dict)
    headers.pop("content-length", None)
    return _respond(start_response, headers, b"", content_type="text/html; charset=utf-8")  # as moto answers


def _get(backend: Any, bucket_name: str, key_name: str, environ: dict[str, Any],
         start_response: Callable) -> list[bytes] | None:
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
    return _respond(start_response, headers, key.value)


def dynamodb_put_item(environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    """The response to a plain ``PutItem``, or None for moto to answer (the body left for it)."""
    try:
        if environ.get("HTTP_X_AMZ_TARGET") != PUT_ITEM:
            return None
        account, region = _account_and_region(environ)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again if this is its to answer
        request = json.loads(raw)
        if not isinstance(request, dict) or not set(request) <= PUT_ITEM_FIELDS \
                or request.get("ReturnValues", "NONE") != "NONE" or request.get("ReturnConsumedCapacity", "NONE") != "NONE":
            return None
        return _put_item(account, region, request, start_response)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):  # moto's internals moved, or odd input
        return None


def _put_item(account: str, region: str, request: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    from moto.dynamodb.comparisons import create_condition_expression_parser
    from moto.dynamodb.exceptions import DynamodbException
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.responses import (validate_attributes_used, validate_put_has_empty_attrs,
                                         validate_put_has_empty_keys, validate_put_has_gsi_keys_set_to_none)

    backend = dynamodb_backends[account][region]
    name, item = request["TableName"], request["Item"]
    table = backend.tables.get(name)
    condition = request.get("ConditionExpression")
    names = request.get("ExpressionAttributeNames", {})
    values = request.get("ExpressionAttributeValues")
    if table is None or (values is not None and (not values or any(not k.startswith(":") or v == {"NS": []}
                                                                    for k, v in values.items()))):
        return None
    try:  # what moto's handler checks, in its order; nothing is written unless all of it passes
        validate_put_has_empty_keys(item, table)
        validate_put_has_empty_attrs(item, table)
        validate_put_has_gsi_keys_set_to_none(item, table)
        parser = create_condition_expression_parser(condition, names, values or {})
        parser.parse()
        validate_attributes_used(names, parser.expr_attr_names_found)
        backend.put_item(name, item, None, condition, names, values or {}, not condition,
                         request.get("ReturnValuesOnConditionCheckFailure"))
    except DynamodbException:  # a validation error or a failed condition, raised before any write
        return None
    body = b"{}"
    return _respond(start_response, {"x-amz-crc32": str(zlib.crc32(body) & 0xFFFFFFFF)}, body,
                    content_type="application/x-amz-json-1.0")


def sqs_batch(environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
    """The response to a ``SendMessageBatch`` of plain messages or a ``DeleteMessageBatch``, or
    None for moto to answer (the body left for it)."""
    try:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target not in (SEND_BATCH, DELETE_BATCH):
            return None
        account, region = _account_and_region(environ)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)  # moto reads it again if this is its to answer
        request = json.loads(raw)
        entries = request.get("Entries") if isinstance(request, dict) else None
        if set(request or ()) != {"QueueUrl", "Entries"} or not isinstance(entries, list) or not entries:
            return None
        return _sqs_batch(target, account, region, request["QueueUrl"].rsplit("/", 1)[-1], entries, start_response)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError):  # moto's internals moved, or odd input
        return None


def _sqs_batch(target: str, account: str, region: str, queue_name: str, entries: list[dict[str, Any]],
               start_response: Callable) -> list[bytes] | None:
    from moto.sqs.exceptions import SQSException
    from moto.sqs.models import sqs_backends

    backend = sqs_backends[account][region]
    queue = backend.queues.get(queue_name)
    if queue is None or queue.fifo_queue:
        return None
    try:  # moto checks every entry before it sends or deletes any: an error here changed nothing
        if target == SEND_BATCH:
            if any(set(e) != {"Id", "MessageBody"} for e in entries):
                return None  # attributes, delays, groups: moto's to validate
            sent, failed = backend.send_message_batch(queue_name, {
                str(i): {**e, "MessageAttributes": {}, "DelaySeconds": None} for i, e in enumerate(entries)})
            result: dict[str, Any] = {"Successful": [{"Id": m.user_id, "MessageId": m.id,
                                                      "MD5OfMessageBody": m.body_md5} for m in sent], "Failed": failed}
        else:
            handles = [e["ReceiptHandle"] for e in entries]
            if len(set(handles)) != len(handles):
                return None  # moto's BatchEntryIdsNotDistinct
            done, failed = backend.delete_message_batch(queue_name, entries)
            result = {"Successful": [{"Id": i} for i in done], "Failed": failed}
    except SQSException:
        return None
    return _respond(start_response, {}, json.dumps(result).encode(), content_type="application/x-amz-json-1.0")


def _respond(start_response: Callable, headers: dict[str, Any], body: bytes, content_type: str = "") -> list[bytes]:
    out = [(k, str(v)) for k, v in headers.items() if k.lower() != "content-length"]
    out += [("Content-Length", str(len(body))), ("x-amzn-requestid", uuid.uuid4().hex),
            ("Access-Control-Allow-Origin", "*")]
    if content_type:
        out.append(("Content-Type", content_type))
    start_response("200 OK", out)
    return [body]
