"""The columnar fast path: pyarrow parses blocks, vector checks validate, fastjsonschema only sees
the rows that fail them.

Correctness never depends on the fast path. A block goes straight to pyarrow only when cheap
whole-buffer tests show every line is one clean object; otherwise its lines are screened with
Arrow kernels (starts/ends with a brace, no value of the wrong JSON type for any property, no
NaN/Infinity or lone surrogate, valid UTF-8), and a line the screens miss but pyarrow refuses is
isolated by bisection. The vector checks accept a row only when fastjsonschema would (exactly,
or more strictly); any row they do not accept is decided record by record. A dataset whose
schema uses anything the checks cannot decide (nested objects, arrays, patterns, other formats)
has no plan and is parsed and validated record by record.
"""
from __future__ import annotations

import bisect
import codecs
import os
import re
import weakref
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa
import pyarrow.json as pj

from elt_sdk import kernels as k
from elt_sdk.batch import ParsedBatch, RawBlock
from elt_sdk.dataset import Dataset
from elt_sdk.schema import SchemaError, json_types, transport_schema

PROPERTY_KEYWORDS = {"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                     "minLength", "maxLength", "format", "title", "description", "default", "examples", "$comment"}
ROOT_KEYWORDS = {"type", "properties", "required", "additionalProperties", "title", "description", "$schema", "$id",
                 "$comment", "examples", "default"}
# Stricter than RFC 3339 as fastjsonschema checks it: a row outside these forms takes the record path.
STRICT_DATE_TIME = (r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
                    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$")
STRICT_DATE = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
MIN_READ_BLOCK = 256 << 10
UTF8_WINDOW = 64 << 10
_CPUS = os.cpu_count() or 1
ARROW_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string | number | integer | boolean
    fmt: str | None
    required: bool
    nullable: bool
    prop: dict


def _column(name: str, prop: dict, required: bool) -> Column | None:
    if set(prop) - PROPERTY_KEYWORDS:
        return None
    try:
        types, nullable = json_types(prop)
    except SchemaError:
        return None
    if types in (["integer", "number"], ["number", "integer"]):
        types = ["number"]
    if len(types) != 1 or types[0] not in ("string", "number", "integer", "boolean"):
        return None
    kind, fmt = types[0], prop.get("format")
    if fmt is not None and (kind != "string" or fmt not in ("date-time", "date")):
        return None
    for key in ("exclusiveMinimum", "exclusiveMaximum"):
        if isinstance(prop.get(key), bool):
            return None  # draft-04 style: leave it to fastjsonschema
    values = list(prop.get("enum", [])) + ([prop["const"]] if "const" in prop else [])
    if any(v is None or isinstance(v, bool) != (kind == "boolean") or
           (kind == "string") != isinstance(v, str) for v in values):
        return None
    return Column(name, kind, fmt, required, nullable, dict(prop))


class ColumnarPlan:
    def __init__(self, dataset: Dataset, columns: list[Column]):
        self.dataset = dataset
        self.columns = columns
        # as JSON values arrive (times as strings), every column nullable: absence is accept()'s business
        self.transport = pa.schema([f.with_nullable(True) for f in transport_schema(dataset.bronze_arrow_schema)])
        self.closed = dataset.json_schema.get("additionalProperties") is False
        self.suspect = self._suspect_pattern()
        # fields the parse ignores may hide NaN/Infinity, which pyarrow reads and strict JSON does not
        self.suspect_ignoring = "NaN|Infinity|" + self.suspect
        self.null_sensitive = any(not c.required and not c.nullable for c in columns)
        # Hints shared by every object of the dataset (and the local runtime's threads); a stale
        # value costs speed only. screen_next: the last block needed the screens, so screen the
        # next one up front. extra_fields: blocks carry fields the schema does not name (and it
        # allows them; only _read sets it), so parses ignore them and look for NaN/Infinity.
        self.screen_next = False
        self.extra_fields = False

    @property
    def unnamed_fields(self) -> str:
        """What pyarrow does with a field the schema does not name: refuse it until one is seen."""
        return "ignore" if self.extra_fields else "error"

    def _options(self, extra: str) -> pj.ParseOptions:
        return pj.ParseOptions(explicit_schema=self.transport, unexpected_field_behavior=extra)

    def _suspect_pattern(self) -> str:
        """RE2: a property followed by a value of the wrong JSON type, or a null it may not be
        (which covers NaN/Infinity in every schema column but a number's -Infinity, and that
        one fails the finiteness check)."""
        alternatives = []
        starts = {"string": '"', "number": r"\-0-9", "integer": r"\-0-9", "boolean": "tf"}
        for c in self.columns:
            key = '"' + re.escape(c.name).replace('"', r'\"') + r'"\s*:\s*'
            wrong = f"[^{starts[c.kind]}\\s]"
            if c.nullable:  # null is allowed; anything else starting with n is not (RE2 has no lookahead)
                wrong = f"[^n{starts[c.kind]}\\s]|n[^u]"
            alternatives.append(key + f"(?:{wrong})")
            if c.kind == "integer":
                alternatives.append(key + r"-?[0-9]+[.eE]")
            if c.kind == "boolean":
                alternatives.append(key + r"(?:t[^r]|f[^a])")
        return "|".join(alternatives)

    # -- parse ---------------------------------------------------------------------------------

    def _read(self, buf: Any, extra: str) -> pa.Table | None:
        """pyarrow's parse of ``buf`` (bytes or an Arrow buffer), or None where it refuses.
        Read blocks are sized so every core gets several (a longer line fails the read and is
        isolated like any other)."""
        block_size = max(MIN_READ_BLOCK, len(buf) // (4 * _CPUS) + 1)
        while True:
            options = pj.ReadOptions(use_threads=True, block_size=block_size)
            try:
                return pj.read_json(pa.BufferReader(buf), read_options=options, parse_options=self._options(extra))
            except ARROW_ERRORS as exc:
                if "straddl" in str(exc) and block_size <= len(buf):  # a line longer than a read block
                    block_size = len(buf) + 1
                    continue
                if extra == "error" and "unexpected field" in str(exc) and not self.closed:
                    self.extra_fields = True
                return None

    def _one_object_per_line(self, block: RawBlock) -> bool:
        """Every line starts with ``{`` and ends with ``}``: with pyarrow's row count equal to the
        line count, each line then holds exactly one object (pyarrow reads ``{..} {..}`` as two
        rows and skips blank lines, and ``}\\n{`` rules blank lines out)."""
        data, n = block.data, block.line_count
        return data[:1] == b"{" and data[-2:] == b"}\n" and (n == 1 or data.count(b"}\n{") == n - 1)

    def _needs_screen(self, data: bytes) -> bool:
        """Whole-buffer tests a clean block passes at memchr speed."""
        if self.null_sensitive and b"null" in data:  # a null pyarrow cannot tell from absence
            return True
        # NaN/Infinity: pyarrow reads them, strict JSON does not. In a schema column they fail the
        # read or the finiteness check; only fields the parse ignores can hide them.
        if self.extra_fields and (b"NaN" in data or b"Infinity" in data):
            return True
        return not data.isascii() and _first_bad_utf8(data, 0) is not None  # pyarrow does not check

    def parse(self, block: RawBlock, decode_rows: Callable[..., None]) -> ParsedBatch:
        if not self.screen_next and self._one_object_per_line(block) and not self._needs_screen(block.data):
            mode = self.unnamed_fields
            table = self._read(block.data, mode)
            if table is None and self.unnamed_fields != mode and not self._needs_screen(block.data):
                table = self._read(block.data, self.unnamed_fields)  # it failed on a field the schema does not name
            if table is not None and table.num_rows == block.line_count:
                rows = range(block.line_count)
                return ParsedBatch(block, list(rows), _table=table, _table_lines=list(rows))
        return self._screened(block, decode_rows)

    def _screened(self, block: RawBlock, decode_rows: Callable[..., None]) -> ParsedBatch:
        """Screens over the lines as one Arrow array, so only the lines they set aside cost
        Python work: shape (``{`` ... ``}``), wrong-typed values and NaN/Infinity (RE2), UTF-8."""
        lines = block.line_array()
        shape = k.and_(k.starts_with(lines, "{"), k.or_(k.ends_with(lines, "}\n"), k.ends_with(lines, "}\r\n")))
        if not block.data.isascii():
            bad = _bad_utf8_lines(block)
            if bad:
                shape = k.and_(shape, _mask_without(block.line_count, bad))
        while True:
            suspect = k.matches(lines, self.suspect_ignoring if self.extra_fields else self.suspect)
            keep = k.and_(shape, k.invert(suspect))
            try:
                tables, parsed, failed = self._isolate(lines, k.indices(keep), self.unnamed_fields,
                                                       k.filter(lines, keep))
                break
            except _FieldsLearnt:  # the block has fields the schema does not name: screen it again
                continue
        self.screen_next = k.any_true(suspect)
        rest = k.indices(k.invert(keep))
        batch = ParsedBatch(block, [])
        if tables:
            batch._table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            batch._table_lines = parsed

        def decode_set_aside() -> None:
            decode_rows(block, sorted(rest + failed), batch)
            batch.rows = sorted(parsed + list(batch.decoded))

        batch._pending = decode_set_aside
        return batch

    def _isolate(self, lines: pa.LargeBinaryArray, idx: list[int], extra: str,
                 picked: pa.LargeBinaryArray | None = None) -> tuple[list[pa.Table], list[int], list[int]]:
        """Parse the lines at ``idx`` in one go; where pyarrow refuses, halve until the culprits
        stand alone."""
        if not idx:
            return [], [], []
        if picked is None:
            picked = k.take(lines, pa.array(idx, pa.int64()))
        table = self._read(_values(picked), extra)
        if table is not None and table.num_rows == len(idx):
            return [table], list(idx), []
        if table is None and extra != self.unnamed_fields:
            raise _FieldsLearnt
        if len(idx) == 1:
            return [], [], list(idx)
        mid = len(idx) // 2
        lt, lp, lf = self._isolate(lines, idx[:mid], extra)
        rt, rp, rf = self._isolate(lines, idx[mid:], extra)
        return lt + rt, lp + rp, lf + rf

    # -- validate ------------------------------------------------------------------------------

    def accept(self, table: pa.Table) -> Any:
        """True where fastjsonschema surely accepts the row; False means: decide record by record."""
        ok: Any = None
        for c in self.columns:
            col = table.column(c.name)
            conds = []
            if c.required and col.null_count:
                conds.append(k.is_valid(col))  # a null may be missing or explicit: let the record path decide
            p = c.prop
            if "enum" in p or "const" in p:
                values = list(p.get("enum", [p.get("const")]))
                conds.append(k.is_in(col, pa.array(values, type=col.type)))
            for key, op in (("minimum", "greater_equal"), ("maximum", "less_equal"),
                            ("exclusiveMinimum", "greater"), ("exclusiveMaximum", "less")):
                if key in p:
                    conds.append(k.compare(op, col, pa.scalar(p[key], col.type)))
            # characters <= bytes: a byte bound is exact for minLength <= 1 and stricter for maxLength
            if "minLength" in p:
                length = k.binary_length(col) if p["minLength"] <= 1 else k.utf8_length(col)
                conds.append(k.compare("greater_equal", length, p["minLength"]))
            if "maxLength" in p:
                conds.append(k.compare("less_equal", k.binary_length(col), p["maxLength"]))
            if c.kind == "number":
                conds.append(k.is_finite(col))  # pyarrow reads NaN/Infinity; strict JSON does not
            if c.fmt == "date-time":
                conds.append(k.matches(col, STRICT_DATE_TIME))
            elif c.fmt == "date":
                conds.append(k.matches(col, STRICT_DATE))
            for cond in conds:
                if cond.null_count:
                    cond = k.fill_null(cond, True)  # null values are the required check's business
                ok = cond if ok is None else k.and_(ok, cond)
        return ok if ok is not None else pa.chunked_array([pa.array([True] * table.num_rows)])

    def typed(self, table: pa.Table, ok: Any) -> tuple[pa.Table, Any]:
        """The accepted rows in the dataset's bronze schema, and ``ok`` without the rows whose
        values Arrow refuses (a date that does not exist): those are decided record by record."""
        accepted = k.filter(table, ok) if k.any_true(k.invert(ok)) else table
        try:
            return k.cast_table(accepted, self.dataset.bronze_arrow_schema), ok
        except k.ColumnCastError as exc:  # rare: find the values Arrow refuses, try again without them
            whole = table.column(exc.field.name)
            return self.typed(table, k.and_(ok, pa.array([_castable(v, whole.type, exc.field.type)
                                                          for v in whole.to_pylist()])))


class _FieldsLearnt(Exception):
    """A read refused a field the schema does not name, and the dataset's schema allows them."""


def _values(array: pa.LargeBinaryArray) -> pa.Buffer:
    """The bytes of a compact binary array's values, end to end (lines keep their newlines)."""
    offsets = array.buffers()[1]
    first, last = (int.from_bytes(offsets[i * 8:(i + 1) * 8], "little", signed=True)
                   for i in (array.offset, array.offset + len(array)))
    return array.buffers()[2][first:last]


def _first_bad_utf8(data: bytes, start: int, end: int | None = None) -> int | None:
    """Position of the first byte in ``data[start:end]`` that is not valid UTF-8, or None."""
    try:
        codecs.utf_8_decode(memoryview(data)[start:end], "strict", True)
        return None
    except UnicodeDecodeError as exc:
        return start + exc.start


def _bad_utf8_lines(block: RawBlock) -> set[int]:
    """The lines with invalid UTF-8, decoding line-aligned windows (a decode error copies what it
    was decoding, so a window bounds that copy), resumed after each bad line."""
    bad: set[int] = set()
    starts = block.starts
    pos, last = 0, len(starts) - 1
    while pos < len(block.data):
        end = starts[min(bisect.bisect_right(starts, pos + UTF8_WINDOW), last)]
        at = _first_bad_utf8(block.data, pos, end)
        if at is None:
            pos = end
            continue
        line = bisect.bisect_right(starts, at) - 1
        bad.add(line)
        pos = starts[line + 1]
    return bad


def _mask_without(n: int, positions: set[int]) -> pa.BooleanArray:
    """True everywhere but at ``positions``, built as bytes (no Python bool per row)."""
    flags = bytearray(b"\x01") * n
    for i in positions:
        flags[i] = 0
    return k.cast(pa.Array.from_buffers(pa.uint8(), n, [None, pa.py_buffer(flags)]), pa.bool_())


def _castable(value: Any, source: pa.DataType, target: pa.DataType) -> bool:
    try:
        k.cast(pa.array([value], source), target)
        return True
    except ARROW_ERRORS:
        return False


_plans: "weakref.WeakKeyDictionary[Dataset, ColumnarPlan | None]" = weakref.WeakKeyDictionary()


def plan_for(dataset: Dataset) -> ColumnarPlan | None:
    if dataset not in _plans:
        _plans[dataset] = _make_plan(dataset)
    return _plans[dataset]


def _make_plan(dataset: Dataset) -> ColumnarPlan | None:
    schema = dataset.json_schema
    if set(schema) - ROOT_KEYWORDS or schema.get("additionalProperties", True) not in (True, False):
        return None
    required = set(schema.get("required", ()))
    if required - set(schema.get("properties", {})):
        return None
    columns = []
    for name, prop in schema.get("properties", {}).items():
        column = _column(name, prop, name in required)
        if column is None:
            return None
        columns.append(column)
    return ColumnarPlan(dataset, columns) if columns else None
