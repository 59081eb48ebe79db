"""What flows between the hooks: raw blocks of lines, parsed batches, validated Arrow tables."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from collections.abc import Iterator
from typing import Any, Callable

import pyarrow as pa

from elt_sdk import kernels as k


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

    def own_fields(self) -> dict[str, Any]:
        """This reject's part of its quarantine envelope (``envelope_lines``)."""
        try:
            raw_text, encoding = self.raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            raw_text, encoding = self.raw.decode("latin-1"), "latin-1"
        return {"line": self.line, "byte_offset": self.offset, "stage": self.stage, "errors": self.errors,
                "raw": raw_text, "raw_encoding": encoding}


_encode = json.JSONEncoder(check_circular=False).encode


def envelope_lines(rejects: list[Reject], source: SourceRef, dataset: str, plugin: str, version: str) -> Iterator[str]:
    """Quarantine JSONL lines for ``rejects``: each an envelope with enough to understand, fix and
    replay the record (where it came from, which plugin refused it, every error, the raw line).
    The fields every reject of an object shares are serialized once."""
    head = _encode(_shared(source, dataset, plugin, version))[:-1] + ", "
    for reject in rejects:
        yield head + _encode(reject.own_fields())[1:] + "\n"


def _shared(source: SourceRef, dataset: str, plugin: str, version: str) -> dict[str, Any]:
    return {"dataset": dataset, "plugin": plugin, "plugin_version": version, "source": source.uri,
            "etag": source.etag, "chunk": source.chunk}


class RawBlock:
    """A bounded run of raw documents from one object: complete lines of ``data``.

    ``data`` always ends with a newline (one is added after a last line without it). Lines are
    located lazily, so the columnar path can hand the buffer to pyarrow untouched and screen it as
    an Arrow array over the same bytes. ``first_offset`` is -1 when byte offsets mean nothing
    (elements of a JSON array).
    """

    def __init__(self, source: SourceRef, data: bytes, first_lineno: int = 1, first_offset: int = 0):
        self.size = len(data)
        """Bytes of the object this block covers (``data`` may have one newline more)."""
        if data and not data.endswith(b"\n"):
            data += b"\n"
        self.source = source
        self.data = data
        self.first_lineno = first_lineno
        self.first_offset = first_offset

    @classmethod
    def from_elements(cls, source: SourceRef, lines: list[bytes], first_lineno: int) -> "RawBlock":
        """Re-serialized elements of a JSON array: numbered by element, with no byte offsets."""
        return cls(source, b"\n".join(lines) + b"\n", first_lineno, -1)

    @cached_property
    def line_count(self) -> int:
        return self.data.count(b"\n")

    @cached_property
    def lines(self) -> list[bytes]:
        """Every physical line, ``\\r`` stripped; blank lines included (they are not records)."""
        lines = self.data.split(b"\n")
        lines.pop()
        if b"\r" in self.data:
            lines = [ln[:-1] if ln.endswith(b"\r") else ln for ln in lines]
        return lines

    @cached_property
    def line_offsets(self) -> pa.Int64Array:
        """Where each line starts in ``data``, then ``len(data)``; found by Arrow kernels, without
        a Python object per line."""
        if not self.data:
            return pa.array([0], pa.int64())
        whole = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 1, [None, _offsets_buffer([0, len(self.data) - 1]),
                                                                        pa.py_buffer(self.data)])
        pieces = k.split_pattern(whole, "\n").values  # one list: its values are the lines
        ends = k.cumulative_sum(k.add(k.binary_length(pieces), 1))
        return pa.concat_arrays([pa.array([0], pa.int64()), ends])

    @cached_property
    def starts(self) -> list[int]:
        """``line_offsets`` as Python ints."""
        return self.line_offsets.to_pylist()

    def line(self, i: int) -> bytes:
        """Line ``i`` without its line ending, without splitting the whole block."""
        if "lines" in self.__dict__:
            return self.lines[i]
        line = self.data[self.starts[i]:self.starts[i + 1] - 1]
        return line[:-1] if line.endswith(b"\r") else line

    def line_array(self) -> pa.LargeBinaryArray:
        """The lines, each with its line ending, as an Arrow array over ``data`` (no copy)."""
        return pa.LargeBinaryArray.from_buffers(pa.large_binary(), self.line_count,
                                                [None, self.line_offsets.buffers()[1], pa.py_buffer(self.data)])

    def lineno(self, i: int) -> int:
        return self.first_lineno + i

    def offset(self, i: int) -> int:
        return -1 if self.first_offset < 0 else self.first_offset + self.starts[i]

    def reject(self, i: int, errors: list[dict[str, str]], stage: str, raw: bytes | None = None) -> Reject:
        """Line ``i`` refused (``raw``: the line, where the caller has it already)."""
        return Reject(self.line(i) if raw is None else raw, self.lineno(i), self.offset(i), errors, stage)

    def __len__(self) -> int:
        return self.line_count


def _offsets_buffer(values: list[int]) -> pa.Buffer:
    return pa.array(values, pa.int64()).buffers()[1]


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


_strict = json.JSONDecoder(parse_constant=_no_constants)


def decode_line(line: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity. Raises UnicodeDecodeError or ValueError."""
    return _strict.decode(line.decode("utf-8"))


@dataclass
class ParsedBatch:
    """Parse output for one block: the rows that are JSON documents (by physical line index),
    in columnar form where the fast path parsed them (``table``, one row per ``table_lines``
    entry) and as decoded values where a row was decoded on its own (``decoded``). Lines that are
    not JSON are already ``rejects``. ``records`` decodes every row, for hooks that want dicts.
    """

    block: RawBlock
    rows: list[int]
    rejects: list[Reject] = field(default_factory=list)
    table: pa.Table | None = None
    table_lines: list[int] | None = None
    decoded: dict[int, Any] = field(default_factory=dict)
    _records: list[Any] | None = None
    pending: Callable[[], None] | None = None

    def settle(self) -> "ParsedBatch":
        """Run the work parse left for later (``pending``): the columnar parse leaves the lines its
        screens set aside to be decoded here, so that Python work runs on the pipeline's thread
        while the next block is parsed on another. The pipeline settles every batch before
        validate sees it."""
        if self.pending is not None:
            work, self.pending = self.pending, None
            work()
        return self

    @property
    def source(self) -> SourceRef:
        return self.block.source

    @property
    def records(self) -> list[Any]:
        self.settle()
        if self._records is None:
            lines = self.block.lines
            self._records = [self.decoded[i] if i in self.decoded else decode_line(lines[i]) for i in self.rows]
        return self._records

    def reject(self, position: int, errors: list[dict[str, str]], stage: str) -> Reject:
        """A reject for the row at ``position`` in ``rows``."""
        self.settle()
        return self.block.reject(self.rows[position], errors, stage)

    def subset(self, positions: list[int]) -> "ParsedBatch":
        """The rows at ``positions``, as their own batch (the records-only form)."""
        records = self.records
        return ParsedBatch(self.block, [self.rows[p] for p in positions],
                           decoded={self.rows[p]: records[p] for p in positions},
                           _records=[records[p] for p in positions])

    def __len__(self) -> int:
        self.settle()
        return len(self.rows)


@dataclass
class ValidatedBatch:
    """Validate output: valid records as a typed Arrow table, the rest as rejects."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
