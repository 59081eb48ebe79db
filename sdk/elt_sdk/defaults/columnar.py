"""The columnar fast path: pyarrow parses blocks, vector checks validate, the record path only
sees the rows that fail them.

Correctness never depends on the fast path. A block goes straight to pyarrow only when cheap
whole-buffer tests show every line is one clean object; otherwise its lines are screened with
Arrow kernels (starts/ends with a brace, no value of the wrong JSON type for any named property,
no NaN/Infinity or lone surrogate, valid UTF-8), and a line the screens miss but pyarrow refuses
is found by the row its error names (``_isolate_by_row``; by halving where it names none). pyarrow's reader is strict about JSON types with an explicit schema (a
number where a string is declared fails the read), and refuses duplicate keys, lone surrogates
and numbers beyond float64.

The vector checks (``accept``) accept a row only when the record path surely would, with the
same silver row; any row they do not accept is decided record by record (``validate.py``). They
follow the dataset's ``record_shape`` at any depth (structs, lists, lists of structs, nullable
unions) and check, per position: ``type``, ``enum``/``const``, bounds, ``multipleOf`` (exactly),
``minLength``/``maxLength``, ``pattern`` (RE2 with ECMA-262's meaning), the ``date-time``/``date``
formats (strict forms; leap seconds, 9-digit fractions, lowercase ``t``/``z`` and years that may
leave 1-9999 in UTC go to the record path), ``minItems``/``maxItems``, ``required``. A keyword
that does not apply to a position's type is ignored, as JSON Schema says. A dataset whose schema
uses anything else (``not``, ``oneOf`` beyond a nullable union, ``uniqueItems``, a pattern RE2
cannot match, other formats, JSON-text columns, ...) has no plan and is parsed and validated
record by record.
"""
from __future__ import annotations

import bisect
import contextvars
import codecs
import math
import os
import re
import threading
import weakref
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping

import pyarrow as pa
import pyarrow.json as pj

from elt_sdk import ecma
from elt_sdk import kernels as k
from elt_sdk.batch import ParsedBatch, RawBlock
from elt_sdk.dataset import Dataset
from elt_sdk.schema import ANNOTATIONS, APPLIES_TO, KIND_JSON_TYPE, Resolver, SchemaError, Shape, transport_schema
from elt_sdk.validator import FORMATS
from elt_sdk.values import INT64_MAX, INT64_MIN

# RFC 3339 in the forms Arrow's cast reads exactly as the record path does: real calendar days,
# seconds 00-59, at most 6 fraction digits, 'T' and 'Z' upper case. Anything else (a leap second,
# 9 fraction digits, 't'/'z') takes the record path.
_YEAR_MONTH_DAY = (r"[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
                   r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
                   r"|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29")
STRICT_DATE_TIME = (rf"^(?:{_YEAR_MONTH_DAY})T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{{1,6}})?"
                    r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$")
STRICT_DATE = rf"^(?:{_YEAR_MONTH_DAY})$"
# prefixes of values that may fall outside years 1-9999 once in UTC: the record path says which do
EDGE_DATE_TIMES = ("0000-", "0001-01-01T", "9999-12-31T")
EDGE_DATES = ("0000-",)
ESCAPED_KEY_NULL = r'"[^"\\]*\\.(?:[^"\\]|\\.)*"\s*:\s*null'
"""RE2: a key written with a backslash escape, whose value is null."""
LINE_NOT_AN_OBJECT = r"\n[^{]"
"""RE2: a line (after the first) that does not start with ``{``."""
VALUES_ON_ONE_LINE = r"}[ \t\r]*[^ \t\r\n,}\]]"
"""RE2: a value after an object on the same line (inside one object, ``}`` is followed only by
``,``, ``}``, ``]`` or white space)."""
EXACT_FLOAT_INT = 2.0**53  # below it, a float64 holds every integer exactly
MIN_READ_BLOCK = 256 << 10
CHECK_ERRORS = (pa.ArrowException, ValueError, TypeError, ArithmeticError, RecursionError, KeyError, IndexError)
"""What the vector checks may raise on values they have a gap for: the record path decides then."""
ROW_IN_ERROR = re.compile(r" in row (\d+)$")
"""Where pyarrow's reader names the object it refused (its syntax and type errors do)."""
UTF8_WINDOW = 64 << 10
MIN_PIECE_LINES = 2048
"""Lines below which ``_culprits`` reads a block's lines in one piece (threads cost more)."""
_CPUS = os.cpu_count() or 1
STRING_KINDS = ("string", "timestamp", "date")
NUMERIC_KINDS = ("integer", "number")
# keywords the vector checks decide, by kind (keywords for other JSON types are ignored)
VECTOR_KEYWORDS = {
    "string": {"minLength", "maxLength", "pattern", "format"},
    "integer": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "boolean": set(),
    "struct": {"properties", "required", "additionalProperties"},
    "list": {"items", "minItems", "maxItems", "additionalItems"},
}
VECTOR_KEYWORDS["number"] = VECTOR_KEYWORDS["integer"]
VECTOR_KEYWORDS["timestamp"] = VECTOR_KEYWORDS["date"] = VECTOR_KEYWORDS["string"]
_ALWAYS = {"type", "enum", "const", *ANNOTATIONS}


class NoPlan(Exception):
    """The schema uses something the vector checks cannot decide; the message says what."""


@dataclass
class Node:
    """One position of a record as the vector checks see it (see ``Shape``)."""

    kind: str
    name: str
    path: str
    nullable: bool
    required: bool
    checks: Mapping[str, Any]
    children: list["Node"] = field(default_factory=list)
    item: "Node | None" = None
    default: bool = False  # a default the validator inserts: a null here may be an absent field
    value_sets: list[pa.Array] = field(default_factory=list)  # enum, const: what a value here can equal

    def walk(self) -> "list[Node]":
        out = [self]
        for child in self.children:
            out += child.walk()
        if self.item is not None:
            out += self.item.walk()
        return out


def _effective(raw: Any, shape: Shape, resolver: Any) -> Mapping[str, Any]:
    """The keywords that decide values at ``shape``: ``raw`` with ``$ref`` followed, and a
    nullable union or a one-schema ``allOf`` unwrapped when nothing else sits beside it."""
    while True:
        raw, _ = resolver.follow(raw, "#")
        if not isinstance(raw, Mapping):
            raise NoPlan(f"{shape.path}: a boolean schema")
        if "type" in raw:
            return raw
        combinator = next((c for c in ("anyOf", "oneOf", "allOf") if c in raw), None)
        if combinator is None:
            return raw  # enum/const only
        beside = set(raw) - set(ANNOTATIONS) - {combinator}
        if beside & ({*APPLIES_TO, "type", "enum", "const", "allOf", "anyOf", "oneOf", "not", "if"}):
            raise NoPlan(f"{shape.path}: {combinator} with other keywords beside it")
        branches = raw[combinator]
        typed = []
        for branch in branches:
            resolved, _ = resolver.follow(branch, "#")
            if isinstance(resolved, Mapping) and resolved.get("type") == "null" and not (set(resolved) - _ALWAYS):
                continue
            typed.append(branch)
        if len(typed) != 1:
            raise NoPlan(f"{shape.path}: {combinator} of several schemas")
        raw = typed[0]


def _node(raw: Any, shape: Shape, name: str, required: bool, resolver: Any, dataset: Dataset, closed: bool) -> Node:
    if shape.kind == "json":
        raise NoPlan(f"{shape.path}: stored as JSON text")
    p = _effective(raw, shape, resolver)
    json_type = KIND_JSON_TYPE[shape.kind]
    for key in p:
        applies = APPLIES_TO.get(key)
        if key in _ALWAYS or (applies is not None and json_type not in applies
                              and not (json_type == "integer" and "number" in applies)):
            continue  # an annotation, or a keyword JSON Schema ignores for this type
        if applies is None and key not in ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref"):
            continue  # not a draft-07 keyword: ignored by the validator too
        if key not in VECTOR_KEYWORDS[shape.kind]:
            raise NoPlan(f"{shape.path}: {key!r} is decided record by record")
    values = list(p.get("enum", [])) + ([p["const"]] if "const" in p else [])
    if values and shape.kind in ("struct", "list"):
        raise NoPlan(f"{shape.path}: enum/const of objects or arrays")
    fmt = p.get("format")
    if fmt is not None and fmt in FORMATS and not (shape.kind == "timestamp" and fmt == "date-time"
                                                   or shape.kind == "date" and fmt == "date"):
        raise NoPlan(f"{shape.path}: format {fmt!r} is checked record by record")
    if "pattern" in p:
        try:
            ecma.to_re2(p["pattern"])
        except ecma.EcmaPatternError as exc:
            raise NoPlan(f"{shape.path}: pattern: {exc}") from None
    if "multipleOf" in p and shape.kind == "number" and _decimal_places(p["multipleOf"]) is None:
        raise NoPlan(f"{shape.path}: multipleOf {p['multipleOf']!r} has no short decimal form")
    node = Node(shape.kind, name, shape.path, shape.nullable, required, p,
                default=dataset.apply_defaults and isinstance(raw, Mapping) and "default" in raw,
                value_sets=[_value_set(v, shape.kind) for v in ([p["enum"]] if isinstance(p.get("enum"), list) else [])
                            + ([[p["const"]]] if "const" in p else [])])
    if shape.kind == "struct":
        if p.get("additionalProperties", True) is False and not closed:
            raise NoPlan(f"{shape.path}: additionalProperties false below an open root")
        if not isinstance(p.get("additionalProperties", True), bool):
            raise NoPlan(f"{shape.path}: additionalProperties with a schema")
        props = p.get("properties", {})
        if set(p.get("required", ())) - set(props) or len(props) != len(shape.fields):
            raise NoPlan(f"{shape.path}: required names without a property, or properties that are false")
        node.children = [_node(props[f.name], f.shape, f.name, f.required, resolver, dataset, closed) for f in shape.fields]
    elif shape.kind == "list":
        assert shape.item is not None
        node.item = _node(p["items"], shape.item, "[]", False, resolver, dataset, closed)
    return node


def _decimal_places(divisor: Any) -> tuple[int, int] | None:
    """``(d, M)`` with ``divisor == M / 10**d`` (as the decimal it prints as), if d <= 15."""
    exact = Fraction(repr(divisor)) if isinstance(divisor, float) else Fraction(divisor)
    for d in range(16):
        scaled = exact * 10**d
        if scaled.denominator == 1:
            return d, int(scaled)
    return None


def _int_bounds(p: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Inclusive integer bounds equal to the schema's bounds on integer values."""
    lo = hi = None
    for key in ("minimum", "exclusiveMinimum"):
        if key in p and not isinstance(p[key], bool):
            b = Fraction(repr(p[key])) if isinstance(p[key], float) else Fraction(p[key])
            v = math.ceil(b) if key == "minimum" else math.floor(b) + 1
            lo = v if lo is None else max(lo, v)
    for key in ("maximum", "exclusiveMaximum"):
        if key in p and not isinstance(p[key], bool):
            b = Fraction(repr(p[key])) if isinstance(p[key], float) else Fraction(p[key])
            v = math.floor(b) if key == "maximum" else math.ceil(b) - 1
            hi = v if hi is None else min(hi, v)
    return lo, hi


def _float_bound(value: Any, up: bool) -> float:
    """A float64 bound equivalent, on float64 values, to the exact bound ``value``."""
    try:
        f = float(value)
    except OverflowError:  # an integer bound beyond float64: beyond every finite value too
        return math.inf if value > 0 else -math.inf
    if isinstance(value, int) and Fraction(f) != value:
        if (Fraction(f) < value) == up:
            f = math.nextafter(f, math.inf if up else -math.inf)
    return f


def _mask_for(arr: pa.Array, node: Node, casts: dict[str, Any] | None = None) -> Any:
    """True where every check at ``node`` (and below) surely passes; null positions are True
    (their parent decides what a null means), but at a nullable position with an enum or const:
    pyarrow reads an explicit null and an absent value alike, and the set decides the first, so
    the record path decides both. ``casts`` (a top-level column's caller) receives a date-time
    column's values cast to UTC timestamps, where the check cast them all anyway."""
    conds = []
    p = node.checks
    kind = node.kind
    for value_set in node.value_sets:
        cond = k.is_in(arr, value_set)  # False at nulls
        if arr.null_count and not node.nullable:  # an absent value (the screens set explicit nulls aside)
            cond = k.or_(cond, k.invert(k.is_valid(arr)))
        conds.append(cond)
    if kind in STRING_KINDS:
        if "minLength" in p:
            length = k.binary_length(arr) if p["minLength"] <= 1 else k.utf8_length(arr)
            conds.append(k.compare("greater_equal", length, int(math.ceil(p["minLength"]))))
        if "maxLength" in p:  # bytes >= characters: exact for ASCII, stricter otherwise
            conds.append(k.compare("less_equal", k.binary_length(arr), int(math.floor(p["maxLength"]))))
        if "pattern" in p:
            conds.append(k.matches(arr, ecma.to_re2(p["pattern"])))
        if kind in ("timestamp", "date"):
            times = _plain_utc_times(arr) if kind == "timestamp" else None
            if times is None:
                conds.append(k.matches(arr, STRICT_DATE_TIME if kind == "timestamp" else STRICT_DATE))
            elif casts is not None:
                casts[node.name] = times  # typed() need not cast them again
            if times is None or not _within_safe_years(times):
                for prefix in EDGE_DATE_TIMES if kind == "timestamp" else EDGE_DATES:
                    conds.append(k.invert(k.starts_with(arr, prefix)))
    elif kind == "integer":
        lo, hi = _int_bounds(p)
        for bound, op in ((lo, "greater_equal"), (hi, "less_equal")):
            if bound is None:
                continue
            if INT64_MIN < bound <= INT64_MAX if op == "greater_equal" else INT64_MIN <= bound < INT64_MAX:
                conds.append(k.compare(op, arr, pa.scalar(bound, pa.int64())))
            elif (op == "greater_equal") == (bound > INT64_MAX):  # no int64 value meets it
                conds.append(k.compare("equal", k.is_valid(arr), False))
        if "multipleOf" in p:
            step = (Fraction(repr(p["multipleOf"])) if isinstance(p["multipleOf"], float)
                    else Fraction(p["multipleOf"])).numerator  # x * q / p integral <=> p | x
            if step > INT64_MAX:
                conds.append(k.compare("equal", arr, pa.scalar(0, pa.int64())))
            elif step != 1:
                step_s = pa.scalar(step, pa.int64())
                rest = k.subtract(arr, k.multiply(k.divide(arr, step_s), step_s))
                conds.append(k.compare("equal", rest, pa.scalar(0, pa.int64())))
    elif kind == "number":
        conds.append(k.is_finite(arr))  # pyarrow reads NaN/Infinity; strict JSON does not
        negative_zero = _negative_zero(arr)
        if negative_zero is not None:
            conds.append(k.invert(negative_zero))
        compared = [key for key in ("enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                                    "multipleOf") if key in p]
        if compared:  # a JSON integer beyond 2^53 is exact in Python and rounded here: record path
            conds.append(k.compare("less", k.call("abs", arr), pa.scalar(EXACT_FLOAT_INT)))
        for key, op, up in (("minimum", "greater_equal", True), ("maximum", "less_equal", False),
                            ("exclusiveMinimum", "greater", False), ("exclusiveMaximum", "less", True)):
            if key in p and not isinstance(p[key], bool):
                conds.append(k.compare(op, arr, pa.scalar(_float_bound(p[key], up))))
        if "multipleOf" in p:
            conds.append(_decimal_multiple(arr, p["multipleOf"]))
    elif kind == "struct":
        for i, child in enumerate(node.children):
            sub = arr.field(i)
            cm = _mask_for(sub, child)
            cm = _with_nulls(sub, child, cm)
            if cm is not None:
                conds.append(cm)
    elif kind == "list":
        assert node.item is not None
        if "minItems" in p or "maxItems" in p:
            length = k.call("list_value_length", arr)
            if "minItems" in p:
                conds.append(k.compare("greater_equal", length, int(math.ceil(p["minItems"]))))
            if "maxItems" in p:
                conds.append(k.compare("less_equal", length, int(math.floor(p["maxItems"]))))
        items = k.call("list_flatten", arr)
        im = _mask_for(items, node.item)
        if items.null_count and not node.item.nullable:
            im = k.is_valid(items) if im is None else k.and_(im, k.is_valid(items))
        if im is not None:
            if im.null_count:
                im = k.fill_null(im, True)
            bad = k.invert(im)
            if k.any_true(bad):
                parents = k.filter(k.call("list_parent_indices", arr), bad)
                conds.append(_mask_without(len(arr), set(k.unique(parents).to_pylist())))
    ok = None
    for cond in conds:
        if cond.null_count:
            cond = k.fill_null(cond, True)
        ok = cond if ok is None else k.and_(ok, cond)
    if ok is not None and kind == "struct" and arr.null_count:
        ok = k.or_(ok, k.invert(k.is_valid(arr)))  # what a null struct's children hold does not matter
    return ok


def _negative_zero(arr: Any) -> Any:
    """True at -0.0 (None where there is no zero at all, the common case: one kernel). pyarrow
    reads ``-0`` and ``-0.0`` alike, where Python's json reads ``-0`` as the integer 0 (stored
    0.0) and ``-0.0`` as -0.0: which of the two a row held, only the record path can tell."""
    zero = k.compare("equal", arr, pa.scalar(0.0))
    if not k.any_true(zero):
        return None
    return k.and_(zero, k.compare("less", k.divide(pa.scalar(1.0), arr), pa.scalar(0.0)))  # 1 / -0.0 = -inf


def _value_set(values: list[Any], kind: str) -> pa.Array:
    """The enum/const values a value of ``kind`` can equal, as Arrow values (JSON Schema: 1 and
    1.0 are equal, true and 1 are not)."""
    if kind in STRING_KINDS:
        return pa.array([v for v in values if isinstance(v, str)], pa.string())
    if kind == "boolean":
        return pa.array([v for v in values if isinstance(v, bool)], pa.bool_())
    numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)
               or isinstance(v, float) and math.isfinite(v)]
    if kind == "integer":
        return pa.array([int(v) for v in numbers if INT64_MIN <= v <= INT64_MAX and float(v).is_integer()], pa.int64())
    # a float64 column holds exactly the numbers a JSON value below 2^53 could be (see _mask_for)
    return pa.array([float(v) for v in numbers if abs(v) < EXACT_FLOAT_INT and Fraction(float(v)) == Fraction(v)],
                    pa.float64())


PLAIN_DATE_TIME_LENGTH = 20
"""``YYYY-MM-DDThh:mm:ssZ``: the form most producers write."""
SAFE_YEARS_US = (-62135510400_000_000, 253402214400_000_000)
"""0001-01-02T00:00:00Z and 9999-12-31T00:00:00Z in microseconds: times between them are no
``EDGE_DATE_TIMES`` prefix in the plain form."""


def _plain_utc_times(arr: Any) -> Any:
    """The values as UTC timestamps (row for row, nulls kept) when every one is a date-time in the
    plain form ``YYYY-MM-DDThh:mm:ssZ`` and Arrow casts them all; otherwise None, and
    ``STRICT_DATE_TIME`` decides value by value. For a string of that shape (20 bytes, ``T`` at
    10, ``Z`` at 19), Arrow's ISO 8601 cast succeeds exactly when the strict pattern matches: it
    checks every digit, separator and range, calendar days and leap years included (a test
    compares the two on every one-byte change of several such strings and on the ranges' edges).
    A cast and three cheap kernels cost ~0.8 ms per 22k values, the pattern 2.1 ms (RE2's setup
    is paid per value). (A column with a few invalid values of the plain shape, hour 24 or month
    13, is left to the pattern: setting them aside by the value each failed cast names cost more
    than the pattern, ~0.7 ms per distinct value.)"""
    if len(arr) == arr.null_count:
        return None
    lengths = k.call("min_max", k.binary_length(arr))
    if lengths["min"].as_py() != PLAIN_DATE_TIME_LENGTH or lengths["max"].as_py() != PLAIN_DATE_TIME_LENGTH:
        return None
    if not k.all_true(k.ends_with(arr, "Z")) or \
            not k.all_true(k.compare("equal", k.find(arr, "T"), 10)):
        return None
    try:
        return k.cast(arr, pa.timestamp("us", "UTC"))
    except k.ARROW_ERRORS:
        return None


def _within_safe_years(times: Any) -> bool:
    """No time at the edges of years 1-9999 (where ``EDGE_DATE_TIMES`` send values to the record
    path): the prefix checks can be skipped."""
    extent = k.call("min_max", k.cast(times, pa.int64()))
    return SAFE_YEARS_US[0] <= extent["min"].as_py() and extent["max"].as_py() < SAFE_YEARS_US[1]


def _with_nulls(arr: pa.Array, node: Node, mask: Any) -> Any:
    """``mask`` with the verdict on nulls: a null of a required field (or of one the validator
    would fill with its default) may be an absent field, so the record path decides it. A null of
    an optional field is an absent one: the screens set aside lines with an explicit null where
    null is not allowed."""
    if not arr.null_count or not (node.required or node.default):
        return mask
    valid = k.is_valid(arr)
    if mask is None:
        return valid
    return k.and_(k.fill_null(mask, True), valid)


def _decimal_multiple(arr: Any, divisor: Any) -> Any:
    """Exact ``multipleOf`` on float64 values taken as the decimal they print as: with
    ``divisor == M / 10**d``, a value x whose shortest decimal has at most d places is
    ``r / 10**d`` with r = round(x * 10**d) (|r| < 10**15 keeps that decimal within float64's 15
    exact digits, and ``r / 10**d == x`` proves it); then x is a multiple iff M divides r."""
    d, m = _decimal_places(divisor)  # type: ignore[misc]
    scale = pa.scalar(float(10**d))
    r = k.round(k.multiply(arr, scale))
    small = k.compare("less", k.call("abs", r), pa.scalar(1e15))
    exact = k.compare("equal", k.divide(r, scale), arr)
    ok = k.and_(small, exact)
    if m != 1:
        ints = k.cast(k.call("if_else", small, r, pa.scalar(0.0)), pa.int64())
        step = pa.scalar(m, pa.int64()) if m <= INT64_MAX else None
        if step is None:
            return k.and_(ok, k.compare("equal", ints, pa.scalar(0, pa.int64())))
        rest = k.subtract(ints, k.multiply(k.divide(ints, step), step))
        ok = k.and_(ok, k.compare("equal", rest, pa.scalar(0, pa.int64())))
    return ok


def _read_block(size: int) -> int:
    """pyarrow read blocks for ``size`` bytes: several per core."""
    return max(MIN_READ_BLOCK, size // (4 * _CPUS) + 1)


def _named_row(reason: str) -> int:
    """The row a pyarrow read error names ("... in row N"), or -1."""
    found = ROW_IN_ERROR.search(reason)
    return int(found.group(1)) if found else -1


def _nullable_field(f: pa.Field) -> pa.Field:
    typ = f.type
    if pa.types.is_struct(typ):
        typ = pa.struct([_nullable_field(typ.field(i)) for i in range(typ.num_fields)])
    elif pa.types.is_list(typ):
        typ = pa.list_(_nullable_field(typ.value_field))
    elif pa.types.is_large_list(typ):
        typ = pa.large_list(_nullable_field(typ.value_field))
    return pa.field(f.name, typ, nullable=True, metadata=f.metadata)


class ColumnarPlan:
    def __init__(self, dataset: Dataset, root: Node):
        self.dataset = dataset
        self.root = root
        self.columns = root.children
        # as JSON values arrive (times as strings), every column nullable: absence is accept()'s business
        self.transport = pa.schema([f.with_nullable(True) for f in transport_schema(dataset.bronze_arrow_schema)])
        # ... and nullable at every depth, to find the lines with a nested required field absent or
        # null (the read above fails on them without naming a row; Arrow's cast and Parquet refuse
        # a null in a non-nullable field, even under a null parent, so tables come from the first)
        self.transport_nullable = pa.schema([_nullable_field(f) for f in self.transport])
        self.closed = root.checks.get("additionalProperties") is False
        # optional fields that may not be null: pyarrow reads an explicit null as an absent field
        strict_nulls = sorted({n.name for n in root.walk()[1:] if n.name != "[]" and not n.required and not n.nullable})
        self.null_sensitive = bool(strict_nulls)
        self.explicit_null = ('"(?:' + "|".join(re.escape(name).replace('"', r'\"') for name in strict_nulls)
                              + r')"\s*:\s*null') if strict_nulls else None
        self.suspect = self._suspect_pattern()
        if self.explicit_null:
            self.suspect += "|" + ESCAPED_KEY_NULL
        # fields the parse ignores may hide NaN/Infinity, which pyarrow reads and strict JSON does not
        self.suspect_ignoring = "NaN|Infinity|" + self.suspect
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

    def _options(self, extra: str, nullable: bool = False) -> pj.ParseOptions:
        return pj.ParseOptions(explicit_schema=self.transport_nullable if nullable else self.transport,
                               unexpected_field_behavior=extra)

    def _suspect_pattern(self) -> str:
        """RE2: a named property (at any depth) followed by a value of the wrong JSON type, or a
        null it may not be (which covers NaN/Infinity in every schema column but a number's
        -Infinity, and that one fails the finiteness check)."""
        starts = {"string": '"', "timestamp": '"', "date": '"', "number": r"\-0-9", "integer": r"\-0-9",
                  "boolean": "tf", "struct": "{", "list": r"\["}
        by_key: dict[str, list[Node]] = {}
        for n in self.root.walk()[1:]:
            if n.name != "[]":
                by_key.setdefault(n.name, []).append(n)
        alternatives = []
        for name, nodes in by_key.items():
            # a name at several places: only what none of them allows (pyarrow's read refuses a
            # wrong JSON type anyway; what matters is a null where one of them may not be null)
            key = '"' + re.escape(name).replace('"', r'\"') + r'"\s*:\s*'
            allowed = "".join(sorted({starts[n.kind] for n in nodes}))
            wrong = f"[^{allowed}\\s]"
            if all(n.nullable for n in nodes):  # null is allowed; anything else starting with n is not
                wrong = f"[^n{allowed}\\s]|n[^u]"
            alts = [wrong]
            if all(n.kind == "integer" for n in nodes):
                alts.append(r"-?[0-9]+[.eE]")
            if all(n.kind == "boolean" for n in nodes):
                alts.append(r"t[^r]|f[^a]")
            alternatives.append(key + f"(?:{'|'.join(alts)})")
        return "|".join(alternatives)

    # -- parse ---------------------------------------------------------------------------------

    def _read(self, buf: Any, extra: str) -> pa.Table | None:
        """pyarrow's parse of ``buf`` (bytes or an Arrow buffer), or None where it refuses.
        Read blocks are sized so every core gets several (a longer line fails the read and is
        isolated like any other)."""
        return self._read_whole(buf, extra, _read_block(len(buf)))[0]

    def _read_whole(self, buf: Any, extra: str, block_size: int, nullable: bool = False) -> tuple[pa.Table | None, str]:
        """The parse of ``buf`` in read blocks of ``block_size``, or None and pyarrow's reason."""
        while True:
            options = pj.ReadOptions(use_threads=True, block_size=block_size)
            try:
                return pj.read_json(pa.BufferReader(buf), read_options=options,
                                    parse_options=self._options(extra, nullable)), ""
            except k.ARROW_ERRORS as exc:
                if "straddl" in str(exc) and block_size <= len(buf):  # a line longer than a read block
                    block_size = len(buf) + 1
                    continue
                if extra == "error" and "unexpected field" in str(exc) and not self.closed:
                    self.extra_fields = True
                return None, str(exc)

    def _one_object_per_line(self, block: RawBlock) -> bool:
        """With pyarrow's row count equal to the line count, each line holds exactly one object.
        pyarrow reads white space between values, newlines included, as a separator: ``{..} {..}``
        on one line is two rows, a blank line none, an object across two lines one. Here every
        line starts with ``{`` (``\\n[^{]``: no blank line, no line that continues a value with
        anything else), and no value follows an object on its line (``VALUES_ON_ONE_LINE``:
        pyarrow reads ``{..} null`` as two rows). By induction every value is an object that
        starts a line, so rows == lines only when every line starts one. Two RE2 searches with a
        literal first byte, at memchr's speed and without the GIL, where counting ``}\\n{`` took
        twice as long holding it. (A ``} {`` inside a string only sends the block to the screens.)"""
        data = block.data
        return data[:1] == b"{" and not _buffer_matches(data, LINE_NOT_AN_OBJECT) \
            and not _buffer_matches(data, VALUES_ON_ONE_LINE)

    def _needs_screen(self, data: bytes) -> bool:
        """Whole-buffer tests a clean block passes in one pass (memchr or one RE2 scan)."""
        hazards = []
        if self.null_sensitive and _contains(data, "null"):
            hazards.append(self.explicit_null)  # a null pyarrow cannot tell from absence, where null is not allowed
            if b"\\" in data:
                hazards.append(ESCAPED_KEY_NULL)  # ... also after a key spelt with an escape (pyarrow decodes it)
        # NaN/Infinity: pyarrow reads them, strict JSON does not. In a schema column they fail the
        # read or the finiteness check; only fields the parse ignores can hide them.
        if self.extra_fields:
            if not hazards:  # alone, two literal searches beat one RE2 pass for either
                if _contains(data, "NaN") or _contains(data, "Infinity"):
                    return True
            else:
                hazards.append("NaN|Infinity")
        if hazards and _buffer_matches(data, "|".join(hazards)):
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
            set_aside = k.nonzero(k.invert(keep))
            try:
                tables, parsed, failed = self._isolate(lines, k.indices(keep), self.unnamed_fields,
                                                       _blanked(block, set_aside), block)
                break
            except _FieldsLearnt:  # the block has fields the schema does not name: screen it again
                continue
        self.screen_next = k.any_true(suspect)
        rest = set_aside.to_pylist()
        batch = ParsedBatch(block, [])
        if tables:
            batch._table = pa.concat_tables([t for t, _ in tables]) if len(tables) > 1 else tables[0][0]
            batch._table_lines = parsed
            if all(accepted for _, accepted in tables):  # validate need not run the checks again
                batch._accepted = batch._table

        def decode_set_aside() -> None:
            decode_rows(block, sorted(rest + failed), batch)
            batch.rows = sorted(parsed + list(batch.decoded))

        batch._pending = decode_set_aside
        return batch

    def _isolate(self, lines: pa.LargeBinaryArray, idx: list[int], extra: str,
                 text: Any = None, block: RawBlock | None = None) -> tuple[list[tuple[pa.Table, bool]], list[int], list[int]]:
        """Parse the lines at ``idx`` in one go (``text``: JSON text holding those lines and
        only white space besides, if the caller has it; ``block``: the block ``text`` is a
        blanked copy of, so each line sits at its offset); where pyarrow refuses, find the
        culprits by the rows it names, or halve until they stand alone. Each table comes with
        whether the vector checks accepted all its rows already."""
        if not idx:
            return [], [], []
        if text is None:
            text = _values(k.take(lines, pa.array(idx, pa.int64())))
        table = self._read(text, extra)
        if table is not None and table.num_rows == len(idx):
            return [(table, False)], list(idx), []
        if table is None and extra != self.unnamed_fields:
            raise _FieldsLearnt
        if len(idx) == 1:
            return [], [], list(idx)
        if block is not None:
            copy = bytearray(text)  # lines found bad are blanked in it
            return self._isolate_by_row(lines, idx, extra, copy, pa.py_buffer(copy), block.starts)
        mid = len(idx) // 2
        lt, lp, lf = self._isolate(lines, idx[:mid], extra)
        rt, rp, rf = self._isolate(lines, idx[mid:], extra)
        return lt + rt, lp + rp, lf + rf

    def _isolate_by_row(self, lines: pa.LargeBinaryArray, idx: list[int], extra: str, text: bytearray,
                        view: pa.Buffer, starts: list[int]) -> tuple[list[tuple[pa.Table, bool]], list[int], list[int]]:
        """The culprits among the lines at ``idx`` (each at its offset in ``text``, the other
        lines blank), found in three reads or so instead of halving (which read a block about
        log2(lines) times over for each culprit; a nested feed's line cut after an inner ``}``
        passes the brace screens):
        1. with every field nullable, the text is read as one block from the first line not yet
           read: it stops at the first line pyarrow refuses, and its syntax and type errors say
           which ("... in row N", N counting objects, one per line at ``idx``); the read goes on
           after it (``_culprits``: a piece of the lines per core, side by side);
        2. the rest, read again that way, goes through the vector checks: a nested required
           field absent or null (which fails the strict read without naming a row) is a null
           they refuse, as is anything else the record path will decide;
        3. those lines blanked too, the strict read gives the table (Arrow's cast and Parquet
           refuse a null in a non-nullable field, even under a null parent, so tables never
           come from the nullable reads). Anything unexpected falls back to halving."""
        bad = self._culprits(view, starts, idx, extra)  # positions in idx
        if bad is None:
            return self._isolate(lines, idx, extra)
        kept = self._blank(text, starts, idx, bad)
        failed = [idx[i] for i in bad]
        whole, _ = self._read_whole(view, extra, _read_block(len(view)), nullable=True)
        if whole is None or whole.num_rows != len(kept):
            t, p, f = self._isolate(lines, kept, extra)
            return t, p, failed + f
        try:
            ok = self.accept(whole)
            refused = k.indices(k.invert(ok))
        except CHECK_ERRORS:  # a gap in the vector checks: the strict read decides
            ok, refused = None, []
        failed += [kept[i] for i in refused]
        if refused:
            whole = k.filter(whole, ok)
        kept = self._blank(text, starts, kept, refused)
        if not kept:  # no table of no rows: pyarrow 17's kernels crash on its chunkless columns
            return [], [], failed
        if ok is None:
            t, p, f = self._isolate(lines, kept, extra, view)
            return t, p, failed + f
        try:  # the accepted rows have no null where a field may not be null, bar under a null parent
            return [(k.cast_table(whole, self.transport), True)], kept, failed
        except k.ColumnCastError:  # there: the strict read fills such fields itself
            t, p, f = self._isolate(lines, kept, extra, view)
            return t, p, failed + f

    def _culprits(self, view: pa.Buffer, starts: list[int], idx: list[int], extra: str) -> list[int] | None:
        """Step 1 of ``_isolate_by_row``: positions in ``idx`` of the lines a nullable read
        refuses, or None where an error names no row. Each read is one read block, so on one
        thread: the lines go in a piece per core, read side by side (the reader releases the
        GIL), each piece's rows counted from its first line."""
        n = len(idx)
        pieces = max(1, min(_CPUS, n // MIN_PIECE_LINES))
        bounds = [n * i // pieces for i in range(pieces + 1)]

        def piece(i: int) -> list[int] | None:
            bad, start, end = [], bounds[i], bounds[i + 1]
            stop = starts[idx[end - 1] + 1]
            while start < end:
                first = starts[idx[start]]
                table, reason = self._read_whole(view.slice(first, stop - first), extra, stop - first + 1, nullable=True)
                if table is not None:
                    break
                if extra != self.unnamed_fields:
                    raise _FieldsLearnt
                row = _named_row(reason)
                if not 0 <= row < end - start:
                    return None
                bad.append(start + row)
                start += row + 1
            return bad

        if pieces == 1:
            return piece(0)
        from concurrent.futures import ThreadPoolExecutor  # only blocks with culprits get here

        with ThreadPoolExecutor(pieces, thread_name_prefix="elt-culprits") as pool:
            found = list(pool.map(piece, range(pieces)))
        return None if any(f is None for f in found) else [p for f in found for p in f]  # type: ignore[union-attr]

    @staticmethod
    def _blank(text: bytearray, starts: list[int], idx: list[int], positions: list[int]) -> list[int]:
        """Turn the lines at ``positions`` of ``idx`` into white space; the lines left."""
        for i in positions:
            line_start, line_end = starts[idx[i]], starts[idx[i] + 1] - 1
            text[line_start:line_end] = b" " * (line_end - line_start)
        gone = set(positions)
        return [line for n, line in enumerate(idx) if n not in gone]

    # -- validate ------------------------------------------------------------------------------

    def accept(self, table: pa.Table, casts: dict[str, Any] | None = None) -> Any:
        """True where the record path surely accepts the row, with the row as read; False means:
        decide record by record. ``casts`` receives columns the checks cast to their silver type
        on the way (for ``typed``)."""
        ok: Any = None
        for node in self.columns:
            col = table.column(node.name)
            if node.kind not in ("struct", "list"):  # kernels take the whole column at once
                cond = _with_nulls(col, node, _mask_for(col, node, casts))
                if cond is None:
                    continue
            else:  # struct fields and list values are reached chunk by chunk
                masks = [_with_nulls(chunk, node, _mask_for(chunk, node)) for chunk in col.chunks]
                if all(m is None for m in masks):
                    continue
                cond = pa.chunked_array([pa.repeat(True, len(c)) if m is None else m
                                         for c, m in zip(col.chunks, masks)], pa.bool_())
            if cond.null_count:
                cond = k.fill_null(cond, True)
            ok = cond if ok is None else k.and_(ok, cond)
        return ok if ok is not None else uniform_mask(table.num_rows, True)

    def typed(self, table: pa.Table, ok: Any, casts: dict[str, Any] | None = None) -> tuple[pa.Table, Any]:
        """The accepted rows in the dataset's bronze schema, and ``ok`` without the rows whose
        values Arrow refuses: those are decided record by record. ``casts``: what ``accept``
        cast already (row for row with ``table``)."""
        some_refused = k.any_true(k.invert(ok))
        accepted = k.filter(table, ok) if some_refused else table
        if casts:
            casts = {name: k.filter(col, ok) if some_refused else col for name, col in casts.items()}
        try:
            return k.cast_table(accepted, self.dataset.bronze_arrow_schema, casts), ok
        except k.ColumnCastError as exc:  # rare: find the values Arrow refuses, try again without them
            whole = table.column(exc.field.name)
            fewer = k.and_(ok, pa.array([_castable(v, whole.type, exc.field.type) for v in whole.to_pylist()]))
            if k.count_true(fewer) == k.count_true(ok):  # every value casts alone: not a value's fault
                raise
            return self.typed(table, fewer)


def uniform_mask(n: int, value: bool) -> pa.ChunkedArray:
    """A verdict mask of ``n`` rows, all ``value`` (as ``accept`` returns them), built by Arrow."""
    return pa.chunked_array([pa.repeat(value, n)], pa.bool_())


class _FieldsLearnt(Exception):
    """A read refused a field the schema does not name, and the dataset's schema allows them."""


def _values(array: pa.LargeBinaryArray) -> pa.Buffer:
    """The bytes of a compact binary array's values, end to end (lines keep their newlines)."""
    offsets = array.buffers()[1]
    first, last = (int.from_bytes(offsets[i * 8:(i + 1) * 8], "little", signed=True)
                   for i in (array.offset, array.offset + len(array)))
    return array.buffers()[2][first:last]


def _blanked(block: RawBlock, positions: pa.Array) -> Any:
    """``block.data`` with the lines at ``positions`` (ascending) turned into white space, their
    newlines kept: pyarrow reads the other lines, in order, as if those were not there. One copy
    of the block (0.5 ms per 4 MiB with 2 % of its lines set aside), where filtering the kept
    lines into a new array took 2.8 ms."""
    if not len(positions):
        return block.data
    offsets = block.line_offsets
    starts = k.take(offsets, positions).to_pylist()
    ends = k.take(offsets, k.add(positions, 1)).to_pylist()
    text = bytearray(block.data)
    for start, end in zip(starts, ends):
        text[start:end - 1] = b" " * (end - 1 - start)
    return text


LITERAL_SEARCH_MIN = 64 << 10
"""From this size, a literal is looked for by RE2 (whose search for a literal runs at memchr's
speed: NaN in 0.2 ms per 4 MiB, against 3 ms for ``in``); below it ``in`` wins (an Arrow call
costs ~40 µs)."""


def _contains(data: bytes, literal: str) -> bool:
    """``literal.encode() in data``, for a literal with no character RE2 treats specially."""
    if len(data) < LITERAL_SEARCH_MIN:
        return literal.encode() in data
    return _buffer_matches(data, literal)


def _buffer_matches(data: bytes, pattern: str | None) -> bool:
    """RE2 search over a whole block at once (one pass, no copy)."""
    if pattern is None:
        return False
    whole = pa.LargeBinaryArray.from_buffers(pa.large_binary(), 1, [None, pa.array([0, len(data)], pa.int64()).buffers()[1],
                                                                    pa.py_buffer(data)])
    return k.any_true(k.matches(whole, pattern))


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
    except k.ARROW_ERRORS:
        return False


PLANS: "contextvars.ContextVar[dict[int, ColumnarPlan | None] | None]" = contextvars.ContextVar("elt_plans", default=None)
"""The plans of the ``Transformer`` running in this context (its parse worker runs in a copy of
it): each Transformer keeps its own plans and their learnt hints, so two of them never share
mutable state. Hooks called outside a Transformer (a test calling ``elt_parse``) get plans
cached per dataset object."""
_loose: "weakref.WeakKeyDictionary[Dataset, ColumnarPlan | None]" = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def plan_for(dataset: Dataset) -> ColumnarPlan | None:
    """The dataset's columnar plan, or None when its schema is decided record by record."""
    plans = PLANS.get()
    if plans is None:
        with _lock:
            if dataset not in _loose:
                _loose[dataset] = _make_plan(dataset)
            return _loose[dataset]
    key = id(dataset)
    if key not in plans:
        with _lock:
            if key not in plans:
                plans[key] = _make_plan(dataset)
    return plans[key]


def why_no_plan(dataset: Dataset) -> str | None:
    """Why the dataset takes the record path (None when it has a plan): for docs and tests."""
    try:
        _build(dataset)
        return None
    except (NoPlan, SchemaError) as exc:
        return str(exc)


def _build(dataset: Dataset) -> Node:
    shape = dataset.record_shape
    resolver = Resolver(dataset.json_schema)
    closed = isinstance(shape.schema, Mapping) and shape.schema.get("additionalProperties") is False
    root = _node(shape.schema, shape, "$", True, resolver, dataset, closed)
    if not root.children:
        raise NoPlan("$: no properties")
    return root


def _make_plan(dataset: Dataset) -> ColumnarPlan | None:
    try:
        return ColumnarPlan(dataset, _build(dataset))
    except (NoPlan, SchemaError):
        return None
