"""What kind of object a bronze object is, and how a large one splits into byte ranges.

Light on purpose (no pyarrow): ingest decides chunking from the first bytes of an object, and its
cold start should not pay for the transform's imports.
"""
from __future__ import annotations

from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Chunk:
    """A newline-aligned byte range of an uncompressed JSONL object."""

    index: int
    start: int
    end: int


def sniff(head: bytes) -> str:
    """``gzip``, ``array`` (a JSON array document), ``document`` (a pretty-printed JSON object:
    its first line is an opening brace alone) or ``lines`` (JSONL), from the first bytes."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    stripped = head.lstrip(BOM + b" \t\r\n")
    if stripped.startswith(b"["):
        return "array"
    if stripped.startswith(b"{") and stripped[1:].lstrip(b" \t\r").startswith(b"\n"):
        return "document"
    return "lines"


def plan_chunks(size: int, chunk_bytes: int) -> list[Chunk]:
    """Byte ranges of at most ``chunk_bytes`` covering an object of ``size`` bytes."""
    if chunk_bytes <= 0 or size <= chunk_bytes:
        return [Chunk(0, 0, size)]
    return [Chunk(i, start, min(start + chunk_bytes, size)) for i, start in enumerate(range(0, size, chunk_bytes))]
