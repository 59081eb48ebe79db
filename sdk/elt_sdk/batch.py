"""What flows between the hooks: raw blocks of lines, parsed batches, validated Arrow tables.

Public (plugins use them): ``RawBlock`` (``lines``, ``line``, ``lineno``, ``offset``, ``reject``),
``ParsedBatch`` (``rows``, ``decoded``, ``rejects``, ``records``, ``table``, ``reject``,
``subset``), ``ValidatedBatch`` and ``Reject``. Names with a leading underscore belong to the
SDK's columnar fast path and may change in any release.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable

import pyarrow as pa

from elt_sdk import kernels as k
from elt_sdk.source import SourceRef
from elt_sdk.values import parse_float

__all__ = ["ParsedBatch", "RawBlock", "Reject", "SourceRef", "ValidatedBatch", "decode_line"]

RAW_SAMPLE_BYTES = 4096
"""A reject's ``raw`` is cut to this many bytes when the record itself is too large to keep."""


@dataclass
class Reject:
    """One record that will not reach silver, with every reason it was refused. ``size`` is the
    record's full size when ``raw`` holds only a sample of it."""

    raw: bytes
    line: int
    offset: int
    errors: list[dict[str, str]]
    stage: str
    size: int | None = None

    def own_fields(self) -> dict[str, Any]:
        """This reject's part of its quarantine envelope (``quarantine.envelope_lines``)."""
        try:
            raw_text, encoding = self.raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            raw_text, encoding = self.raw.decode("latin-1"), "latin-1"
        out = {"line": self.line, "byte_offset": self.offset, "stage": self.stage, "errors": self.errors,
               "raw": raw_text, "raw_encoding": encoding}
        if self.size is not None:
            out["raw_truncated"] = True
            out["size"] = self.size
        return out


class RawBlock:
    """A bounded run of raw documents from one object: complete lines of ``data``.

    ``data`` always ends with a newline (one is added after a last line without it). Lines are
    located lazily, so the columnar path can hand the buffer to pyarrow untouched and screen it as
    an Arrow array over the same bytes. ``first_offset`` is -1 when byte offsets mean nothing
    (elements of a JSON array). ``rejects`` holds what framing refused before any parser saw it
    (a line over the size limit); such a block has no data.
    """

    def __init__(self, source: SourceRef, data: bytes, first_lineno: int = 1, first_offset: int = 0,
                 rejects: list[Reject] | None = None, size: int | None = None, *, line_count: int | None = None):
        self.size = len(data) if size is None else size
        """Bytes of the object this block covers (``data`` may have one newline more)."""
        if data and not data.endswith(b"\n"):
            data += b"\n"
        if line_count is not None:  # the caller counted them already (framing does, to number lines)
            self.__dict__["line_count"] = line_count
        self.source = source
        self.data = data
        self.first_lineno = first_lineno
        self.first_offset = first_offset
        self.rejects: list[Reject] = rejects or []

    @classmethod
    def from_elements(cls, source: SourceRef, lines: list[bytes], first_lineno: int, size: int | None = None) -> "RawBlock":
        """Re-serialized elements of a JSON array: numbered by element, with no byte offsets."""
        return cls(source, b"\n".join(lines) + b"\n", first_lineno, -1, size=size)

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


class Ambiguous(dict):
    """A JSON object in which some key appears more than once (``duplicates``): which value is
    meant is ambiguous. Validation refuses the record when a duplicated key is one silver keeps
    (a schema property, at any depth); a duplicate among fields silver drops changes nothing,
    on any path (pyarrow's reader ignores those too)."""

    duplicates: frozenset[str] = frozenset()


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        ambiguous = Ambiguous(obj)
        ambiguous.duplicates = frozenset(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        return ambiguous
    return obj


_strict = json.JSONDecoder(parse_constant=_no_constants, object_pairs_hook=_unique_keys, parse_float=parse_float)


def decode_line(line: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, an object with a repeated key marked ``Ambiguous``; a number beyond
    float64 (``1e400``) decodes to ``values.OutOfRange`` (an infinite float that keeps its text), so
    validation can refuse it with a reason instead of storing +inf. Raises UnicodeDecodeError or
    ValueError."""
    return _strict.decode(line.decode("utf-8"))


@dataclass
class ParsedBatch:
    """Parse output for one block: the rows that are JSON documents (``rows``: physical line
    indices of the block, in order), their decoded values where a parser decoded them
    (``decoded``), and the lines that are not records (``rejects``). A plugin parser builds
    ``ParsedBatch(block, rows=[...], decoded={index: value})``.

    ``records`` gives every row as a Python value; ``table`` gives them as one Arrow table when the
    SDK's columnar parse read the whole batch (``None`` otherwise).
    """

    block: RawBlock
    rows: list[int]
    rejects: list[Reject] = field(default_factory=list)
    decoded: dict[int, Any] = field(default_factory=dict)
    # The columnar fast path (private): rows pyarrow parsed, one per entry of _table_lines, and
    # Python work left for the pipeline's thread (decoding the lines the screens set aside).
    _table: pa.Table | None = None
    _table_lines: list[int] | None = None
    _pending: Callable[[], None] | None = None
    _records: list[Any] | None = None
    _accepted: pa.Table | None = None
    """``_table`` when the columnar parse ran the vector checks on it and they accepted every row."""

    def _settle(self) -> "ParsedBatch":
        """Run the work parse left for later: Python work runs on the pipeline's thread while the
        next block is parsed on another. Every public accessor settles first."""
        if self._pending is not None:
            work, self._pending = self._pending, None
            work()
        return self

    @property
    def source(self) -> SourceRef:
        return self.block.source

    @property
    def table(self) -> pa.Table | None:
        """Every row, as one table in the dataset's transport shape, when the columnar parse read
        all of them; else ``None`` (use ``records``)."""
        self._settle()
        if self._table is not None and self._table_lines is not None and len(self._table_lines) == len(self.rows):
            return self._table
        return None

    @property
    def records(self) -> list[Any]:
        self._settle()
        if self._records is None:
            lines = self.block.lines
            self._records = [self.decoded[i] if i in self.decoded else decode_line(lines[i]) for i in self.rows]
        return self._records

    def reject(self, position: int, errors: list[dict[str, str]], stage: str) -> Reject:
        """A reject for the row at ``position`` in ``rows``."""
        self._settle()
        return self.block.reject(self.rows[position], errors, stage)

    def subset(self, positions: list[int]) -> "ParsedBatch":
        """The rows at ``positions``, as their own batch (the records-only form)."""
        records = self.records
        return ParsedBatch(self.block, [self.rows[p] for p in positions],
                           decoded={self.rows[p]: records[p] for p in positions},
                           _records=[records[p] for p in positions])

    def __len__(self) -> int:
        self._settle()
        return len(self.rows)


@dataclass
class ValidatedBatch:
    """Validate output: valid records as a typed Arrow table, the rest as rejects. ``lines`` (the
    block line of each table row) lets the SDK quarantine a row that fails later (in map or
    write); a validator that leaves it out gets it derived from the batch."""

    table: pa.Table
    rejects: list[Reject] = field(default_factory=list)
    lines: list[int] | None = None
