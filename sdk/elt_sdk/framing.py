"""Turning an object's bytes into blocks of JSON documents: JSONL, JSON arrays, pretty-printed
documents, gzip, byte ranges — streamed, within limits.

Reading is streamed in bounded blocks so memory does not grow with the object, whatever its
form. A byte-range chunk owns the lines that *start* inside ``[start, end)``: the reader backs up
one byte to find the first line boundary and reads past ``end`` to finish its last line, so
neighbouring chunks never split or share a line.

Limits (``Limits``, from settings) are enforced without ever holding the oversized thing: a line
(or array element) longer than ``max_line_bytes`` becomes one reject carrying its size and a
sample of its first bytes while the rest of it is skipped; an object that decompresses past
``max_object_bytes``, or a gzip that expands more than ``max_expansion_ratio`` times, is refused
(``ObjectRefused``). So are containers that cannot be read at all (a corrupt or truncated gzip,
UTF-16 text, gzip inside gzip): those are the only reasons an object fails whole.
"""
from __future__ import annotations

import codecs
import gzip
import io
import json
import re
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from elt_sdk.batch import RAW_SAMPLE_BYTES, RawBlock, Reject
from elt_sdk.errors import ObjectRefused
from elt_sdk.formats import BOM, GZIP_MAGIC, SNIFF_BYTES, Chunk, plan_chunks, sniff  # noqa: F401 (re-exported)
from elt_sdk.source import Source, SourceRef

DEFAULT_BLOCK_BYTES = 4 << 20
RATIO_FLOOR_BYTES = 64 << 20
"""The expansion ratio is judged only past this many decompressed bytes: small objects of
repetitive lines may legitimately compress very well."""
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 8 << 20
    max_object_bytes: int = 64 << 30
    max_expansion_ratio: int = 200

    @classmethod
    def from_settings(cls, settings) -> "Limits":  # noqa: ANN001 - elt_sdk.settings.Settings
        return cls(settings.max_line_bytes, settings.max_object_bytes, settings.max_expansion_ratio)


DEFAULT_LIMITS = Limits()


def read_blocks(source: Source, chunk: Chunk | None = None, block_bytes: int = DEFAULT_BLOCK_BYTES,
                limits: Limits = DEFAULT_LIMITS) -> Iterator[RawBlock]:
    """Blocks of raw documents from ``source`` (or one chunk of it)."""
    ref = SourceRef(uri=source.uri, etag=source.etag, chunk=chunk.index if chunk else 0, key=source.key,
                    version=source.version)
    block_bytes = min(block_bytes, max(limits.max_line_bytes, 1024))
    if chunk is not None and chunk.start > 0:
        with source.open(chunk.start - 1) as stream:
            yield from _lines(ref, _Counted(stream, limits), block_bytes, limits, first_offset=chunk.start - 1,
                              end=chunk.end, skip_partial=True)
        return
    with source.open(0) as stream:
        head = stream.read(SNIFF_BYTES)
        kind = sniff(head)
        if kind == "gzip":
            raw = _Counted(_Prepended(head, stream), limits)
            try:
                with gzip.GzipFile(fileobj=raw) as unzipped:
                    body = _Counted(unzipped, limits, compressed=raw)
                    inner = body.read(SNIFF_BYTES)
                    if inner.startswith(GZIP_MAGIC):
                        raise ObjectRefused("gzip inside gzip: decompress the object once before uploading it")
                    yield from _framed(ref, _Prepended(inner, body), sniff(inner), block_bytes, limits, None)
            except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
                raise ObjectRefused(f"not a readable gzip stream: {exc}") from None
            return
        body = _Counted(_Prepended(head, stream), limits)
        yield from _framed(ref, body, kind, block_bytes, limits, chunk.end if chunk is not None else None)


def _framed(ref: SourceRef, body: BinaryIO, kind: str, block_bytes: int, limits: Limits,
            end: int | None) -> Iterator[RawBlock]:
    head = body.read(64)
    if _looks_utf16(head[2:] if head.startswith(UTF16_BOMS) else head):
        raise ObjectRefused("the object is UTF-16 (or UTF-32) text; JSON must be UTF-8 (RFC 8259)")
    body = _Prepended(head, body)
    if kind in ("array", "document"):
        yield from _documents(ref, body, block_bytes, limits, array=kind == "array")
    else:
        yield from _lines(ref, body, block_bytes, limits, first_offset=0, end=end, skip_partial=False,
                          cr_only=kind == "cr-lines")


def _looks_utf16(head: bytes) -> bool:
    """UTF-16 (or -32) text without a byte-order mark: JSON text is mostly ASCII, which UTF-16
    writes with a zero byte beside every character, always on the same side."""
    if len(head) < 8:
        return False
    even, odd = head[0::2], head[1::2]
    return (even.count(0) >= 0.8 * len(even) and not odd.count(0)) or (odd.count(0) >= 0.8 * len(odd) and not even.count(0))


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


class _Counted(io.RawIOBase):
    """Counts the bytes read through it and refuses the object past the limits. ``compressed``
    is the counter of the stream this one decompresses (for the expansion ratio)."""

    def __init__(self, stream: BinaryIO, limits: Limits, compressed: "_Counted | None" = None):
        self._stream, self._limits, self._compressed = stream, limits, compressed
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.count += len(data)
        lim = self._limits
        if self.count > lim.max_object_bytes:
            raise ObjectRefused(f"the object decompresses to more than max_object_bytes ({lim.max_object_bytes} bytes)")
        if self._compressed is not None and self.count > RATIO_FLOOR_BYTES \
                and self.count > lim.max_expansion_ratio * max(self._compressed.count, 1):
            raise ObjectRefused(f"the gzip stream expands more than max_expansion_ratio ({lim.max_expansion_ratio}x): "
                                f"{self.count} bytes from {self._compressed.count} (a decompression bomb?)")
        return data

    def readinto(self, b) -> int:  # pragma: no cover - io plumbing
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def _oversized(ref: SourceRef, sample: bytes, size: int, lineno: int, offset: int, limit: int, what: str) -> RawBlock:
    """A block holding only the reject for one record over the size limit."""
    reject = Reject(sample[:RAW_SAMPLE_BYTES], lineno, offset,
                    [{"path": "$", "message": f"{what} of {size} bytes is longer than max_line_bytes ({limit})"}],
                    "parse", size=size)
    return RawBlock(ref, b"", lineno, offset, rejects=[reject], size=size)


def _lines(ref: SourceRef, stream: BinaryIO, block_bytes: int, limits: Limits, *, first_offset: int,
           end: int | None, skip_partial: bool, cr_only: bool = False) -> Iterator[RawBlock]:
    offset = first_offset  # absolute offset of the next byte of `buf`
    lineno = 1
    pending = b""
    first = not skip_partial  # a BOM counts only at the very start of the object
    done = False
    limit = limits.max_line_bytes
    while not done:
        data = stream.read(block_bytes)
        if cr_only:  # \r cannot occur raw inside a JSON string: as white space or line end, it is one
            data = data.replace(b"\r", b"\n")
        if data:
            nl = data.rfind(b"\n")
            if nl >= 0:  # the usual case: the read is copied once (not joined, then cut)
                buf = b"".join((pending, memoryview(data)[: nl + 1])) if pending or nl + 1 < len(data) else data
                pending, cut = data[nl + 1:], len(buf) - 1
            else:
                buf = pending + data
                cut = buf.rfind(b"\n")
            if cut < 0:
                if skip_partial:  # still in the line the previous chunk owns: drop it as it streams
                    offset, pending = offset + len(buf), b""
                    if end is not None and offset >= end:
                        return  # no line starts in this chunk
                    continue
                if len(buf) > limit:  # a line too long to hold: skip it, keep a sample
                    if end is not None and offset >= end:
                        return  # it starts where this chunk ends: the next chunk's line
                    sample, size, ended, pending = buf[:RAW_SAMPLE_BYTES], len(buf), False, b""
                    while not ended:
                        more = stream.read(block_bytes)
                        if not more:
                            break
                        if cr_only:
                            more = more.replace(b"\r", b"\n")
                        nl = more.find(b"\n")
                        ended = nl >= 0
                        size += nl + 1 if ended else len(more)
                        pending = more[nl + 1:] if ended else b""
                    if first and sample.startswith(BOM):
                        sample, size, offset = sample[3:], size - 3, offset + 3
                    first = False
                    yield _oversized(ref, sample, size - ended, lineno, offset, limit, "line")
                    lineno += 1
                    offset += size
                    if end is not None and offset >= end:
                        return
                    continue
                pending = buf
                continue
            if nl < 0:
                buf, pending = buf[: cut + 1], buf[cut + 1 :]
        else:
            buf, pending, done = pending, b"", True
            if not buf:
                break
        if skip_partial:  # the byte before the chunk: the rest of its line belongs to the previous chunk
            nl = buf.find(b"\n")
            skipped = nl + 1 if nl >= 0 else len(buf)
            buf, offset, skip_partial = buf[skipped:], offset + skipped, False
        if first and buf.startswith(BOM):
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
            lines = buf.count(b"\n") + (not buf.endswith(b"\n"))  # counted once: the block keeps it
            yield from _with_long_lines_cut(ref, buf, lineno, offset, limit, lines)
            lineno += lines
            offset += len(buf)


def _with_long_lines_cut(ref: SourceRef, buf: bytes, lineno: int, offset: int, limit: int,
                         lines: int) -> Iterator[RawBlock]:
    """``buf`` (``lines`` lines) as blocks, a line over the limit (one that fit in a read)
    turned into its reject."""
    if len(buf) <= limit or not _has_long_line(buf, limit):
        yield RawBlock(ref, buf, lineno, offset, line_count=lines)
        return
    start = 0
    while start < len(buf):
        nl = buf.find(b"\n", start)
        stop = len(buf) if nl < 0 else nl + 1
        if stop - start - (nl >= 0) > limit:  # the line's bytes, without its newline (the last may have none)
            yield _oversized(ref, buf[start:start + RAW_SAMPLE_BYTES], stop - start - (nl >= 0), lineno, offset + start,
                             limit, "line")
            lineno += 1
            start = stop
            continue
        run_end = start  # the longest run of short lines from here
        while run_end < len(buf):
            nl = buf.find(b"\n", run_end)
            stop = len(buf) if nl < 0 else nl + 1
            if stop - run_end - (nl >= 0) > limit:
                break
            run_end = stop
        block = RawBlock(ref, buf[start:run_end], lineno, offset + start)
        yield block
        lineno += block.line_count
        start = run_end


def _has_long_line(buf: bytes, limit: int) -> bool:
    prev = -1
    while True:
        nl = buf.find(b"\n", prev + 1)
        if nl < 0:
            return len(buf) - prev - 1 > limit
        if nl - prev - 1 > limit:
            return True
        prev = nl


_SKIP = re.compile(r"[ \t\r\n\ufeff]*")
_SKIP_COMMAS = re.compile(r"[ \t\r\n\ufeff]*(?:,[ \t\r\n]*)?")
_STRUCT = re.compile(r'[{}\[\],"\n]')
_STRING_END = re.compile(r'["\\]')
_scan = json.JSONDecoder().raw_decode  # boundaries only: the block's parser decides what each element is


class _Window:
    """A sliding window of decoded text over a byte stream: ``fill_from(i)`` drops the text before
    ``i`` and appends the next read, so memory holds one read plus the element being read."""

    def __init__(self, stream: BinaryIO, block_bytes: int):
        self.stream, self.block_bytes = stream, block_bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")  # bad UTF-8 survives to the parser
        self.text, self.eof = "", False

    def fill_from(self, i: int) -> bool:
        """False at the end of input (nothing was added)."""
        if self.eof:
            self.text = self.text[i:]
            return False
        data = self.stream.read(self.block_bytes)
        self.eof = not data
        self.text = self.text[i:] + self.decoder.decode(data, final=self.eof)
        return bool(data)


def _incomplete(exc: json.JSONDecodeError, text: str) -> bool:
    """Did the scan fail only because the text ended (more input may complete it)?"""
    return exc.pos >= len(text) - 1 or exc.msg.startswith("Unterminated string")


def _documents(ref: SourceRef, stream: BinaryIO, block_bytes: int, limits: Limits, *, array: bool) -> Iterator[RawBlock]:
    """The elements of a JSON array (or the top-level values of a stream of pretty-printed JSON
    documents), each as one line of a block: its exact text with line breaks turned into spaces
    (outside strings they are white space, inside one they make it malformed either way), so every
    element gets the verdict the same record gets on a JSONL line. Streamed: memory holds one read
    of text plus the element being read; an element over ``max_line_bytes`` is skipped, sampled."""
    win = _Window(stream, block_bytes)
    win.fill_from(0)
    limit = limits.max_line_bytes
    elements: list[bytes] = []
    size, number, first = 0, 1, 1
    pos = 0
    state = "open" if array else "values"

    def flush() -> Iterator[RawBlock]:
        nonlocal elements, size, first
        if elements:
            yield RawBlock.from_elements(ref, elements, first, size)
        elements, size, first = [], 0, number

    def refused(sample: bytes, message: str, length: int | None) -> Iterator[RawBlock]:
        nonlocal number
        yield from flush()
        yield RawBlock(ref, b"", number, -1, rejects=[Reject(sample[:RAW_SAMPLE_BYTES], number, -1,
                                                               [{"path": "$", "message": message}], "parse", size=length)],
                       size=length or 0)
        number += 1

    while True:
        pos = (_SKIP_COMMAS if state == "elements" else _SKIP).match(win.text, pos).end()
        if pos >= len(win.text):
            if win.fill_from(pos):
                pos = 0
                continue
            if state in ("open", "elements"):
                yield from refused(b"", "the JSON array is not closed (truncated object?)", None)
            break
        c = win.text[pos]
        if state == "open":
            state = "elements" if c == "[" else "values"
            pos += c == "["
            continue
        if state == "elements" and c == "]":
            pos += 1
            state = "after"
            continue
        if state == "after":  # anything but white space after the array
            sample = win.text[pos:pos + RAW_SAMPLE_BYTES].encode("utf-8", "surrogateescape")
            _, length = _skip_to_end(win, pos)
            yield from refused(sample, "data after the end of the JSON array", length)
            break
        stop = -1
        while True:
            try:
                _, stop = _scan(win.text, pos)
            except json.JSONDecodeError as exc:
                if not win.eof and _incomplete(exc, win.text) and len(win.text) - pos <= limit:
                    win.fill_from(pos)
                    pos = 0
                    continue
                stop = -1
            except RecursionError:  # nested deeper than the scanner recurses: its brackets tell where it ends
                stop = -1
            else:
                if stop == len(win.text) and not win.eof and win.text[pos] not in '{["':
                    win.fill_from(pos)  # a number or literal at the end of the text may go on in the next read
                    pos = 0
                    continue
            break
        if stop < 0:  # malformed (or too deep to scan): find its end by brackets and strings
            pos, stop, length, sample = _skip_element(win, pos, array=array, limit=limit)
        else:
            length = stop - pos
        if length <= limit and stop is not None:  # its exact text: the block's parser gives its verdict
            raw = win.text[pos:stop].encode("utf-8", "surrogateescape").replace(b"\r", b" ").replace(b"\n", b" ")
            if not elements:
                first = number
            elements.append(raw)
            size += len(raw)
            number += 1
            pos = stop
            if size >= block_bytes:
                yield from flush()
            continue
        if length > limit:
            yield from refused(sample, f"element of {length} bytes is longer than max_line_bytes ({limit})", length)
        if stop is None:  # the input ended inside it
            if length <= limit:
                yield from refused(win.text[pos:pos + RAW_SAMPLE_BYTES].encode("utf-8", "surrogateescape"),
                                   "malformed JSON: the input ends inside this element (truncated object?)", None)
            break
        pos = stop
    yield from flush()


def _skip_element(win: _Window, pos: int, *, array: bool, limit: int) -> tuple[int, int | None, int, bytes]:
    """Where one malformed element that starts at ``pos`` ends: before the next ``,`` or ``]`` at
    the array's level (in a stream of documents: when its brackets close, or at the end of its
    line if it has none), tracking strings and brackets across reads. The window keeps the
    element's text while it is within ``limit``, and drops it past that (keeping a sample).
    Returns (its start in ``win.text``, its end or None at the end of input, its length, sample)."""
    if not array:
        return _skip_document(win, pos, limit)
    depth, length, in_string, escaped, started = 0, 0, False, False, False
    sample = b""
    start = pos
    while True:
        text, i, n = win.text, pos, len(win.text)
        while i < n:
            if escaped:
                i, escaped = i + 1, False
                continue
            if in_string:
                m = _STRING_END.search(text, i)
                if m is None:
                    i = n
                    break
                if m.group() == "\\":
                    i, escaped = m.end(), True
                    continue
                i, in_string = m.end(), False
                continue
            m = _STRUCT.search(text, i)
            if m is None:
                i = n
                break
            ch, i = m.group(), m.end()
            end = None
            if ch == '"':
                in_string = True
            elif ch in "{[":
                depth, started = depth + 1, True
            elif ch in "}]":
                if depth == 0 and array:
                    end = m.start()
                elif depth > 0:
                    depth -= 1
                    if depth == 0 and not array:
                        end = i
            elif ch == "," and depth == 0 and array:
                end = m.start()
            elif ch == "\n" and depth == 0 and not array and not started:
                end = i
            if end is not None:
                length += end - pos
                sample = sample or text[start:start + RAW_SAMPLE_BYTES].encode("utf-8", "surrogateescape")
                return start, end, length, sample
        length += n - pos
        if length <= limit:  # keep the element: it may still be short enough to parse
            if not win.fill_from(start):
                return 0, None, length, win.text[:RAW_SAMPLE_BYTES].encode("utf-8", "surrogateescape")
            pos, start = n - start, 0
        else:
            sample = sample or text[start:start + RAW_SAMPLE_BYTES].encode("utf-8", "surrogateescape")
            if not win.fill_from(n):
                return 0, None, length, sample
            pos = start = 0


def _skip_document(win: _Window, pos: int, limit: int) -> tuple[int, int | None, int, bytes]:
    """A malformed value in a stream of documents ends where the next line starts with ``{`` (a
    new document, or a JSONL line): resynchronising there keeps one bad document from taking its
    neighbours with it."""
    start, length, sample = pos, 0, b""
    while True:
        nl = win.text.find("\n{", pos + 1)
        if nl >= 0:
            length += nl + 1 - pos
            return start, nl + 1, length, sample or win.text[start:start + RAW_SAMPLE_BYTES].encode("utf-8", "surrogateescape")
        n = len(win.text)
        length += n - pos
        keep = start if length <= limit else max(n - 1, 0)  # keep a trailing newline for the search
        sample = sample or (win.text[start:start + RAW_SAMPLE_BYTES].encode("utf-8", "surrogateescape")
                            if length > limit else b"")
        if not win.fill_from(keep):
            return 0 if keep == start else len(win.text), None, length, \
                sample or win.text[:RAW_SAMPLE_BYTES].encode("utf-8", "surrogateescape")
        pos = (n - 1 - keep) if keep != start else (n - start - 1)
        if keep == start:
            start = 0
        length -= 1  # the last character is looked at again


def _skip_to_end(win: _Window, pos: int) -> tuple[None, int]:
    length = len(win.text) - pos
    while win.fill_from(len(win.text)):
        length += len(win.text)
    return None, length
