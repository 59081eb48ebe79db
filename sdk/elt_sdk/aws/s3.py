"""S3 as a ``Source`` (ranged, etag-pinned reads) and as a ``Sink`` (managed uploads)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from elt_sdk.source import ObjectVersion, StaleObject


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


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
    client: Any
    bucket: str
    key: str
    etag: str
    size: int
    object_version: ObjectVersion | None = None

    @property
    def version(self) -> ObjectVersion:
        return self.object_version or ObjectVersion(self.etag)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def open(self, start: int = 0) -> BinaryIO:
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key}
        if self.etag:
            kwargs["IfMatch"] = f'"{self.etag}"'  # read exactly the version the message names
        if start:
            kwargs["Range"] = f"bytes={start}-"
        try:
            return _Body(self.client.get_object(**kwargs)["Body"])  # type: ignore[return-value]
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                raise StaleObject(f"{self.uri} (etag {self.etag}): {error_code(exc)}") from None
            raise


@dataclass
class S3Sink:
    client: Any
    bucket: str

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, key)


def strip_etag(etag: str) -> str:
    return etag.strip('"')
