"""Where bronze bytes come from, and which version of an object they are.

The core reads through the ``Source`` protocol; S3 lives in ``aws/s3.py``. An object is named by
its bronze key; a *version* of it by its content identity (``etag``) and its place in the key's
history (S3's event ``sequencer`` and the write time). Silver keeps the rows of the newest
version of every key: ``ObjectVersion.newer_than`` is the only ordering the commit uses, so a
late, older version never replaces a newer one, whatever order the messages arrive in.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol


@dataclass(frozen=True)
class ObjectVersion:
    """One version of a bronze object.

    ``sequencer`` is S3's per-key event sequencer (hex, comparable only between events of one
    key); ``modified_ms`` is when the version was written (the event's ``eventTime``, the
    object's ``LastModified``, a local file's mtime). Two versions are ordered by sequencer when
    both have one and they differ, else by write time, else by etag (only so that every reader
    agrees; S3 never gives one key two versions with the same sequencer).
    """

    etag: str
    sequencer: str = ""
    modified_ms: int = 0

    def _order(self, other: "ObjectVersion") -> int:
        if self.sequencer and other.sequencer and self.sequencer != other.sequencer:
            width = max(len(self.sequencer), len(other.sequencer))
            a, b = self.sequencer.upper().rjust(width, "0"), other.sequencer.upper().rjust(width, "0")
            return (a > b) - (a < b)
        if self.modified_ms != other.modified_ms:
            return (self.modified_ms > other.modified_ms) - (self.modified_ms < other.modified_ms)
        return (self.etag > other.etag) - (self.etag < other.etag)

    def newer_than(self, other: "ObjectVersion | None") -> bool:
        return other is None or self._order(other) > 0

    def same_as(self, other: "ObjectVersion | None") -> bool:
        return other is not None and self._order(other) == 0

    @property
    def token(self) -> str:
        """A short name for this version, used in output keys (same version, same keys)."""
        raw = f"{self.etag}|{self.sequencer}|{self.modified_ms}".encode()
        return hashlib.blake2b(raw, digest_size=6).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {"etag": self.etag, "sequencer": self.sequencer, "modified_ms": self.modified_ms}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ObjectVersion":
        return cls(str(data.get("etag", "")), str(data.get("sequencer", "")), int(data.get("modified_ms", 0)))


def object_id(key: str) -> str:
    """A fixed-length name for a bronze key, used in output keys and the manifest's key."""
    return hashlib.blake2b(key.encode("utf-8", "surrogatepass"), digest_size=10).hexdigest()


@dataclass(frozen=True)
class SourceRef:
    """Identity of one bronze object version (or one chunk of it), as quarantine envelopes and
    output keys name it. ``key`` is the object's identity in silver: a replay copy carries its
    original's key, so its rows replace the original's instead of adding to them."""

    uri: str
    etag: str
    chunk: int = 0
    key: str = ""
    version: ObjectVersion | None = None

    @property
    def object_version(self) -> ObjectVersion:
        """The version that orders this one against others (the ETag alone when nothing more is known)."""
        return self.version or ObjectVersion(self.etag)

    @property
    def source_id(self) -> str:
        """The prefix of this version's output file names: object, then version."""
        return f"{object_id(self.key or self.uri)}-{self.object_version.token}"


class Source(Protocol):
    """A bronze object: a name, a version, and a byte stream from any offset."""

    uri: str
    key: str
    etag: str
    size: int

    @property
    def version(self) -> ObjectVersion: ...

    def open(self, start: int = 0) -> BinaryIO:
        """A stream of the object's bytes from ``start`` to the end."""


class StaleObject(RuntimeError):
    """The object changed (or vanished) since its version was named: a newer version covers it."""


@dataclass
class LocalSource:
    """A file on disk. Its version comes from cheap facts (size and mtime), never from a pass over
    its bytes, and is checked again when reading ends: a file changed while it was read fails
    that attempt instead of landing half old, half new."""

    path: Path
    key: str
    etag: str
    size: int
    mtime_ns: int = 0

    @classmethod
    def from_path(cls, path: str | Path, key: str | None = None) -> "LocalSource":
        p = Path(path).resolve()
        st = p.stat()
        return cls(path=p, key=key if key is not None else p.name, etag=f"{st.st_size:x}-{st.st_mtime_ns:x}",
                   size=st.st_size, mtime_ns=st.st_mtime_ns)

    @property
    def uri(self) -> str:
        return self.path.as_uri()

    @property
    def version(self) -> ObjectVersion:
        return ObjectVersion(self.etag, "", self.mtime_ns // 1_000_000)

    def open(self, start: int = 0) -> BinaryIO:
        fh = self.path.open("rb")
        if start:
            fh.seek(start)
        return fh

    def check_unchanged(self) -> None:
        try:
            st = os.stat(self.path)
        except OSError:
            raise StaleObject(f"{self.path} vanished while it was read") from None
        if (st.st_size, st.st_mtime_ns) != (self.size, self.mtime_ns) and self.mtime_ns:
            raise StaleObject(f"{self.path} changed while it was read")
