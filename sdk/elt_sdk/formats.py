"""What kind of object a bronze object is, and how a large one splits into byte ranges.

Light on purpose (no pyarrow): ingest decides chunking from the first bytes of an object, and its
cold start should not pay for the transform's imports.
"""
from __future__ import annotations

from dataclasses import dataclass

GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 512
"""How much of an object's start decides what kind it is (ingest reads as much)."""


@dataclass(frozen=True)
class Chunk:
    """A newline-aligned byte range of an uncompressed JSONL object."""

    index: int
    start: int
    end: int


def sniff(head: bytes) -> str:
    """``gzip``, ``array`` (a JSON array document), ``document`` (pretty-printed JSON objects: the
    first line is an opening brace alone and the next one starts a member or closes it),
    ``cr-lines`` (JSONL with ``\r`` line ends) or ``lines`` (JSONL, where every line is a
    record), from the first few hundred bytes (``SNIFF_BYTES``)."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    stripped = head.lstrip(BOM + b" \t\r\n")
    if stripped.startswith(b"["):
        return "array"
    first, newline, rest = stripped.partition(b"\n")
    if first.rstrip(b" \t\r") == b"{" and newline and rest.lstrip(b" \t\r\n")[:1] in (b'"', b"}"):
        return "document"
    if b"\r" in head and b"\n" not in head:
        return "cr-lines"  # classic Mac line ends: \r separates the lines (never split into byte ranges)
    return "lines"


def plan_chunks(size: int, chunk_bytes: int) -> list[Chunk]:
    """Byte ranges of at most ``chunk_bytes`` covering an object of ``size`` bytes."""
    if chunk_bytes <= 0 or size <= chunk_bytes:
        return [Chunk(0, 0, size)]
    return [Chunk(i, start, min(start + chunk_bytes, size)) for i, start in enumerate(range(0, size, chunk_bytes))]
