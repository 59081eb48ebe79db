"""The testing kit's strategies, on a schema that uses every keyword the validator enforces at
several depths: valid records pass an ECMA-aware reference validator; each break makes the record
invalid and breaks nothing but the constraint it names; every kind of break is drawn; a field's
strategy can be overridden; schemas no strategy can draw from get a clear error."""
from __future__ import annotations

import copy
import json
import random
import re
from typing import Any

import fastjsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from elt_sdk import ecma
from elt_sdk.dataset import Dataset
from elt_sdk.mutations import KINDS, Break, apply, breaks
from elt_sdk.testing import StrategyError, broken_records, invalid_records, valid_records
from elt_sdk.testing.strategies import as_line

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event_time", "code", "name", "count", "price", "status", "parcel", "kind", "tags"],
    "additionalProperties": False,
    "definitions": {"money": {"type": "number", "minimum": 0, "multipleOf": 0.01}},
    "properties": {
        "event_time": {"type": "string", "format": "date-time"},
        "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{4}\\w$"},
        "dotted": {"type": "string", "pattern": "^a.c$"},
        "boundary": {"type": "string", "pattern": "\\bab"},
        "name": {"type": "string", "minLength": 2, "maxLength": 5},
        "nick": {"type": ["string", "null"], "maxLength": 3},
        "count": {"type": "integer", "minimum": 5, "exclusiveMaximum": 1000, "multipleOf": 5},
        "halves": {"type": "integer", "multipleOf": 2.5, "maximum": 100},
        "ratio": {"type": "number", "exclusiveMinimum": -1.5, "maximum": 2.25},
        "price": {"$ref": "#/definitions/money"},
        "status": {"enum": ["new", "done", 3]},
        "kind": {"const": "parcel"},
        "day": {"type": "string", "format": "date"},
        "at": {"type": "string", "format": "time"},
        "mail": {"type": "string", "format": "email"},
        "ip4": {"type": "string", "format": "ipv4"},
        "ip6": {"type": "string", "format": "ipv6"},
        "host": {"type": "string", "format": "hostname"},
        "link": {"type": "string", "format": "uri"},
        "tags": {"type": "array", "uniqueItems": True, "items": {"type": "integer", "minimum": 0, "maximum": 9}},
        "parcel": {
            "type": "object",
            "required": ["lines", "insured"],
            "additionalProperties": False,
            "properties": {
                "insured": {"type": "boolean"},
                "note": {"type": ["string", "null"], "maxLength": 8},
                "lines": {
                    "type": "array", "minItems": 1, "maxItems": 3,
                    "items": {
                        "type": "object",
                        "required": ["sku", "qty"],
                        "properties": {
                            "sku": {"type": "string", "pattern": "^SKU-\\d{3}$"},
                            "qty": {"type": "integer", "minimum": 1, "maximum": 99},
                            "mass": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.001},
                            "cost": {"$ref": "#/definitions/money"},
                        },
                    },
                },
            },
        },
    },
}
DS = Dataset(name="catalogue", json_schema=SCHEMA)


def _ecma(node: Any) -> Any:
    """The schema with ECMA-262 patterns in Python syntax (the reference validator's view)."""
    if isinstance(node, list):
        return [_ecma(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "pattern":
            out[key] = ecma.to_python(value)
        elif key in ("properties", "definitions"):
            out[key] = {n: _ecma(v) for n, v in value.items()}
        elif key in ("enum", "const"):
            out[key] = value
        else:
            out[key] = _ecma(value)
    return out


def reference(schema: dict[str, Any]):
    validate = fastjsonschema.compile(_ecma(schema), use_default=False)

    def ok(record: Any) -> bool:
        try:
            validate(record)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return ok


VALID = reference(SCHEMA)
RELAX = {"missing_required": (), "unknown_field": ("additionalProperties",), "wrong_type": None,
         "not_in_enum": ("enum", "const"), "too_short": ("minLength",), "too_long": ("maxLength",),
         "pattern": ("pattern",), "format": ("format",), "below_minimum": ("minimum", "exclusiveMinimum"),
         "above_maximum": ("maximum", "exclusiveMaximum"), "not_multiple": ("multipleOf",),
         "too_few_items": ("minItems",), "too_many_items": ("maxItems",), "duplicate_items": ("uniqueItems",)}


def relaxed(root: dict[str, Any], brk: Break) -> dict[str, Any]:
    """``root`` without the constraint ``brk`` broke, at the place it broke it (only there: the
    fragment is found by identity)."""
    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {k: (v if k in ("enum", "const") else walk(v)) for k, v in node.items()}
        if node is brk.schema:
            for key in RELAX[brk.kind] or list(out):  # a wrong type: the keywords for that type no longer apply
                out.pop(key, None)
            if brk.kind == "missing_required":
                out["required"] = [n for n in node["required"] if n != brk.path[-1]]
        return out
    return walk(root)


@SETTINGS
@given(valid_records(DS))
def test_valid_records_satisfy_every_keyword_at_every_depth(record):
    assert VALID(record), record
    line = as_line(record)  # strict JSON: allow_nan=False, and UTF-8 (no lone surrogate)
    assert json.loads(line.decode("utf-8")) == record


def test_valid_records_cover_the_schema():
    """Nulls and values in nullable fields, absent and present optional fields, both branches of
    the enum's types, arrays at their minimum and above, extra fields where allowed."""
    seen: dict[str, set] = {"nick": set(), "status": set(), "lines": set(), "line_extra": set(), "count": set()}

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_records(DS))
    def collect(record):
        seen["nick"].add("absent" if "nick" not in record else type(record["nick"]).__name__)
        seen["status"].add(type(record["status"]).__name__)
        seen["lines"].add(min(len(record["parcel"]["lines"]), 2))
        seen["line_extra"].add(any(set(line) - {"sku", "qty", "mass", "cost"} for line in record["parcel"]["lines"]))
        seen["count"].add(record["count"] % 5 == 0 and 5 <= record["count"] < 1000)

    collect()
    assert seen["nick"] == {"absent", "NoneType", "str"}
    assert seen["status"] == {"str", "int"}
    assert seen["lines"] == {1, 2}
    assert seen["line_extra"] == {True, False}  # items allow fields they do not name
    assert seen["count"] == {True}


@SETTINGS
@given(broken_records(DS))
def test_each_break_makes_the_record_invalid_and_breaks_nothing_else(pair):
    record, brk = pair
    assert not VALID(record), f"{brk.kind} at {brk.where} left the record valid: {record}"
    assert reference(relaxed(SCHEMA, brk))(record), f"{brk.kind} at {brk.where} broke more than that: {record}"


def test_every_kind_of_break_is_drawn_and_nested_places_too():
    kinds, places = set(), set()

    @settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(broken_records(DS))
    def collect(pair):
        kinds.add(pair[1].kind)
        places.add(pair[1].group[0])

    collect()
    assert kinds == set(KINDS)
    assert {"$.parcel.lines[].sku", "$.parcel.lines[].mass", "$.parcel.lines", "$.price"} <= places


def test_pattern_breaks_use_lookalikes_python_would_accept():
    """``\\d`` is ``[0-9]`` in ECMA-262: the break of a ``\\d`` pattern is mostly the same value
    in other digits, which Python's ``re`` (and so a non-ECMA validator) still matches."""
    record = {"event_time": "2025-01-01T00:00:00Z", "code": "AB-1234x", "name": "Al", "count": 5, "price": 1.0, "status": "new",
              "kind": "parcel", "tags": [], "parcel": {"insured": True, "lines": [{"sku": "SKU-123", "qty": 1}]}}
    assert VALID(record)
    sku = next(b for b in breaks(SCHEMA, record) if b.kind == "pattern" and b.where == "$.parcel.lines[0].sku")
    values = [apply(SCHEMA, record, sku, random.Random(seed))["parcel"]["lines"][0]["sku"] for seed in range(20)]
    lookalikes = [v for v in values if re.fullmatch(r"SKU-\d{3}", v)]
    assert len(lookalikes) >= 10 and all(not v.isascii() for v in lookalikes)


def test_a_field_strategy_overrides_one_field_at_any_depth():
    overrides = {"parcel.lines[].sku": st.just("SKU-007"), "name": st.just("Zoe")}

    @settings(max_examples=60, deadline=None)
    @given(valid_records(DS, overrides), invalid_records(DS, overrides))
    def check(valid, invalid):
        assert VALID(valid)
        assert {line["sku"] for line in valid["parcel"]["lines"]} == {"SKU-007"}
        assert valid["name"] == "Zoe"
        assert not VALID(invalid)

    check()


def test_a_field_strategy_for_no_field_is_an_error_listing_the_fields():
    with pytest.raises(StrategyError, match=r"names no field of the schema: parcel\.lines\.sku; fields: .*parcel\.lines\[\]\.sku"):
        valid_records(DS, {"parcel.lines.sku": st.just("x")})


@pytest.mark.parametrize("prop, message", [
    ({"type": "integer", "minimum": 5, "maximum": 4}, r"\$\.v: no integer .* field_strategies=\{'v': \.\.\.\}"),
    ({"type": "string", "pattern": "(?i)abc"}, r"\$\.v: pattern '\(\?i\)abc' is not ECMA-262"),
    ({"type": "array", "items": {"type": "integer"}, "minItems": 3, "maxItems": 2}, r"\$\.v: maxItems 2 < minItems 3"),
    ({"$ref": "#/definitions/missing"}, r"\$\.v: \$ref '#/definitions/missing' does not resolve"),
])
def test_a_schema_no_strategy_can_draw_from_gets_a_clear_error(prop, message):
    ds = Dataset(name="odd", json_schema={"type": "object", "required": ["event_time", "v"],
                                         "properties": {"event_time": {"type": "string", "format": "date-time"}, "v": prop}})
    with pytest.raises(StrategyError, match=message):
        valid_records(ds)


def test_keywords_outside_the_constructed_set_are_honoured_by_filtering():
    ds = Dataset(name="mixed", json_schema={
        "type": "object", "required": ["event_time", "v", "w"],
        "properties": {"event_time": {"type": "string", "format": "date-time"},
                       "v": {"anyOf": [{"type": "integer", "maximum": 3}, {"type": "string", "pattern": "^x+$"}]},
                       "w": {"type": "object", "properties": {"a": {"type": "integer"}}, "minProperties": 2}}})
    seen = set()

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(valid_records(ds))
    def check(record):
        v = record["v"]
        assert (isinstance(v, int) and v <= 3) or (isinstance(v, str) and re.fullmatch("x+", v))
        assert len(record["w"]) >= 2
        seen.add(type(v).__name__)

    check()
    assert seen == {"int", "str"}


def test_mutations_leave_the_record_they_break_untouched():
    record = {"event_time": "2025-01-01T00:00:00Z", "code": "AB-1234x", "name": "Al", "count": 5, "price": 1.0, "status": "new",
              "kind": "parcel", "tags": [], "parcel": {"insured": True, "lines": [{"sku": "SKU-123", "qty": 1}]}}
    before = copy.deepcopy(record)
    for brk in breaks(SCHEMA, record):
        apply(SCHEMA, record, brk, random.Random(1))
    assert record == before
