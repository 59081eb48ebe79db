"""JSON Schema draft-07, keyword by keyword, on every path.

Each case's schema is the property ``v`` of a dataset record; each datum is sent as
``{"event_time": ..., "v": DATA}`` (``MISSING``: without ``v``) through the real pipeline (the
columnar path where the dataset has a plan), the record path, and ``reference_verdict``. The
expected verdicts are the specification's (``validation`` and ``core``, draft-07), except where a
valid value does not fit its silver type: those expect a quarantine whose reason names the field
and the limit (``Limit("...")``).
"""
from __future__ import annotations

from typing import Any

import pytest

from elt_sdk.defaults import columnar
from validation_paths import Raw, WHEN, assert_same, columnar_path, dataset, dumps, record_path, reference_verdict, \
    through_pipeline

MISSING = object()


class Limit:
    """Valid JSON Schema, but beyond the silver type: quarantined with this text in the reason."""

    def __init__(self, text: str):
        self.text = text


ENUM_MIXED = [6, "foo", [], True, {"foo": 12}]

CASES: list[tuple[str, Any, list[tuple[Any, Any]]]] = [
    # -- type (validation 6.1.1) -------------------------------------------------------------
    ("type integer", {"type": "integer"}, [(1, True), (1.0, True), (Raw("1e2"), True), (1.5, False), ("1", False),
                                           (True, False), (None, False), (Raw("-0"), True)]),
    ("type number", {"type": "number"}, [(1, True), (1.5, True), (Raw("-0.0"), True), ("1", False), (False, False)]),
    ("type string", {"type": "string"}, [("", True), ("1", True), (1, False), (None, False), ({}, False)]),
    ("type boolean", {"type": "boolean"}, [(True, True), (False, True), (0, False), ("true", False)]),
    ("type null", {"type": "null"}, [(None, True), (MISSING, True), (0, False), ("", False)]),
    ("type array", {"type": "array"}, [([], True), ([1, "a"], True), ({}, False), ("[]", False)]),
    ("type object", {"type": "object"}, [({}, True), ({"a": [1]}, True), ([], False)]),
    ("type union", {"type": ["integer", "string"]}, [(1, True), ("a", True), (1.5, False), (None, False)]),
    ("type nullable", {"type": ["string", "null"]}, [("a", True), (None, True), (1, False)]),
    # -- enum, const (6.1.2, 6.1.3) ----------------------------------------------------------
    ("enum", {"enum": ENUM_MIXED}, [(6, True), ("foo", True), ([], True), (True, True), ({"foo": 12}, True),
                                    (None, False), ({"foo": False}, False), (7, False), (1, False)]),
    ("enum false is not 0", {"enum": [False]}, [(False, True), (0, False), (0.0, False)]),
    ("enum true is not 1", {"enum": [True]}, [(True, True), (1, False), (1.0, False)]),
    ("enum 1 is 1.0", {"type": "number", "enum": [1, 2.5]}, [(1, True), (1.0, True), (2.5, True), (2, False)]),
    ("enum of strings", {"type": "string", "enum": ["a", "é"]}, [("a", True), ("é", True), ("e", False), ("A", False)]),
    ("const", {"const": 2}, [(2, True), (2.0, True), (5, False), ("2", False), (True, False)]),
    ("const with type", {"type": "string", "const": "x"}, [("x", True), ("y", False)]),
    ("const object", {"const": {"a": 1}}, [({"a": 1}, True), ({"a": 1, "b": 2}, False), ({"a": 2}, False)]),
    # -- numbers (6.2) -----------------------------------------------------------------------
    ("multipleOf integer", {"type": "integer", "multipleOf": 2}, [(10, True), (7, False), (0, True), (-4, True)]),
    ("multipleOf float", {"type": "number", "multipleOf": 1.5}, [(0, True), (4.5, True), (35, False)]),
    ("multipleOf small", {"type": "number", "multipleOf": 0.0001}, [(0.0075, True), (0.00751, False), (19.01, True)]),
    ("multipleOf 0.01", {"type": "number", "multipleOf": 0.01}, [(19.01, True), (0.07, True), (0.075, False)]),
    ("multipleOf float overflow", {"type": "number", "multipleOf": 0.5},
     [(Raw("1e308"), True), (Raw("-1e308"), True), (Raw("1e400"), Limit("beyond float64")), (0.75, False)]),
    ("multipleOf on an integer, non-integer step", {"type": "integer", "multipleOf": 0.5}, [(7, True), (0, True)]),
    ("multipleOf 0.123456789 overflow", {"type": "number", "multipleOf": 0.123456789}, [(Raw("1e308"), False)]),
    ("multipleOf ignores strings", {"multipleOf": 2, "type": ["number", "string"]}, [("foo", True), (3, False)]),
    ("maximum", {"type": "number", "maximum": 3.0}, [(2.6, True), (3.0, True), (3.5, False), (3, True)]),
    ("maximum integer bound", {"type": "integer", "maximum": 300}, [(300, True), (300.0, True), (301, False)]),
    ("exclusiveMaximum", {"type": "number", "exclusiveMaximum": 3.0}, [(2.2, True), (3.0, False), (3, False)]),
    ("minimum", {"type": "number", "minimum": 1.1}, [(2.6, True), (1.1, True), (0.6, False)]),
    ("minimum negative", {"type": "integer", "minimum": -2}, [(-1, True), (-2, True), (-2.0, True), (-3, False)]),
    ("minimum fractional on integer", {"type": "integer", "minimum": 0.5}, [(1, True), (0, False)]),
    ("exclusiveMinimum", {"type": "number", "exclusiveMinimum": 1.1}, [(1.2, True), (1.1, False)]),
    ("bounds ignore strings", {"type": "string", "minimum": 5, "maximum": 1, "exclusiveMinimum": 9,
                               "exclusiveMaximum": 0, "multipleOf": 7}, [("abc", True), ("", True)]),
    ("big integer bound", {"type": "integer", "maximum": 18446744073709551615},
     [(9223372036854775807, True), (Raw("9223372036854775808"), Limit("beyond int64"))]),
    ("number beyond 2^53 against a bound", {"type": "number", "maximum": 9007199254740992},
     [(Raw("9007199254740992"), True), (Raw("9007199254740993"), False)]),
    # -- strings (6.3) -----------------------------------------------------------------------
    ("maxLength", {"type": "string", "maxLength": 2}, [("f", True), ("fo", True), ("foo", False), ("💩💩", True)]),
    ("minLength", {"type": "string", "minLength": 2}, [("foo", True), ("fo", True), ("f", False), ("💩", False)]),
    ("lengths ignore numbers", {"type": "integer", "minLength": 3, "maxLength": 0}, [(1, True), (12345, True)]),
    ("pattern", {"type": "string", "pattern": "^a*$"}, [("aaa", True), ("abc", False), ("", True)]),
    ("pattern is unanchored", {"type": "string", "pattern": "a+"}, [("xxaayy", True), ("xyz", False)]),
    ("pattern ignores non-strings", {"type": ["string", "integer"], "pattern": "^a$"}, [(123, True), ("b", False)]),
    # ECMA-262 (draft-07 section 4.3 / validation 6.3.3)
    ("ECMA $ is end of input", {"type": "string", "pattern": "^abc$"}, [("abc", True), ("abc\n", False)]),
    ("ECMA \\d is ASCII", {"type": "string", "pattern": "^\\d{6,10}$"},
     [("123456", True), ("١٢٣٤٥٦", False), ("１２３４５６", False), ("߀߀߀߀߀߀", False)]),
    ("ECMA \\D", {"type": "string", "pattern": "^\\D$"}, [("߀", True), ("0", False)]),
    ("ECMA \\w is ASCII", {"type": "string", "pattern": "^\\w{2}$"}, [("ab", True), ("中国", False), ("é_", False)]),
    ("ECMA \\W", {"type": "string", "pattern": "^\\W$"}, [("é", True), ("a", False)]),
    ("ECMA \\s", {"type": "string", "pattern": "^\\s$"},
     [(" ", True), ("\t", True), ("\u00a0", True), ("\ufeff", True), ("\u2029", True), ("\u3000", True),
      ("\u200b", False), ("a", False)]),
    ("ECMA \\S", {"type": "string", "pattern": "^\\S$"}, [("\u00a0", False), ("a", True)]),
    ("ECMA \\t", {"type": "string", "pattern": "^\\t$"}, [("\t", True), ("\\t", False)]),
    ("ECMA \\cC", {"type": "string", "pattern": "^\\cC$"}, [("\u0003", True), ("\\cC", False)]),
    ("ECMA \\cc", {"type": "string", "pattern": "^\\cc$"}, [("\u0003", True)]),
    ("ECMA . excludes line terminators", {"type": "string", "pattern": "^.$"},
     [("a", True), ("😀", True), ("\n", False), ("\r", False), ("\u2028", False)]),
    ("ECMA look-ahead", {"type": "string", "pattern": "^(?=.*[0-9])[a-z0-9]+$"}, [("ab1", True), ("abc", False)]),
    ("ECMA back-reference", {"type": "string", "pattern": "^(a|b)\\1$"}, [("aa", True), ("ab", False)]),
    ("ECMA \\u escape", {"type": "string", "pattern": "^\\u00e9+$"}, [("éé", True), ("e", False)]),
    # -- arrays (6.4) ------------------------------------------------------------------------
    ("items", {"type": "array", "items": {"type": "integer"}}, [([1, 2, 3], True), ([1, "x"], False), ([], True)]),
    ("items ignores non-arrays", {"type": ["array", "object"], "items": {"type": "integer"}}, [({"a": "x"}, True)]),
    ("items tuple", {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]},
     [([1, "a"], True), (["a", 1], False), ([1], True), ([1, "a", None], True)]),
    ("additionalItems false", {"type": "array", "items": [{}], "additionalItems": False}, [([1], True), ([1, 2], False)]),
    ("additionalItems ignored with one items schema", {"type": "array", "items": {"type": "integer"},
                                                       "additionalItems": False}, [([1, 2, 3], True)]),
    ("maxItems", {"type": "array", "items": {"type": "integer"}, "maxItems": 2}, [([1], True), ([1, 2, 3], False)]),
    ("minItems", {"type": "array", "items": {"type": "integer"}, "minItems": 1}, [([1], True), ([], False)]),
    ("uniqueItems", {"type": "array", "uniqueItems": True},
     [([1, 2], True), ([1, 1], False), ([1, True], True), ([0, False], True), ([{"a": 1}, {"a": 1}], False),
      ([1.0, 1], False)]),
    ("contains", {"type": "array", "contains": {"minimum": 5}}, [([3, 5], True), ([2, 3], False), ([], False)]),
    ("array of objects", {"type": "array", "minItems": 1,
                          "items": {"type": "object", "required": ["sku"], "properties": {
                              "sku": {"type": "string", "pattern": "^[A-Z]{3}$"}, "qty": {"type": "integer"}}}},
     [([{"sku": "ABC", "qty": 1}], True), ([{"sku": "abc"}], False), ([{"qty": 1}], False), ([], False)]),
    # -- objects (6.5) -----------------------------------------------------------------------
    ("maxProperties", {"type": "object", "maxProperties": 1}, [({"a": 1}, True), ({"a": 1, "b": 2}, False)]),
    ("minProperties", {"type": "object", "minProperties": 1}, [({"a": 1}, True), ({}, False)]),
    ("required", {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
     [({"a": 1}, True), ({}, False), ({"a": None}, False)]),
    ("properties", {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
     [({"a": 1, "b": "x"}, True), ({"a": "x"}, False), ({"c": []}, True), ({}, True)]),
    ("patternProperties", {"type": "object", "patternProperties": {"^f\\d": {"type": "integer"}}},
     [({"f1": 1}, True), ({"f1": "x"}, False), ({"f١": "x"}, True)]),
    ("additionalProperties false", {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
     [({"a": 1}, True), ({"b": 1}, False)]),
    ("additionalProperties schema", {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "boolean"}},
     [({"a": 1, "b": True}, True), ({"b": 1}, False)]),
    ("dependencies", {"type": "object", "dependencies": {"bar": ["foo"]}},
     [({"bar": 1, "foo": 2}, True), ({"bar": 1}, False), ({"foo": 1}, True)]),
    ("propertyNames", {"type": "object", "propertyNames": {"maxLength": 3}}, [({"abc": 1}, True), ({"abcd": 1}, False)]),
    # -- combinators (6.6, 6.7) --------------------------------------------------------------
    ("allOf", {"allOf": [{"type": "integer"}, {"minimum": 2}]}, [(3, True), (1, False), ("a", False)]),
    ("anyOf", {"anyOf": [{"type": "integer"}, {"minimum": 2}]}, [(1, True), (2.5, True), (1.5, False)]),
    ("oneOf", {"oneOf": [{"type": "integer"}, {"minimum": 2}]}, [(1, True), (2.5, True), (3, False), (1.5, False)]),
    ("not", {"not": {"type": "integer"}}, [("a", True), (1, False)]),
    ("if then else", {"if": {"exclusiveMaximum": 0}, "then": {"minimum": -10}, "else": {"multipleOf": 2}},
     [(-1, True), (-100, False), (4, True), (3, False)]),
    ("nullable union as anyOf", {"anyOf": [{"type": "string", "maxLength": 3}, {"type": "null"}]},
     [("abc", True), (None, True), ("abcd", False), (1, False)]),
    # -- $ref, definitions (core 8) ----------------------------------------------------------
    ("$ref to definitions", {"$ref": "#/definitions/pos"}, [(1, True), (-1, False), ("a", False)]),
    ("$ref inside an object", {"type": "object", "properties": {"p": {"$ref": "#/definitions/pos"}}},
     [({"p": 3}, True), ({"p": -3}, False)]),
    ("$ref siblings ignored", {"$ref": "#/definitions/pos", "maximum": 0}, [(5, True)]),
    ("recursive $ref", {"$ref": "#/definitions/tree"},
     [({"value": 1, "children": [{"value": 2}]}, True), ({"value": 1, "children": [{"value": "x"}]}, False)]),
    # -- boolean schemas (core 4.3.2) --------------------------------------------------------
    ("true", True, [(1, True), ("a", True), (None, True), ({"a": [1]}, True)]),
    ("false", False, [(MISSING, True), (1, False), (None, False)]),
    # -- format (7.3) ------------------------------------------------------------------------
    ("date-time", {"type": "string", "format": "date-time"},
     [("1963-06-19T08:30:06.283185Z", True), ("1963-06-19T08:30:06Z", True), ("1937-01-01T12:00:27.87+00:20", True),
      ("1990-12-31T15:59:50.123-08:00", True), ("1963-06-19t08:30:06.283185z", True),
      ("1998-12-31T23:59:60Z", True), ("1998-12-31T15:59:60.123-08:00", True), ("1998-12-31T23:59:61Z", False),
      ("1998-12-31T23:58:60Z", False), ("1998-12-31T22:59:60Z", False), ("1990-02-31T15:59:59.123-08:00", False),
      ("1990-12-31T15:59:59-24:00", False), ("1963-06-19T08:30:06.28123+01:00Z", False),
      ("06/19/1963 08:30:06 PST", False), ("2013-350T01:01:01", False), ("1963-6-19T08:30:06.283185Z", False),
      ("1963-06-1৪T00:00:00Z", False), ("1963-06-11T0৪:00:00Z", False), ("2025-03-05T10:00:00", False),
      ("2025-03-05T10:00:00.123456789Z", True), (12, False),
      ("0000-01-01T00:00:00Z", Limit("outside the years 1-9999")),
      ("0001-01-01T00:00:00+01:00", Limit("outside the years 1-9999")),
      ("9999-12-31T23:59:59-01:00", Limit("outside the years 1-9999"))]),
    ("date", {"type": "string", "format": "date"},
     [("1963-06-19", True), ("2020-02-29", True), ("2021-02-29", False), ("2000-02-29", True), ("1900-02-29", False),
      ("2020-13-01", False), ("2020-1-01", False), ("1963-06-1৪", False), ("0000-01-01", Limit("outside the years"))]),
    ("time", {"type": "string", "format": "time"},
     [("08:30:06Z", True), ("23:59:60Z", True), ("22:59:60Z", False), ("01:29:60+01:30", True),
      ("08:30:06", False), ("8:30:06Z", False), ("08:30:06.123456789-05:00", True), ("0৪:00:00Z", False)]),
    ("regex", {"type": "string", "format": "regex"}, [("^a[bc]+$", True), ("^\\S(|(.|\\n)*\\S)\\Z", False),
                                                      ("(?i)a", False), ("a{,3}", False)]),
    ("ipv4", {"type": "string", "format": "ipv4"}, [("192.168.0.1", True), ("256.1.1.1", False), ("1.2.3.４", False)]),
    ("email", {"type": "string", "format": "email"}, [("joe@example.com", True), ("joe", False)]),
    ("unknown formats are annotations", {"type": "string", "format": "uuid-ish"}, [("anything", True)]),
    # -- annotations -------------------------------------------------------------------------
    ("default is not inserted", {"type": "integer", "default": 5}, [(MISSING, True), (1, True)]),
    ("default of another type is only an annotation", {"type": "integer", "default": "x"}, [(MISSING, True)]),
    ("title, description, examples", {"type": "string", "title": "t", "description": "d", "examples": ["x"],
                                      "$comment": "c", "readOnly": True}, [("a", True), (1, False)]),
    # -- silver limits -----------------------------------------------------------------------
    ("integers beyond int64", {"type": "integer"},
     [(9223372036854775807, True), (-9223372036854775808, True), (Raw("9223372036854775808"), Limit("beyond int64")),
      (Raw("-9223372036854775809"), Limit("beyond int64")), (Raw("1e400"), Limit("beyond int64")),
      (Raw("1e19"), Limit("beyond int64"))]),
    ("numbers beyond float64", {"type": "number"},
     [(Raw("1e400"), Limit("beyond float64")), (Raw("-1e400"), Limit("beyond float64")),
      (Raw("1" + "0" * 400), Limit("beyond float64")), (Raw("18446744073709551616"), True), (Raw("1e-400"), True)]),
    ("nested integer beyond int64", {"type": "object", "properties": {"n": {"type": "array", "items": {"type": "integer"}}}},
     [({"n": [1, Raw("9223372036854775808")]}, Limit("$.v.n[1]: 9223372036854775808 is beyond int64"))]),
    ("lone surrogates", {"type": "string"}, [("\ud800", Limit("lone surrogate")), ("\ud83d\ude00", True)]),
    ("lone surrogate in JSON text", {}, [(["\udfff"], Limit("lone surrogate")), (["ok"], True)]),
]

DEFINITIONS = {"pos": {"type": "integer", "minimum": 0},
               "tree": {"type": "object", "properties": {"value": {"type": "integer"},
                                                         "children": {"type": "array", "items": {"$ref": "#/definitions/tree"}}}}}


def _case_lines(data: list[tuple[Any, Any]]) -> list[bytes]:
    out = []
    for value, _ in data:
        record = {"event_time": WHEN} if value is MISSING else {"event_time": WHEN, "v": value}
        out.append(dumps(record).encode("utf-8", "surrogatepass"))
    return out


@pytest.mark.parametrize("name, schema, data", CASES, ids=[c[0] for c in CASES])
def test_keyword(name: str, schema: Any, data: list[tuple[Any, Any]]) -> None:
    ds = dataset({"v": schema}, definitions=DEFINITIONS)
    lines = _case_lines(data)
    result = through_pipeline(ds, lines)
    quarantined = {q["line"] - 1: q for q in result.quarantine}
    for i, (value, expected) in enumerate(data):
        what = f"{name}: {value!r}"
        if expected is True:
            assert i not in quarantined, f"{what} quarantined: {quarantined.get(i)}"
        else:
            assert i in quarantined, f"{what} reached silver"
            assert quarantined[i]["stage"] == "validate", quarantined[i]
            if isinstance(expected, Limit):
                [error] = quarantined[i]["errors"]
                assert expected.text in error["message"] and error["path"].startswith("$.v"), error
        assert reference_verdict(ds, lines[i]) is (expected is True), what
    assert result.silver.num_rows == sum(expected is True for _, expected in data)
    by_record = record_path(ds, lines)
    assert [q for q in sorted(quarantined)] == [r[0] for r in by_record.rejects]
    if columnar.plan_for(ds) is not None:
        assert_same(columnar_path(ds, lines), by_record)


def test_the_keyword_table_is_exercised_on_the_columnar_path() -> None:
    """Most typed cases above run on the columnar path too (else the comparison means little)."""
    planned = [name for name, schema, _ in CASES if columnar.plan_for(dataset({"v": schema}, definitions=DEFINITIONS))]
    assert len(planned) >= 40, planned
