"""What flows between the hooks: raw blocks of lines, parsed batches, validated Arrow tables."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa


@dataclass(frozen=True)
class SourceRef:
    """Identity of a bronze object, as quarantine envelopes and output keys name it."""

    uri: str
    etag: str
    chunk: int = 0

    @property
    def source_id(self) -> str:
        """Content identity: the same bytes give the same output keys, whatever the key.

        Built from the etag (MD5 of the content for single-part uploads and local files), so a
        replayed copy of an object overwrites its first run's output instead of duplicating it.
        """
        return "".join(c for c in self.etag.lower() if c.isalnum() or c == "-")[:40] or "noetag"


@dataclass
class Reject:
    """One record that will not reach silver, with every reason it was refused."""

    raw: bytes
    line: int
    offset: int
    errors: list[dict[str, str]]
    stage: str

    def envelope(self, source: SourceRef, dataset: str, plugin: str, version: str) -> dict[str, Any]:
        """The quarantine line: enough to understand, fix and replay the record."""
        try:
            raw_text, encoding = self.raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            raw_text, encoding = self.raw.decode("latin-1"), "latin-1"
        return {
            "dataset": dataset,
            "plugin": plugin,
            "plugin_version": version,
            "source": source.uri,
            "etag": source.etag,
            "chunk": source.chunk,
            "line": self.line,
            "byte_offset": self.offset,
            "stage": self.stage,
            "errors": self.errors,
            "raw": raw_text,
            "raw_encoding": encoding,
        }


@dataclass
class RawBlock:
    """A bounded run of raw records from one object: one JSON document per entry."""

    source: SourceRef
    lines: list[bytes]
    linenos: list[int]
    offsets: list[int]

    def __len__(self) -> int:
        return len(self.lines)


@dataclass
class ParsedBatch:
    """Parse output. ``records`` are decoded JSON values, aligned with the raw lines kept for
    quarantine; lines that could not be decoded are already in ``rejects``."""

    source: SourceRef
    records: list[Any]
    raws: list[bytes]
    linenos: list[int]
    offsets: list[int]
    rejects: list[Reject] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)


@dataclass
class ValidatedBatch:
    """Validate output: valid records as a typed Arrow table, the rest as rejects."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
