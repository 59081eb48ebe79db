"""Hypothesis strategies from a dataset's JSON Schema.

``valid_records`` draws records the schema accepts; ``invalid_records`` mutates a valid record so
the schema must reject it (a required field missing, a wrong type, a value out of range, an
unknown enum value); ``invalid_lines`` adds lines no JSON parser accepts. ``lines`` mixes them.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from hypothesis import strategies as st

from elt_sdk.dataset import Dataset
from elt_sdk.formats import GZIP_MAGIC
from elt_sdk.schema import json_types

INT64 = (-(2**63), 2**63 - 1)
_TZ = st.sampled_from([timezone.utc, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)),
                       timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])


@st.composite
def date_times(draw) -> str:
    """RFC 3339 timestamps in the forms real feeds send: Z or offsets, 0-9 fraction digits."""
    moment = draw(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=_TZ))
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    digits = draw(st.sampled_from([0, 0, 3, 6, 9]))
    frac = "" if not digits else "." + f"{moment.microsecond:06d}{draw(st.integers(0, 999)):03d}"[:digits]
    off = moment.utcoffset()
    if off == timedelta(0) and draw(st.booleans()):
        zone = draw(st.sampled_from(["Z", "z"]))
    else:
        minutes = int(off.total_seconds() // 60)
        sign = "+" if minutes >= 0 else "-"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return base + frac + zone


def value_strategy(prop: Mapping[str, Any]) -> st.SearchStrategy:
    if "const" in prop:
        return st.just(prop["const"])
    if "enum" in prop:
        return st.sampled_from(list(prop["enum"]))
    types, nullable = json_types(prop)
    kind = types[0]
    if kind == "string":
        fmt = prop.get("format")
        if fmt == "date-time":
            base = date_times()
        elif fmt == "date":
            base = st.dates().map(lambda d: d.isoformat())
        else:
            base = st.text(min_size=prop.get("minLength", 0), max_size=prop.get("maxLength", 24))
    elif kind == "integer":
        lo = max(INT64[0], prop.get("minimum", INT64[0]), prop.get("exclusiveMinimum", INT64[0] - 1) + 1)
        hi = min(INT64[1], prop.get("maximum", INT64[1]), prop.get("exclusiveMaximum", INT64[1] + 1) - 1)
        base = st.integers(lo, hi)
    elif kind == "number":
        base = st.floats(min_value=prop.get("minimum", prop.get("exclusiveMinimum")),
                         max_value=prop.get("maximum", prop.get("exclusiveMaximum")),
                         exclude_min="exclusiveMinimum" in prop, exclude_max="exclusiveMaximum" in prop,
                         allow_nan=False, allow_infinity=False)
    elif kind == "boolean":
        base = st.booleans()
    elif kind == "array":
        base = st.lists(value_strategy(prop["items"]), min_size=prop.get("minItems", 0), max_size=prop.get("maxItems", 4))
    elif kind == "object":
        base = object_strategy(prop)
    else:  # pragma: no cover - schema.py refuses other types first
        raise ValueError(f"no strategy for type {kind!r}")
    return st.one_of(st.none(), base) if nullable else base


def object_strategy(schema: Mapping[str, Any]) -> st.SearchStrategy:
    props = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {k: value_strategy(p) for k, p in props.items() if k in required},
        optional={k: value_strategy(p) for k, p in props.items() if k not in required},
    )


_JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
_JSON_VALUES = st.recursive(_JSON_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                   st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                            max_leaves=6)


def valid_records(dataset: Dataset) -> st.SearchStrategy[dict[str, Any]]:
    """Records ``dataset.json_schema`` accepts: where the schema allows fields it does not name,
    some records carry a few, of any JSON type (feeds do)."""
    records = object_strategy(dataset.json_schema)
    if dataset.json_schema.get("additionalProperties", True) is False:
        return records
    names = set(dataset.json_schema.get("properties", {}))
    extra = st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda n: n not in names), _JSON_VALUES, max_size=3)
    return st.one_of(records, st.builds(lambda r, e: {**r, **e}, records, extra))


def _wrong_type_value(prop: Mapping[str, Any]) -> st.SearchStrategy:
    types, nullable = json_types(prop)
    candidates = {
        "string": st.one_of(st.integers(0, 10**6), st.booleans(), st.just({"nested": "object"}), st.lists(st.text(), max_size=2)),
        "integer": st.one_of(st.floats(0.5, 1e6).filter(lambda f: not f.is_integer()), st.text(min_size=1).map(str), st.booleans()),
        "number": st.one_of(st.floats(-1e6, 1e6).map(str), st.booleans()),
        "boolean": st.sampled_from(["true", 1, 0]),
        "array": st.text(),
        "object": st.integers(),
    }[types[0]]
    return candidates if nullable else st.one_of(candidates, st.none())


@st.composite
def invalid_records(draw, dataset: Dataset) -> dict[str, Any]:
    """A valid record mutated in one way the schema must refuse."""
    record = dict(draw(valid_records(dataset)))
    schema = dataset.json_schema
    props = schema.get("properties", {})
    options = ["missing", "wrong_type"]
    ranged = [k for k, p in props.items() if any(b in p for b in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength"))]
    enums = [k for k, p in props.items() if "enum" in p or "const" in p]
    if ranged:
        options.append("out_of_range")
    if enums:
        options.append("unknown_enum")
    how = draw(st.sampled_from(options))
    if how == "missing":
        field = draw(st.sampled_from(sorted(schema.get("required", ()))))
        record.pop(field, None)
    elif how == "wrong_type":
        field = draw(st.sampled_from(sorted(props)))
        record[field] = draw(_wrong_type_value(props[field]))
    elif how == "out_of_range":
        field = draw(st.sampled_from(sorted(ranged)))
        p = props[field]
        if "minLength" in p and p["minLength"] > 0:
            record[field] = ""
        elif "minimum" in p or "exclusiveMinimum" in p:
            lo = p.get("minimum", p.get("exclusiveMinimum"))
            record[field] = lo - draw(st.integers(1, 1000)) if "minimum" in p else lo - draw(st.integers(0, 1000))
        else:
            hi = p.get("maximum", p.get("exclusiveMaximum"))
            record[field] = hi + draw(st.integers(1, 1000)) if "maximum" in p else hi + draw(st.integers(0, 1000))
    else:
        field = draw(st.sampled_from(sorted(enums)))
        allowed = props[field].get("enum", [props[field].get("const")])
        record[field] = draw(st.text(min_size=1).filter(lambda s: s not in allowed))
    return record


@st.composite
def invalid_lines(draw, dataset: Dataset) -> bytes:
    """Lines no strict JSON parser accepts: truncated objects, non-UTF-8 bytes, NaN, garbage."""
    line = json.dumps(draw(valid_records(dataset))).encode()
    how = draw(st.sampled_from(["truncated", "not_utf8", "nan", "garbage"]))
    if how == "truncated":
        return line[: draw(st.integers(1, len(line) - 1))]
    if how == "not_utf8":
        at = draw(st.integers(1, len(line) - 1))
        return line[:at] + b"\xff" + line[at:]
    if how == "nan":
        return line[:-1] + b', "extra_nan": NaN}'
    # garbage that could pass for something else is left out: JSON openers, a BOM, a digit, and
    # gzip's magic (an object that starts with it is a gzip object, and a corrupt one fails whole)
    return draw(st.binary(min_size=1, max_size=40).filter(
        lambda b: b"\n" not in b and b"\r" not in b and b.strip() and not b.strip()[:1].isdigit()
        and not b.strip().startswith((b"{", b"[", b'"', b"\xef\xbb\xbf", GZIP_MAGIC))))


def lines(dataset: Dataset, min_size: int = 1, max_size: int = 30) -> st.SearchStrategy[list[bytes]]:
    """A mix of valid records, invalid records and malformed lines, as JSONL lines."""
    as_line = lambda r: json.dumps(r, ensure_ascii=False).encode("utf-8")  # noqa: E731
    one = st.one_of(valid_records(dataset).map(as_line), valid_records(dataset).map(as_line),
                    invalid_records(dataset).map(as_line), invalid_lines(dataset))
    return st.lists(one, min_size=min_size, max_size=max_size)
