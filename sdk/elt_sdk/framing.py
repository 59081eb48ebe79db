"""Turning an object's bytes into blocks of JSON documents: JSONL, JSON arrays, gzip, byte ranges.

Reading is streamed in bounded blocks so memory does not grow with the object. A byte-range
chunk owns the lines that *start* inside ``[start, end)``: the reader backs up one byte to find
the first line boundary and reads past ``end`` to finish its last line, so neighbouring chunks
never split or share a line.
"""
from __future__ import annotations

import gzip
import io
import json
from typing import BinaryIO, Iterator

from elt_sdk.batch import RawBlock
from elt_sdk.formats import GZIP_MAGIC, Chunk, plan_chunks, sniff  # noqa: F401 (re-exported)
from elt_sdk.source import Source, SourceRef

DEFAULT_BLOCK_BYTES = 4 << 20
WHOLE_DOCUMENT_RAW_LIMIT = 1 << 20


def read_blocks(source: Source, chunk: Chunk | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES) -> Iterator[RawBlock]:
    """Blocks of raw documents from ``source`` (or one chunk of it)."""
    ref = SourceRef(uri=source.uri, etag=source.etag, chunk=chunk.index if chunk else 0, key=source.key,
                    version=source.version)
    if chunk is not None and chunk.start > 0:
        stream = source.open(chunk.start - 1)
        with stream:
            yield from _lines(ref, stream, block_bytes, first_offset=chunk.start - 1, end=chunk.end, skip_partial=True)
        return
    stream = source.open(0)
    with stream:
        head = stream.read(64)
        kind = sniff(head)
        if kind == "gzip":
            raw = _Prepended(head, stream)
            with gzip.GzipFile(fileobj=raw) as unzipped:
                inner_head = unzipped.read(64)
                body = _Prepended(inner_head, unzipped)
                if sniff(inner_head) == "array":
                    yield from _array(ref, body, block_bytes)
                else:
                    yield from _lines(ref, body, block_bytes, first_offset=0, end=None, skip_partial=False)
            return
        body = _Prepended(head, stream)
        if kind == "array":
            yield from _array(ref, body, block_bytes)
            return
        end = chunk.end if chunk is not None else None
        yield from _lines(ref, body, block_bytes, first_offset=0, end=end, skip_partial=False)


class _Prepended(io.RawIOBase):
    """A stream with already-read bytes put back in front."""

    def __init__(self, head: bytes, rest: BinaryIO):
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._rest.read(n - len(data))
            return data
        return self._rest.read() if n is None or n < 0 else self._rest.read(n)

    def readinto(self, b) -> int:  # pragma: no cover - io plumbing
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _lines(ref: SourceRef, stream: BinaryIO, block_bytes: int, *, first_offset: int, end: int | None,
           skip_partial: bool) -> Iterator[RawBlock]:
    offset = first_offset  # absolute offset of the next byte of `buf`
    lineno = 1
    pending = b""
    first = not skip_partial  # a BOM counts only at the very start of the object
    done = False
    while not done:
        data = stream.read(block_bytes)
        if data:
            buf = pending + data
            cut = buf.rfind(b"\n")
            if cut < 0:
                pending = buf
                continue
            buf, pending = buf[: cut + 1], buf[cut + 1 :]
        else:
            buf, pending, done = pending, b"", True
            if not buf:
                break
        if skip_partial:  # the byte before the chunk: the rest of its line belongs to the previous chunk
            nl = buf.find(b"\n")
            skipped = nl + 1 if nl >= 0 else len(buf)
            buf, offset, skip_partial = buf[skipped:], offset + skipped, False
        if first and buf.startswith(b"\xef\xbb\xbf"):
            buf, offset = buf[3:], offset + 3
        first = False
        if end is not None and offset + len(buf) > end:  # the chunk ends in this buffer
            if end - offset <= 0:
                break
            nl = buf.find(b"\n", end - offset - 1)
            if nl >= 0:
                buf = buf[: nl + 1]
            done = True
        if buf:
            block = RawBlock(ref, buf, lineno, offset)
            yield block
            lineno += block.line_count
            offset += len(buf)


def _array(ref: SourceRef, stream: BinaryIO, block_bytes: int) -> Iterator[RawBlock]:
    """A JSON array document is decoded whole (its elements become the block's documents).

    Arrays cannot be split safely without a streaming parser, so their memory grows with the
    object; JSONL is the format for large feeds. A malformed document is one reject.
    """
    text = stream.read()
    try:
        items = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        yield RawBlock(ref, (text[:WHOLE_DOCUMENT_RAW_LIMIT] or b"[]").replace(b"\n", b" ") + b"\n", 1, -1)
        return
    del text
    lines: list[bytes] = []
    first, size = 1, 0
    for i, item in enumerate(items if isinstance(items, list) else [items], start=1):
        line = json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        lines.append(line)
        size += len(line)
        if size >= block_bytes:
            yield RawBlock.from_elements(ref, lines, first)
            lines, first, size = [], i + 1, 0
    if lines:
        yield RawBlock.from_elements(ref, lines, first)
