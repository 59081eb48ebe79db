"""Where bronze bytes come from. The core reads through this protocol; S3 lives in ``aws/``."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


class Source(Protocol):
    """A bronze object: a name, a content identity, and a byte stream from any offset."""

    uri: str
    key: str
    etag: str
    size: int

    def open(self, start: int = 0) -> BinaryIO:
        """A stream of the object's bytes from ``start`` to the end."""


@dataclass
class LocalSource:
    """A file on disk. Its etag is the MD5 of its bytes, as S3's is for a single-part upload,
    so the same content gets the same output keys locally and in S3."""

    path: Path
    key: str
    etag: str
    size: int

    @classmethod
    def from_path(cls, path: str | Path, key: str | None = None) -> "LocalSource":
        p = Path(path).resolve()
        digest = hashlib.md5(usedforsecurity=False)
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        return cls(path=p, key=key if key is not None else p.name, etag=digest.hexdigest(), size=p.stat().st_size)

    @property
    def uri(self) -> str:
        return self.path.as_uri()

    def open(self, start: int = 0) -> BinaryIO:
        fh = self.path.open("rb")
        if start:
            fh.seek(start)
        return fh
