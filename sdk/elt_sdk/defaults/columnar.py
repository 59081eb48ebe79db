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

import operator
import os
import re
import weakref
from dataclasses import dataclass
from itertools import compress
from typing import Any, Callable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

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
MIN_READ_BLOCK = 1 << 20
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
        strict = dataset.json_schema.get("additionalProperties") is False
        self.parse_options = pj.ParseOptions(explicit_schema=self.transport,
                                             unexpected_field_behavior="error" if strict else "ignore")
        self.suspect = self._suspect_pattern()
        self.null_sensitive = any(not c.required and not c.nullable for c in columns)
        # A block needed the screens, so screen the next one up front. A hint shared by every
        # object of the dataset (and the local runtime's threads): a stale value costs speed only.
        self.screen_next = False

    def _suspect_pattern(self) -> str:
        """RE2: a property followed by a value of the wrong JSON type, or a null it may not be;
        NaN/Infinity anywhere (pyarrow reads them, strict JSON does not)."""
        alternatives = [r"NaN", r"Infinity"]
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

    def _read(self, buf: bytes) -> pa.Table | None:
        # one read block per core, so pyarrow parses a buffer on every core (a longer line fails
        # the read and is isolated like any other)
        options = pj.ReadOptions(use_threads=True, block_size=max(MIN_READ_BLOCK, len(buf) // _CPUS + 1))
        try:
            return pj.read_json(pa.BufferReader(buf), read_options=options, parse_options=self.parse_options)
        except ARROW_ERRORS:
            return None

    def _needs_screen(self, data: bytes) -> bool:
        """Whole-buffer tests at memchr speed. pyarrow reads NaN/Infinity (strict JSON does not),
        even in fields it then ignores; lone surrogates need no test (pyarrow refuses them)."""
        if self.screen_next or b"\r" in data or b"NaN" in data or b"Infinity" in data:
            return True
        if self.null_sensitive and b"null" in data:
            return True
        if not data.isascii():
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                return True
        return False

    def parse(self, block: RawBlock, decode_rows: Callable[..., None]) -> ParsedBatch:
        data = block.data
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        body = data[:-1] if data.endswith(b"\n") else data
        if (not self.screen_next and body[:1] == b"{" and body[-1:] == b"}"
                and (lines == 1 or data.count(b"}\n{") == lines - 1) and not self._needs_screen(data)):
            table = self._read(data)
            if table is not None and table.num_rows == lines:
                rows = range(lines)
                return ParsedBatch(block, rows, table=table, table_lines=rows)
        return self._screened(block, decode_rows)

    def _screened(self, block: RawBlock, decode_rows: Callable[..., None]) -> ParsedBatch:
        lines = block.lines
        arr = pa.array(lines, pa.binary())
        shape = pc.and_(pc.starts_with(arr, pattern="{"), pc.ends_with(arr, pattern="}"))
        suspect = pc.match_substring_regex(arr, pattern=self.suspect)
        keep = pc.and_(shape, pc.invert(suspect))
        mask = keep.to_pylist()
        if not block.data.isascii():
            try:
                block.data.decode("utf-8")
            except UnicodeDecodeError:  # check only the non-ASCII candidate lines, one by one
                non_ascii = pc.and_(keep, pc.match_substring_regex(arr, pattern=r"[\x80-\xff]"))
                for i in pc.indices_nonzero(non_ascii).to_pylist():
                    try:
                        lines[i].decode("utf-8")
                    except UnicodeDecodeError:
                        mask[i] = False
        self.screen_next = pc.any(suspect).as_py() or False
        candidates = list(compress(range(len(lines)), mask))
        rest = list(compress(range(len(lines)), map(operator.not_, mask)))
        tables, parsed, failed = self._isolate(lines, candidates, joined=b"\n".join(compress(lines, mask)))
        batch = ParsedBatch(block, [])
        decode_rows(block, sorted(rest + failed), batch)
        if tables:
            batch.table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            batch.table_lines = parsed
        batch.rows = sorted(parsed + list(batch.decoded))
        return batch

    def _isolate(self, lines: list[bytes], idx: list[int], joined: bytes | None = None) -> tuple[list[pa.Table], list[int], list[int]]:
        """Parse ``idx`` in one go; where pyarrow refuses, halve until the culprits stand alone."""
        if not idx:
            return [], [], []
        buf = joined if joined is not None else b"\n".join([lines[i] for i in idx])
        table = self._read(buf)
        if table is not None and table.num_rows == len(idx):
            return [table], list(idx), []
        if len(idx) == 1:
            return [], [], list(idx)
        mid = len(idx) // 2
        lt, lp, lf = self._isolate(lines, idx[:mid])
        rt, rp, rf = self._isolate(lines, idx[mid:])
        return lt + rt, lp + rp, lf + rf

    # -- validate ------------------------------------------------------------------------------

    def accept(self, table: pa.Table) -> pa.BooleanArray:
        """True where fastjsonschema surely accepts the row; False means: decide record by record."""
        ok: Any = None
        for c in self.columns:
            col = table.column(c.name)
            conds = []
            if c.required:
                conds.append(pc.is_valid(col))  # a null may be missing or explicit: let the record path decide
            p = c.prop
            if "enum" in p or "const" in p:
                values = list(p.get("enum", [p.get("const")]))
                conds.append(pc.is_in(col, value_set=pa.array(values, type=col.type)))
            for key, fn in (("minimum", pc.greater_equal), ("maximum", pc.less_equal),
                            ("exclusiveMinimum", pc.greater), ("exclusiveMaximum", pc.less)):
                if key in p:
                    conds.append(fn(col, p[key]))
            if "minLength" in p:
                conds.append(pc.greater_equal(pc.utf8_length(col), p["minLength"]))
            if "maxLength" in p:
                conds.append(pc.less_equal(pc.utf8_length(col), p["maxLength"]))
            if c.kind == "number":
                conds.append(pc.is_finite(col))  # pyarrow reads NaN/Infinity; strict JSON does not
            if c.fmt == "date-time":
                conds.append(pc.match_substring_regex(col, pattern=STRICT_DATE_TIME))
            elif c.fmt == "date":
                conds.append(pc.match_substring_regex(col, pattern=STRICT_DATE))
            for cond in conds:
                cond = pc.fill_null(cond, True)  # null values are the required check's business
                ok = cond if ok is None else pc.and_(ok, cond)
        return ok if ok is not None else pa.array([True] * table.num_rows)

    def typed(self, table: pa.Table, ok: pa.BooleanArray) -> tuple[pa.Table, pa.BooleanArray]:
        """The accepted rows in the dataset's bronze schema, and ``ok`` without the rows whose
        values Arrow refuses (a date that does not exist): those are decided record by record."""
        target = self.dataset.bronze_arrow_schema
        for f in target:
            col = table.column(f.name)
            if col.type != f.type:
                try:
                    col.filter(ok).cast(f.type)
                except ARROW_ERRORS:
                    ok = pc.and_(ok, pa.array([_castable(v, col.type, f.type) for v in col.to_pylist()]))
        accepted = table.filter(ok)
        return pa.Table.from_arrays([accepted.column(f.name).cast(f.type) for f in target], schema=target), ok


def _castable(value: Any, source: pa.DataType, target: pa.DataType) -> bool:
    try:
        pa.scalar(value, source).cast(target)
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
