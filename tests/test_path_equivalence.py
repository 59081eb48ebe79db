"""One verdict, one reason, one silver row, whatever the path: generated schemas (keyword x type x
nesting) and records (valid, invalid, edge values) through the columnar plan and the record path,
and the harness's ``reference_verdict``."""
from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elt_sdk import kernels as k
from elt_sdk.batch import RawBlock, SourceRef
from elt_sdk.defaults import columnar, parse, validate
from test_values import rfc3339
from validation_paths import (Raw, WHEN, assert_same, columnar_path, dataset, dumps, line, record_path,
                              reference_verdict)

EXAMPLES = int(os.environ.get("ELT_EQUIVALENCE_EXAMPLES", "150"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

PATTERNS = ["^[A-Z]{2}[0-9]{4}$", "^\\d+$", "\\w", "^\\S*$", "^.{0,3}$", "[é-ü]", "^(ab|cd)*$", "x$", "^\\s", "(?=a)a",
            "\\bx"]
INTS = [0, 1, -1, 2, 3, 7, 10, 100, 2**31, 2**53, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64]
FLOATS = [0.5, 0.1, 0.3, 0.30000000000000004, 1e308, -0.0, 2.5, 1e-7, 0.0075, 19.01, 1.7976931348623157e308, 3.0,
          9007199254740993.0]
RAW_NUMBERS = ["1e400", "-1e400", "-0", "-0.0", "1.0", "1E2", "2.50", "1e-400", "18446744073709551616", "1e308",
               "9007199254740993", "0.30000000000000001", "123456789012345678901234567890"]
STRINGS = ["", "a", "ab", "abc", "AB1234", "12", "١٢", "ab\n", "\ud800", "é", "😀", "x", "null", " ", "\u00a0", "ab cd"]
TIMES = ["1998-12-31T23:59:60Z", "1998-12-31T15:59:60.123-08:00", "1998-12-31T23:58:60Z", "2025-03-05T10:00:00.123456789Z",
         "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00-01:00", "9999-12-31T23:59:59-01:00",
         "9999-12-31T23:59:59+01:00", "2024-02-29T12:00:00+05:30", "2023-02-29T00:00:00Z", "2025-03-05t10:00:00z",
         "2025-03-05T10:00:00.5Z", "2025-03-05T10:00:00+14:00", "2025-03-05T10:00:00-24:00", "2025-03-05 10:00:00Z",
         "2025-03-05T10:00:00", "2025-03-05T24:00:00Z", WHEN]
DATES = ["2024-02-29", "2023-02-29", "0000-01-01", "0001-01-01", "9999-12-31", "2025-13-01", "2025-3-1", "2025-03-05"]


# -- schemas -------------------------------------------------------------------------------------

def _nullable(schema: dict[str, Any], draw: Any) -> dict[str, Any]:
    how = draw(st.sampled_from(["no", "no", "type", "anyOf"]))
    if how == "type":
        return {**schema, "type": [schema["type"], "null"]}
    if how == "anyOf":
        return {"anyOf": [schema, {"type": "null"}]}
    return schema


@st.composite
def scalar_schemas(draw: Any) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "date-time", "date", "integer", "number", "boolean"]))
    schema: dict[str, Any] = {"type": "string", "format": kind} if kind in ("date-time", "date") else {"type": kind}
    pick = lambda key, values: (draw(st.booleans()) and schema.__setitem__(key, draw(st.sampled_from(values))))  # noqa: E731
    if kind in ("string", "date-time", "date"):
        pick("minLength", [0, 1, 2, 3, 25])
        pick("maxLength", [0, 2, 5, 30])
        if kind == "string":
            pick("pattern", PATTERNS)
            pick("enum", [["a", "ab", "12"], ["AB1234", 1, None], ["é", "😀"]])
            pick("const", ["ab", "x"])
    elif kind in ("integer", "number"):
        pick("minimum", [0, 1, 0.5, -1.5, 2**53 + 1, 2**63, -(2**70), -(2**1100)])
        pick("maximum", [10, 100.5, 2**53 + 1, 2**63 - 1, 2**70, 1e308, 2**1100])
        pick("exclusiveMinimum", [0, -0.5, 2**62])
        pick("exclusiveMaximum", [100, 1e300, 2**63])
        pick("multipleOf", [1, 2, 3, 7, 0.5, 0.1, 0.01, 0.0001, 1e-3, 2**64, 0.25, 1.5, 2**1100, 1e300])
        pick("enum", [[0, 1, 2.0, True], [0.5, 2.5, 3], [2**53 + 1, 10], [1e308, -0.0], [2**1100, 1]])
        pick("const", [3, 0.5, 2**63])
    else:
        pick("enum", [[True], [False, 0], [True, 1, "true"]])
        pick("const", [False])
    # keywords for other types: JSON Schema ignores them, so must every path
    pick("minimum", [3]) if kind in ("string", "date-time", "date", "boolean") else pick("minLength", [2])
    pick("maxItems", [0])
    pick("required", [["x"]])
    if ("const" in schema or "enum" in schema) and draw(st.booleans()):  # null beside a value set: a trap for vector checks
        return {**schema, "type": [schema["type"], "null"]}
    return _nullable(schema, draw)


def schemas(depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    if depth == 0:
        return scalar_schemas()

    @st.composite
    def nested(draw: Any) -> dict[str, Any]:
        kind = draw(st.sampled_from(["scalar", "scalar", "struct", "list"]))
        if kind == "scalar":
            return draw(scalar_schemas())
        if kind == "struct":
            names = draw(st.lists(st.sampled_from(["a", "b", "c", "v"]), min_size=1, max_size=3, unique=True))
            props = {n: draw(schemas(depth - 1)) for n in names}
            schema: dict[str, Any] = {"type": "object", "properties": props}
            required = draw(st.lists(st.sampled_from(names), unique=True, max_size=len(names)))
            if required:
                schema["required"] = required
            return _nullable(schema, draw)
        schema = {"type": "array", "items": draw(schemas(depth - 1))}
        if draw(st.booleans()):
            schema["minItems"] = draw(st.sampled_from([0, 1, 2]))
        if draw(st.booleans()):
            schema["maxItems"] = draw(st.sampled_from([1, 3]))
        if draw(st.booleans()):
            schema["minimum"] = 1  # ignored for arrays
        return _nullable(schema, draw)

    return nested()


# -- values --------------------------------------------------------------------------------------

_ANY = st.one_of(st.none(), st.booleans(), st.sampled_from(INTS), st.sampled_from(FLOATS), st.sampled_from(STRINGS),
                 st.sampled_from(RAW_NUMBERS).map(Raw), st.just({"z": 1}), st.just([1, "a"]))


def _unwrap(schema: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in schema["anyOf"] if b.get("type") != "null") if "anyOf" in schema else schema


def values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    s = _unwrap(schema)
    kind = s["type"][0] if isinstance(s["type"], list) else s["type"]
    if kind == "object":
        children = {n: values(p) for n, p in s["properties"].items()}
        base = st.fixed_dictionaries({}, optional={**children, "extra": _ANY})
    elif kind == "array":
        base = st.lists(values(s["items"]), max_size=4)
    elif s.get("format") == "date-time":
        base = st.sampled_from(TIMES) | rfc3339().map(lambda case: case[0])
    elif s.get("format") == "date":
        base = st.sampled_from(DATES)
    elif kind == "string":
        base = st.one_of(st.sampled_from(STRINGS + [v for v in s.get("enum", []) if isinstance(v, str)]),
                         st.text(max_size=6))
    elif kind in ("integer", "number"):
        base = st.one_of(st.sampled_from(INTS), st.integers(-20, 20), st.sampled_from(RAW_NUMBERS).map(Raw),
                         st.sampled_from(FLOATS), st.floats(allow_nan=False, allow_infinity=False),
                         st.sampled_from([v for v in s.get("enum", [0]) if v is not True] or [0]))
    else:
        base = st.booleans()
    if _allows_null(schema):  # null is where nullable positions and enum/const sets disagree most: draw it often
        return st.one_of(base, base, st.none(), _ANY)
    return st.one_of(base, base, base, _ANY)


def _allows_null(schema: dict[str, Any]) -> bool:
    declared = schema.get("type")
    return "anyOf" in schema or isinstance(declared, list) and "null" in declared


@st.composite
def cases(draw: Any) -> tuple[Any, list[bytes]]:
    schema = draw(schemas())
    required = draw(st.booleans())
    ds = dataset({"v": schema}, required=["v"] if required else [])
    record_values = st.fixed_dictionaries({"event_time": st.sampled_from(TIMES) | st.just(WHEN)},
                                          optional={"v": values(schema), "other": _ANY})
    records = draw(st.lists(record_values, min_size=1, max_size=12))
    lines = [dumps(r, ascii_only=draw(st.booleans())).encode("utf-8", "surrogatepass") for r in records]
    return ds, lines


@SETTINGS
@given(case=cases())
def test_columnar_and_record_paths_agree(case: tuple[Any, list[bytes]]) -> None:
    ds, lines = case
    by_record = record_path(ds, lines)
    assert by_record.verdicts(len(lines)) == [reference_verdict(ds, ln) for ln in lines]
    if columnar.plan_for(ds) is None:
        return  # the record path is the only path
    assert_same(columnar_path(ds, lines), by_record)


def test_generated_schemas_mostly_have_a_plan() -> None:
    """The equivalence test above means something only if the columnar path runs for most
    generated schemas."""
    planned = []

    @settings(max_examples=60, deadline=None, database=None)
    @given(schema=schemas())
    def count(schema: dict[str, Any]) -> None:
        planned.append(columnar.plan_for(dataset({"v": schema})) is not None)

    count()
    assert sum(planned) >= len(planned) // 2, f"{sum(planned)} of {len(planned)} generated schemas have a plan"


def test_an_explicit_null_is_never_taken_for_an_absent_field():
    """pyarrow reads ``"f": null`` and a missing ``f`` alike; where null is not allowed the two
    differ, whatever the nesting and however the key is spelt (``"\\u0066"`` is ``"f"``)."""
    ds = dataset({"f": {"type": "string"}, "s": {"type": "object", "properties": {"g": {"type": "integer"}}},
                  "n": {"type": ["string", "null"]}})
    ok = [b'{"event_time":"%s","f":"x","s":{"g":1},"n":null}' % WHEN.encode(), b'{"event_time":"%s"}' % WHEN.encode()]
    bad = [b'{"event_time":"%s","f":null}', b'{"event_time":"%s","\\u0066":null}', b'{"event_time":"%s","s":{"g":null}}',
           b'{"event_time":"%s","s":{"\\u0067":null}}', b'{"event_time":"%s","s":null}']
    lines = ok * 20 + [b % WHEN.encode() for b in bad]
    by_record = record_path(ds, lines)
    assert [r[0] for r in by_record.rejects] == list(range(40, 45))
    assert_same(columnar_path(ds, lines), by_record)


def _block(lines: list[bytes]) -> RawBlock:
    return RawBlock(SourceRef("mem://x", "e"), b"\n".join(lines) + b"\n", first_lineno=0)


CUSTOMS = {  # the nested feed of issues #11 and #13
    "declaration_id": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{10}$"},
    "declarant": {"type": "object", "required": ["name", "country"], "properties": {
        "name": {"type": "string", "minLength": 1}, "country": {"type": "string", "enum": ["DE", "FR", "NL"]},
        "eori": {"type": ["string", "null"], "pattern": "^[A-Z]{2}\\d{8,15}$"}}},
    "items": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["hs_code", "value"], "properties": {
        "hs_code": {"type": "string", "pattern": "^\\d{6,10}$"}, "quantity": {"type": "integer", "minimum": 1},
        "value": {"type": "number", "minimum": 0, "multipleOf": 0.01}}}},
    "cleared": {"type": "boolean"},
    "remarks": {"type": ["string", "null"]},
}


def test_a_nested_feed_is_validated_by_vector_checks():
    ds = dataset(CUSTOMS, required=["declaration_id", "declarant", "items"])
    assert columnar.why_no_plan(ds) is None
    good = {"declaration_id": "DE0123456789", "declarant": {"name": "A", "country": "DE", "eori": None},
            "items": [{"hs_code": "123456", "quantity": 2, "value": 19.99}], "cleared": True, "remarks": None,
            "broker": "not in the schema"}
    bad = [{"items": [{"hs_code": "١٢٣٤٥٦", "value": 1}]}, {"items": [{"hs_code": "123456", "value": 0.001}]},
           {"items": []}, {"declarant": {"name": "A", "country": "XX"}}, {"declaration_id": "DE012345678\n"},
           {"items": [{"hs_code": "123456", "value": 1, "quantity": 0}]}, {"cleared": None}]
    lines = [dumps({"event_time": WHEN, **good}).encode()] * 200 + \
        [dumps({"event_time": WHEN, **good, **b}).encode() for b in bad]
    plan = columnar.plan_for(ds)
    parsed = plan.parse(_block(lines[:200]), lambda *a: None)  # legitimate nulls: no line screens
    assert parsed._pending is None and parsed._table.num_rows == 200
    assert k.count_true(plan.accept(parsed._table)) == 200  # the vector checks accept every valid row
    by_record = record_path(ds, lines)
    assert [r[0] for r in by_record.rejects] == list(range(200, 207))
    assert_same(columnar_path(ds, lines), by_record)


def test_a_null_is_in_no_enum_or_const_unless_listed():
    """A null value is in no enum or const set (the record path decides it, also where the
    schema lists null): an optional field keeps its other fields on the vector checks."""
    ds = dataset({"c": {"type": ["string", "null"], "const": "a"}, "e": {"type": ["integer", "null"], "enum": [1, 2]},
                  "n": {"type": ["string", "null"], "enum": ["a", None]}})
    assert columnar.why_no_plan(ds) is None
    ok = {"c": "a", "e": 1, "n": "a"}
    lines = [line(**{**ok, **change}) for change in ({}, {"c": None}, {"e": None}, {"n": None}, {"c": "b"}, {"e": 3})]
    lines = lines * 3
    by_record = record_path(ds, lines)
    assert by_record.verdicts(6) == [True, False, False, True, False, False]
    assert_same(columnar_path(ds, lines), by_record)


def test_a_negative_zero_lands_as_the_record_path_reads_it():
    """pyarrow reads ``-0`` and ``-0.0`` alike (-0.0); Python's json reads ``-0`` as the integer 0
    (stored 0.0) and ``-0.0`` as -0.0. Rows holding a negative zero, at any depth, are the record
    path's to decide (hypothesis found the flat case in a full test run)."""
    ds = dataset({"v": {"type": "number"}, "s": {"type": "object", "properties": {"w": {"type": "number"}}},
                  "l": {"type": "array", "items": {"type": "number"}}})
    assert columnar.why_no_plan(ds) is None
    texts = ['"v": -0', '"v": -0.0', '"v": 0', '"v": -0e0', '"v": 1.5, "s": {"w": -0}', '"v": 1.5, "l": [2, -0, -0.0]']
    lines = [f'{{"event_time": "{WHEN}", {t}}}'.encode() for t in texts] * 4
    by_record = record_path(ds, lines)
    signs = [math.copysign(1.0, v) for v in by_record.table.column("v").to_pylist()[:4]]
    assert signs == [1.0, -1.0, 1.0, -1.0]  # -0 is the integer 0; -0.0 and -0e0 are floats
    assert_same(columnar_path(ds, lines), by_record)


def _one_byte_changes(text: str) -> list[bytes]:
    return [text[:i].encode() + bytes([c]) + text[i + 1:].encode() for i in range(len(text)) for c in range(256)]


def test_plain_date_times_cast_by_arrow_exactly_when_the_strict_form_matches():
    """``_plain_utc_times`` skips the strict pattern when every value is ``YYYY-MM-DDThh:mm:ssZ``
    and Arrow casts them all: that is sound only if, for strings of that shape, Arrow's cast
    succeeds exactly when the pattern matches."""
    import re

    import pyarrow as pa

    strict = re.compile(columnar.STRICT_DATE_TIME)
    candidates = set(_one_byte_changes("2025-06-01T12:34:56Z") + _one_byte_changes("2024-02-29T23:59:59Z"))
    for year in ("1600", "1700", "1900", "2000", "2024", "2025", "0000", "0004", "2100", "9999"):
        for month in range(14):
            for day in (0, 1, 28, 29, 30, 31, 32):
                candidates.add(f"{year}-{month:02d}-{day:02d}T00:00:00Z".encode())
    for h, m, sec in ((23, 59, 59), (24, 0, 0), (0, 60, 0), (0, 0, 60), (99, 99, 99)):
        candidates.add(f"2025-06-01T{h:02d}:{m:02d}:{sec:02d}Z".encode())
    checked = 0
    for raw in sorted(candidates):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue  # the screens refuse invalid UTF-8 before any column is read
        checked += 1
        fast = columnar._plain_utc_times(pa.chunked_array([pa.array([text])])) is not None
        plain = len(raw) == 20 and raw[10:11] == b"T" and raw.endswith(b"Z")
        assert fast == (plain and bool(strict.search(text))), text
    assert checked > 5000


def test_a_column_of_plain_date_times_with_one_odd_value_gets_the_record_paths_verdicts():
    ds = dataset({"n": {"type": "integer"}})
    plain = [line(n=i, event_time=f"2025-03-{1 + i % 28:02d}T10:00:00Z") for i in range(40)]
    for odd in ("2025-02-29T10:00:00Z", "2024-02-29T10:00:00Z", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
                "0000-06-01T00:00:00Z", "2025-03-05 10:00:00Z", "2025-03-05T10:00:00z", "2025-03-05T10:00:60Z"):
        lines = plain[:20] + [line(n=99, event_time=odd)] + plain[20:]
        by_record = record_path(ds, lines)
        assert_same(columnar_path(ds, lines), by_record)


def test_plain_date_times_with_nulls_are_cast_once_row_for_row():
    """Nulls (a value absent or null) leave a column of plain date-times on Arrow's cast; the times
    it gave are the silver values, row for row, also after rows are refused."""
    import pyarrow as pa

    ds = dataset({"n": {"type": "integer", "minimum": 0}, "seen": {"type": ["string", "null"], "format": "date-time"}})
    lines = [line(n=i, seen=None if i % 3 else f"2025-04-{1 + i % 28:02d}T0{i % 10}:00:00Z") for i in range(30)]
    lines[7] = dumps({"n": 7}).encode()  # no event time: the record path refuses it
    lines[11] = line(n=-1, seen="2025-04-02T00:00:00Z")  # refused by the vector checks, for n
    plan = columnar.plan_for(ds)
    parsed = plan.parse(_block(lines), lambda *a: None)
    assert parsed._pending is None
    assert parsed._table.column("event_time").null_count == 1 and parsed._table.column("seen").null_count == 19
    casts: dict[str, Any] = {}
    ok = plan.accept(parsed._table, casts)
    assert sorted(casts) == ["event_time", "seen"]
    assert [i for i, v in enumerate(ok.to_pylist()) if not v] == [7, 11]
    typed, _ = plan.typed(parsed._table, ok, casts)
    recast, _ = plan.typed(parsed._table, ok)
    assert typed.equals(recast) and typed.column("seen").type == pa.timestamp("us", "UTC")
    by_record = record_path(ds, lines)
    assert [r[0] for r in by_record.rejects] == [7, 11]
    assert_same(columnar_path(ds, lines), by_record)


def test_an_absent_optional_enum_or_const_keeps_the_row_on_the_vector_checks():
    """pyarrow reads an absent optional field as null; where the field may not be null (explicit
    nulls are set aside by the screens), that null is an absence, which every enum or const
    allows: the row stays on the vector checks, at the top level and inside list items alike."""
    ds = dataset({"kind": {"type": "string", "enum": ["a", "b"]}, "one": {"type": "integer", "const": 1},
                  "items": {"type": "array", "items": {"type": "object", "required": ["n"], "properties": {
                      "n": {"type": "integer"}, "origin": {"type": "string", "enum": ["DE", "FR"]}}}}})
    lines = [line(kind="a", one=1, items=[{"n": 1, "origin": "DE"}, {"n": 2}]), line(items=[{"n": 3}]), line()] * 10
    plan = columnar.plan_for(ds)
    parsed = plan.parse(_block(lines), lambda *a: None)
    assert parsed._pending is None and parsed._table.num_rows == 30
    assert k.count_true(plan.accept(parsed._table)) == 30
    bad = [line(kind=None), line(one=None), line(items=[{"n": 1, "origin": None}]), line(kind="c"),
           line(items=[{"n": 1, "origin": "XX"}])]
    by_record = record_path(ds, lines + bad)
    assert [r[0] for r in by_record.rejects] == list(range(30, 35))
    assert_same(columnar_path(ds, lines + bad), by_record)


def test_lines_cut_after_an_inner_brace_are_found_by_the_row_pyarrow_names(monkeypatch):
    """A nested record cut right after an inner ``}`` still looks like one object to the brace
    screens; pyarrow names the row it refused, so each such line costs a read or two, not a
    halving of the block. A nested required field that is missing is read as null and left to
    the record path (it used to fail the read without a row). Verdicts stay the record path's."""
    ds = dataset(CUSTOMS, required=["declaration_id", "declarant", "items"])
    good = [dumps({"event_time": WHEN, "declaration_id": f"DE{i:010d}", "declarant": {"name": "A", "country": "DE"},
                   "items": [{"hs_code": "123456", "value": 1.5}], "cleared": True}).encode() for i in range(300)]
    lines = list(good)
    for at in (20, 90, 150, 260):
        lines[at] = lines[at][:lines[at].index(b"}") + 1]  # cut after the declarant
    lines[120] = dumps({"event_time": WHEN, "declaration_id": "DE0000000120", "declarant": {"name": "A", "country": "DE"},
                        "items": [{"value": 1.5}]}).encode()  # hs_code missing
    reads: list[int] = []
    read_whole = columnar.ColumnarPlan._read_whole
    monkeypatch.setattr(columnar.ColumnarPlan, "_read_whole",
                        lambda self, buf, *args, **kw: reads.append(len(buf)) or read_whole(self, buf, *args, **kw))
    by_columns = columnar_path(ds, lines)
    by_record = record_path(ds, lines)
    assert [r[0] for r in by_record.rejects] == [20, 90, 120, 150, 260]
    assert_same(by_columns, by_record)
    assert len(reads) <= 2 + 2 * 4 + 1, reads  # the block, then each cut line's read and the read before it


def test_culprits_are_found_in_pieces_read_side_by_side(monkeypatch):
    """With enough lines, step 1 reads a piece per core, each piece's rows counted from its own
    first line: culprits in every piece, at a piece's first and last line, land on the right
    lines (a row counted from the wrong origin would quarantine a good line and keep a cut one)."""
    monkeypatch.setattr(columnar, "_CPUS", 3)
    monkeypatch.setattr(columnar, "MIN_PIECE_LINES", 40)
    ds = dataset(CUSTOMS, required=["declaration_id", "declarant", "items"])
    lines = [dumps({"event_time": WHEN, "declaration_id": f"DE{i:010d}", "declarant": {"name": "A", "country": "DE"},
                    "items": [{"hs_code": "123456", "value": 1.5}], "cleared": True}).encode() for i in range(300)]
    cut = [5, 99, 100, 101, 180, 199, 200, 299]
    for at in cut:
        lines[at] = lines[at][:lines[at].index(b"}") + 1]
    pieces: list[int] = []
    culprits = columnar.ColumnarPlan._culprits
    monkeypatch.setattr(columnar.ColumnarPlan, "_culprits",
                        lambda self, view, starts, idx, extra: pieces.append(len(idx)) or culprits(self, view, starts, idx, extra))
    by_columns = columnar_path(ds, lines)
    by_record = record_path(ds, lines)
    assert [r[0] for r in by_record.rejects] == cut
    assert_same(by_columns, by_record)
    assert pieces and max(pieces) >= 3 * 40  # the pieces were taken


def test_rows_the_culprit_search_accepted_are_not_checked_again(monkeypatch):
    """The culprit search runs the vector checks on the rows it keeps; validate takes that
    table as accepted instead of running them a second time (and the verdicts stay the same).
    (Flat: pyarrow 17 casts no struct with nullable fields to one without, so there a nested
    table comes from the strict read, which validate checks.)"""
    ds = dataset({"n": {"type": "integer", "minimum": 0}, "s": {"type": "string", "pattern": "^[a-z]+$"}})
    lines = [line(n=i, s="abc") for i in range(100)]
    for at in (10, 70):  # brace-shaped, yet not JSON: they pass the screens and fail the read
        lines[at] = lines[at][:-1] + b',}'
    plan = columnar.plan_for(ds)
    parsed = plan.parse(_block(lines), parse.decode_rows)
    assert parsed._table is not None and parsed._accepted is parsed._table
    calls: list[int] = []
    accept = columnar.ColumnarPlan.accept
    monkeypatch.setattr(columnar.ColumnarPlan, "accept", lambda self, *a, **kw: calls.append(1) or accept(self, *a, **kw))
    validated = validate.elt_validate(ds, parsed)
    assert calls == [] and validated.lines == [i for i in range(100) if i not in (10, 70)]
    assert [r.line for r in parsed.rejects + validated.rejects] == [10, 70]


def test_an_absent_optional_object_with_a_required_field_beside_lines_found_by_row():
    """Where a screened block's culprits are found by the rows pyarrow names, the table comes from
    a read with every field nullable, cast to the transport's nullability; an absent optional
    object whose field is required leaves a null there (under a null parent) that the cast
    refuses, so the strict read gives the table instead. Verdicts stay the record path's."""
    ds = dataset({"meta": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
                  "n": {"type": "integer"}})
    lines = [line(n=i, meta={"id": i}) if i % 3 else line(n=i) for i in range(60)]
    lines[10] = lines[10][:lines[10].index(b"}") + 1]  # cut after the inner object
    lines[40] = line(n=40, meta={})  # the required id is absent
    by_record = record_path(ds, lines)
    assert [r[0] for r in by_record.rejects] == [10, 40]
    assert_same(columnar_path(ds, lines), by_record)
