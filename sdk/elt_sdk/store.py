"""Where silver, quarantine and their commit records live: a key/value store of files.

The core writes through the ``Store`` protocol; ``LocalStore`` is a folder, ``aws/s3.py`` has
``S3Store``. Besides put/get/delete/list/copy, a store offers one conditional write
(``put_if``): create a key only if it is absent, or replace it only if it still holds the version
read before. S3 does this with ``If-None-Match``/``If-Match``; the folder with a lock. The commit
protocol (``commit.py``) needs nothing else to stay correct under concurrent writers.
"""
from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol


class Conflict(Exception):
    """``put_if`` lost: the key changed (or appeared) since it was read."""


class Missing(Exception):
    """``copy``'s source key does not exist (any more)."""


class Store(Protocol):
    """A bucket, or a folder standing in for one."""

    @property
    def name(self) -> str:
        """For messages and URIs: ``s3://bucket`` or a folder path."""

    def put_file(self, key: str, path: Path) -> None:
        """Store the local file ``path`` under ``key``, replacing what was there."""

    def put_bytes(self, key: str, data: bytes) -> None: ...

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        """The value under ``key`` and a token of its version (for ``put_if``), or None."""

    def put_if(self, key: str, data: bytes, match: str | None) -> str:
        """Write ``data`` if ``key`` is absent (``match`` None) or still at version ``match``;
        return the new version token; raise Conflict otherwise."""

    def delete(self, keys: list[str]) -> None:
        """Remove ``keys``; a key already gone is not an error."""

    def copy(self, src: str, dst: str) -> None: ...

    def list(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, in key order."""

    def uri(self, key: str) -> str: ...


@dataclass
class LocalStore:
    """A folder. Writes go to a temporary name then ``os.replace``, so a reader never sees half a
    file; ``put_if`` holds a lock file beside the key while it compares and writes."""

    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)

    @property
    def name(self) -> str:
        return str(self.root)

    def uri(self, key: str) -> str:
        return (self.root / key).resolve().as_uri()

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in Path(key).parts:
            raise ValueError(f"not a relative key: {key!r}")
        return self.root / key

    def _write(self, target: Path, write) -> None:  # noqa: ANN001 - a callable taking a path
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            _in_folder(target, lambda: write(tmp))
            _in_folder(target, lambda: os.replace(tmp, target))
        finally:
            tmp.unlink(missing_ok=True)

    def put_file(self, key: str, path: Path) -> None:
        self._write(self._path(key), lambda tmp: shutil.copyfile(path, tmp))

    def move_file(self, key: str, path: Path) -> None:
        """Like ``put_file``, but the local file may be renamed into place (no copy)."""
        target = self._path(key)
        try:
            _in_folder(target, lambda: os.replace(path, target))
        except OSError:  # another file system
            self.put_file(key, path)

    def put_bytes(self, key: str, data: bytes) -> None:
        self._write(self._path(key), lambda tmp: tmp.write_bytes(data))

    def get_bytes(self, key: str) -> tuple[bytes, str] | None:
        path = self._path(key)
        try:
            with path.open("rb") as fh:  # the token of the file read, even if it is replaced meanwhile
                st = os.fstat(fh.fileno())
                data = fh.read()
        except FileNotFoundError:
            return None
        return data, f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"

    def put_if(self, key: str, data: bytes, match: str | None) -> str:
        path = self._path(key)
        with self._locked(path):
            current = self.get_bytes(key)
            if (current is None) != (match is None) or (current is not None and current[1] != match):
                raise Conflict(key)
            self.put_bytes(key, data)
            got = self.get_bytes(key)
            assert got is not None
            return got[1]

    @contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(f".{path.name}.lock"), "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            path = self._path(key)
            path.unlink(missing_ok=True)
            path.with_name(f".{path.name}.lock").unlink(missing_ok=True)
            parent = path.parent
            while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
                try:
                    parent.rmdir()
                except OSError:  # another writer just put a file there
                    break
                parent = parent.parent

    def copy(self, src: str, dst: str) -> None:
        try:
            self.put_file(dst, self._path(src))
        except FileNotFoundError:
            if not self._path(src).is_file():
                raise Missing(src) from None
            raise

    def list(self, prefix: str) -> Iterator[str]:
        base = self.root
        folder = base / prefix if prefix.endswith("/") else (base / prefix).parent
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix):
                    yield key


def _in_folder(target: Path, act, attempts: int = 5):  # noqa: ANN001, ANN202
    """Run ``act`` (which writes into ``target``'s folder) after making the folder; a concurrent
    ``delete`` may remove an empty folder in between, so make it again and retry."""
    for attempt in range(attempts):
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            return act()
        except FileNotFoundError:
            if attempt == attempts - 1:
                raise


LocalSink = LocalStore
"""The name this class had before commits (kept for code that imported it)."""
