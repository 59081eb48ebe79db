"""The plain S3 object GET and PUT, answered from moto's S3 backend without its web layer.

Each object a local run carries costs five of them (the upload, the read, the pending manifest,
the file, the commit record). moto answers one in about 1 ms of its process's CPU, of which its
backend's ``put_object`` takes 0.15 ms and ``get_object`` 0.005 ms: the rest is Flask, werkzeug
and moto's response classes, re-reading the headers for every option S3 has. Here a request is
answered by the same backend calls moto's ``S3Response.put_object``/``get_object`` make, with the
headers they answer, but only when nothing in it needs more: a key of plain characters, no query,
no header outside the few boto3 sends for a plain call (checksum CRC32 included), a bucket with no
policy, CORS, default encryption or object lock. Anything else, a failing precondition included,
returns ``None`` and moto answers it, errors and all.
"""
from __future__ import annotations

import re
import uuid
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
ACCESS_KEY = re.compile(r"Credential=([^/]+)/")


def answer(environ: dict[str, Any], start_response: Callable) -> list[bytes] | None:
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
        backend = _backend(environ)
        bucket_name, key_name = path[1:].split("/", 1)
        bucket = backend.buckets.get(bucket_name)
        if bucket is None or bucket.policy or bucket.cors or bucket.encryption or bucket.object_lock_enabled:
            return None
        if method == "PUT":
            return _put(backend, bucket, key_name, environ, start_response)
        return _get(backend, bucket_name, key_name, environ, start_response)
    except (ImportError, AttributeError, KeyError, TypeError):  # moto's internals moved: its own way
        return None


def _backend(environ: dict[str, Any]) -> Any:
    """The S3 backend moto would answer this request from (the account its access key maps to)."""
    import os

    from moto.iam.models import get_account_id_from
    from moto.s3.models import s3_backends

    match = ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION", ""))
    if not match:
        raise KeyError("unsigned")
    account = os.environ.get("MOTO_ACCOUNT_ID") or get_account_id_from(match.group(1))
    return s3_backends[account]["aws"]


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


def _respond(start_response: Callable, headers: dict[str, Any], body: bytes, content_type: str = "") -> list[bytes]:
    out = [(k, str(v)) for k, v in headers.items() if k.lower() != "content-length"]
    out += [("Content-Length", str(len(body))), ("x-amzn-requestid", uuid.uuid4().hex),
            ("Access-Control-Allow-Origin", "*")]
    if content_type:
        out.append(("Content-Type", content_type))
    start_response("200 OK", out)
    return [body]
