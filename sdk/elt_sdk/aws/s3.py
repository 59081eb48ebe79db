"""S3 as a ``Source`` (ranged, etag-pinned reads) and as a ``Store`` (managed uploads,
conditional writes with ``If-Match``/``If-None-Match`` for the commit protocol)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

from botocore.exceptions import ClientError

from elt_sdk.aws.errors import error_code
from elt_sdk.source import ObjectVersion, StaleObject
from elt_sdk.store import Conflict, Missing

NOT_FOUND = ("404", "NoSuchKey", "NotFound")
SINGLE_REQUEST_BYTES = 16 << 20
PRECONDITION = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class _Body:
    """A botocore StreamingBody usable in ``with`` that can be closed before its end."""

    def __init__(self, body: Any):
        self._body = body

    def read(self, n: int = -1) -> bytes:
        return self._body.read() if n is None or n < 0 else self._body.read(n)

    def __enter__(self) -> "_Body":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._body.close()


@dataclass
class S3Source:
    """One version of a bronze object. ``key`` names the object in silver (a replay copy carries
    its original's key); ``read_key`` is where its bytes are (the copy), when they differ."""

    client: Any
    bucket: str
    key: str
    etag: str
    size: int
    object_version: ObjectVersion | None = None
    read_key: str | None = None

    @property
    def version(self) -> ObjectVersion:
        return self.object_version or ObjectVersion(self.etag)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.read_key or self.key}"

    def open(self, start: int = 0) -> BinaryIO:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.read_key or self.key}
        if self.etag:
            kwargs["IfMatch"] = f'"{self.etag}"'  # read exactly the version the message names
        if start:
            kwargs["Range"] = f"bytes={start}-"
        try:
            return _Body(self.client.get_object(**kwargs)["Body"])  # type: ignore[return-value]
        except ClientError as exc:
            if error_code(exc) in PRECONDITION + NOT_FOUND:
                raise StaleObject(f"{self.uri} (etag {self.etag}): {error_code(exc)}") from None
            raise


@dataclass
class S3Store:
    """A bucket as a ``Store``."""

    client: Any
    bucket: str

    @property
    def name(self) -> str:
        return f"s3://{self.bucket}"

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_file(self, key: str, path: Path) -> None:
        if path.stat().st_size <= SINGLE_REQUEST_BYTES:  # one PUT: no transfer manager, no threads
            self.client.put_object(Bucket=self.bucket, Key=key, Body=path.read_bytes())
        else:
            self.client.upload_file(str(path), self.bucket, key)  # multipart, in parallel

    def put_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise
        return resp["Body"].read(), resp["ETag"]

    def put_if(self, key: str, data: bytes, match: str | None) -> str:
        condition = {"IfNoneMatch": "*"} if match is None else {"IfMatch": match}
        try:
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, **condition)["ETag"]
        except ClientError as exc:
            if error_code(exc) in PRECONDITION + NOT_FOUND:
                raise Conflict(key) from None
            raise

    def delete(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            resp = self.client.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
            errors = [e for e in resp.get("Errors", []) if e.get("Code") not in NOT_FOUND]
            if errors:
                raise RuntimeError(f"S3 refused to delete {len(errors)} key(s) in {self.name}: {errors[0]}")

    def copy(self, src: str, dst: str) -> None:
        try:  # one request, server side, up to 5 GB
            self.client.copy_object(Bucket=self.bucket, Key=dst, CopySource={"Bucket": self.bucket, "Key": src})
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                raise Missing(src) from None
            if error_code(exc) not in ("InvalidRequest", "EntityTooLarge"):
                raise
            try:
                self.client.copy({"Bucket": self.bucket, "Key": src}, self.bucket, dst)  # multipart copy
            except ClientError as again:
                if error_code(again) in NOT_FOUND:
                    raise Missing(src) from None
                raise

    def list(self, prefix: str) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]


def strip_etag(etag: str) -> str:
    return etag.strip('"')
