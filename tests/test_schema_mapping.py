"""Every schema that loads runs: JSON Schema -> Arrow/Glue types (JSON text where no single type
fits), clear refusals at load, ``$ref`` against the whole schema on every path, defaults only on
request, and values silver cannot hold quarantined with a reason (never a failed object)."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner

from elt_sdk import Dataset
from elt_sdk.cli import main
from elt_sdk.dataset import DatasetError
from elt_sdk.defaults import columnar
from elt_sdk.schema import glue_type
from validation_paths import EVENT_TIME, WHEN, assert_same, columnar_path, dataset, line, record_path, \
    through_pipeline

TS = pa.timestamp("us", tz="UTC")


@pytest.mark.parametrize("prop, arrow, glue", [
    ({"type": "string"}, pa.string(), "string"),
    ({"type": "string", "format": "date-time"}, TS, "timestamp"),
    ({"type": "string", "format": "date"}, pa.date32(), "date"),
    ({"type": "string", "format": "email"}, pa.string(), "string"),
    ({"type": "integer"}, pa.int64(), "bigint"),
    ({"type": "number"}, pa.float64(), "double"),
    ({"type": ["integer", "number"]}, pa.float64(), "double"),
    ({"type": "boolean"}, pa.bool_(), "boolean"),
    ({"type": ["string", "null"]}, pa.string(), "string"),
    ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, pa.int64(), "bigint"),
    ({"allOf": [{"type": "boolean"}]}, pa.bool_(), "boolean"),
    ({"enum": ["a", "b"]}, pa.string(), "string"),
    ({"const": 3}, pa.int64(), "bigint"),
    ({"type": "array", "items": {"type": "integer"}}, pa.list_(pa.int64()), "array<bigint>"),
    ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "number"}}}},
     pa.struct([("a", pa.string()), ("b", pa.list_(pa.float64()))]), "struct<a:string,b:array<double>>"),
    ({"$ref": "#/definitions/money"}, pa.struct([("amount", pa.float64()), ("currency", pa.string())]),
     "struct<amount:double,currency:string>"),
    # no single Arrow type: the value's JSON text in a string column
    ({}, pa.string(), "string"),
    (True, pa.string(), "string"),
    ({"type": "null"}, pa.string(), "string"),
    ({"type": ["string", "integer"]}, pa.string(), "string"),
    ({"type": "object"}, pa.string(), "string"),
    ({"type": "array"}, pa.string(), "string"),
    ({"type": "array", "items": [{"type": "integer"}]}, pa.string(), "string"),
    ({"type": "array", "items": {}}, pa.string(), "string"),
    ({"oneOf": [{"type": "integer"}, {"type": "string"}]}, pa.string(), "string"),
    ({"not": {"type": "integer"}}, pa.string(), "string"),
    ({"enum": [1, "a", None]}, pa.string(), "string"),
])
def test_type_mapping(prop, arrow, glue):
    ds = dataset({"v": prop}, definitions={"money": {"type": "object", "properties": {
        "amount": {"type": "number"}, "currency": {"type": "string"}}}})
    assert ds.bronze_arrow_schema.field("v").type == arrow
    assert glue_type(arrow) == glue


def test_json_text_columns_hold_the_value_compactly_and_null_as_null():
    ds = dataset({"v": {}, "w": {"type": "object"}})
    values = [{"a": [1, 2.5, None], "é": True}, "text", 3, None, [], 1.0]
    lines = [line(v=v, w={"k": i}) for i, v in enumerate(values)] + [line()]
    result = through_pipeline(ds, lines)
    assert result.quarantine == []
    got = dict(zip(result.silver.column("w").to_pylist(), result.silver.column("v").to_pylist()))
    assert got == {'{"k":0}': '{"a":[1,2.5,null],"é":true}', '{"k":1}': '"text"', '{"k":2}': "3", '{"k":3}': None,
                   '{"k":4}': "[]", '{"k":5}': "1.0", None: None}


@pytest.mark.parametrize("prop, message", [
    ({}, "$.v: property has no 'type'"),
    ({"type": ["string", "integer"]}, "$.v: a union of types ['string', 'integer'] has no single Arrow type"),
    ({"type": "object"}, "$.v: an object needs 'properties' to become a struct"),
    ({"type": "array"}, "$.v: an array needs a single 'items' schema"),
    ({"type": "null"}, '$.v: {"type": "null"} holds no value but null'),
    (True, "$.v: the schema true allows any JSON value"),
    ({"type": "array", "items": {"type": "object", "properties": {"x": {}}}}, "$.v[].x: property has no 'type'"),
])
def test_strict_typing_refuses_what_has_no_single_type(prop, message):
    with pytest.raises(DatasetError) as exc:
        dataset({"v": prop}, strict_types=True)
    assert message in str(exc.value) and "strict typing" in str(exc.value)


@pytest.mark.parametrize("schema, message", [
    (True, "json_schema must be an object schema with properties, not the boolean schema true"),
    (False, "not the boolean schema false"),
    ({"type": "object", "required": ["event_time"], "properties": {"event_time": EVENT_TIME, "v": False},
      "x": 1}, None),
    ({"type": "object", "required": ["event_time", "v"], "properties": {"event_time": EVENT_TIME, "v": False}},
     "$.v: required, but its schema (false) allows no value"),
    ({"type": "object", "required": ["event_time"], "properties": {"event_time": EVENT_TIME,
                                                                   "v": {"type": "string", "pattern": "(?i)abc"}}},
     "$.properties.v.pattern: group syntax '(?i)' is not ECMA-262"),
    ({"type": "object", "required": ["event_time"], "properties": {"event_time": EVENT_TIME,
                                                                   "v": {"type": "number", "multipleOf": 0}}},
     "$.properties.v.multipleOf must be a number greater than 0"),
    ({"type": "object", "required": ["event_time"], "properties": {"event_time": EVENT_TIME,
                                                                   "v": {"$ref": "https://example.com/s.json"}}},
     "points outside the dataset's schema (remote schemas are never fetched)"),
    ({"type": "object", "required": ["event_time"], "properties": {"event_time": EVENT_TIME,
                                                                   "v": {"$ref": "#/definitions/nope"}}},
     "resolves to nothing"),
    ({"type": "object", "required": ["event_time"], "properties": {"event_time": {"type": ["string", "null"],
                                                                                  "format": "date-time"}}},
     "event-time field 'event_time' must be"),
])
def test_refusals_at_load_are_clear(schema, message):
    ds = Dataset(name="t", json_schema=schema)
    if message is None:
        ds.check()  # an optional field whose schema is false: allowed, no column
        assert ds.bronze_arrow_schema.names == ["event_time"]
        return
    with pytest.raises(DatasetError) as exc:
        ds.check()
    assert message in str(exc.value), str(exc.value)
    assert "AttributeError" not in str(exc.value)


def test_a_boolean_schema_plugin_is_reported_as_an_invalid_dataset(fake_dist):
    from elt_sdk.plugins import load_registry

    make, _ = fake_dist
    make("fake_boolschema", """
from elt_sdk import Dataset, hookimpl
@hookimpl
def elt_datasets():
    return [Dataset(name="fake_boolschema", json_schema=True)]
""")
    broken = {b.name: b.error for b in load_registry().broken}
    assert broken["fake_boolschema"].startswith("invalid dataset: fake_boolschema: json_schema must be an object")


def test_ref_resolves_against_the_whole_schema_in_every_error_report():
    ds = dataset({"v": {"$ref": "#/definitions/item"}, "w": {"type": "array", "items": {"$ref": "#/definitions/item"}}},
                 definitions={"item": {"type": "object", "required": ["sku"],
                                       "properties": {"sku": {"type": "string", "minLength": 2}}}})
    lines = [line(v={"sku": "ab"}, w=[{"sku": "cd"}]), line(v={"sku": "a"}, w=[{}])]
    result = through_pipeline(ds, lines)
    assert result.silver.num_rows == 1
    [bad] = result.quarantine
    assert bad["errors"] == [
        {"path": "$.v.sku", "message": "$.v.sku must be longer than or equal to 2 characters"},
        {"path": "$.w[0]", "message": "$.w[0] must contain ['sku'] properties"}]
    assert_same(columnar_path(ds, lines), record_path(ds, lines))


def test_defaults_are_annotations_unless_the_dataset_opts_in():
    props = {"n": {"type": "integer", "default": 7}, "s": {"type": "object", "properties": {
        "flag": {"type": "boolean", "default": True}}}}
    lines = [line(), line(n=1, s={}), line(n=2, s={"flag": False})]
    plain = dataset(props)
    assert [(r["n"], r["s"]) for r in record_path(plain, lines).table.to_pylist()] == [
        (None, None), (1, {"flag": None}), (2, {"flag": False})]
    opted = dataset(props, apply_defaults=True)
    by_record = record_path(opted, lines)
    assert [(r["n"], r["s"]) for r in by_record.table.to_pylist()] == [
        (7, None), (1, {"flag": True}), (2, {"flag": False})]
    for ds in (plain, opted):
        assert columnar.plan_for(ds) is not None
        assert_same(columnar_path(ds, lines), record_path(ds, lines))
    assert [r["n"] for r in through_pipeline(opted, lines).silver.to_pylist()] == [7, 1, 2]


@pytest.mark.parametrize("prop, message", [
    ({"type": "integer", "default": "seven"}, "default 'seven' is not valid against its own schema"),
    ({"type": "integer", "default": 2**64}, "does not fit the silver type"),
    ({"type": "string", "format": "date-time", "default": "0000-01-01T00:00:00Z"}, "does not fit the silver type"),
])
def test_a_default_silver_cannot_hold_is_refused_at_load(prop, message):
    with pytest.raises(DatasetError, match=message):
        dataset({"v": prop}, apply_defaults=True)
    dataset({"v": prop})  # without apply_defaults a default is only an annotation


@pytest.mark.parametrize("when", ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_event_time_outside_years_1_to_9999_is_quarantined_and_its_neighbours_written(tmp_path, when):
    """Issue #10, row 1: the record is quarantined at stage validate, naming the event-time field;
    the object does not fail."""
    base = {"record_type": "shipments", "shipment_id": "S", "origin": "A", "destination": "B", "carrier": "UPS",
            "weight_kg": 1.5}
    src = tmp_path / "bronze" / "shipments" / "x.jsonl"
    src.parent.mkdir(parents=True)
    src.write_text("\n".join(json.dumps({**base, "shipment_id": f"S{i}", "event_time": t}) for i, t in
                             enumerate([WHEN, when, "9999-12-31T23:59:59+01:00", "0001-01-01T00:00:00-01:00"])) + "\n")
    res = CliRunner().invoke(main, ["transform", str(tmp_path / "bronze"), "--out", str(tmp_path / "out"), "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["datasets"]["shipments"]["written"] == 3
    silver = pads.dataset(tmp_path / "out" / "silver" / "shipments", format="parquet", partitioning="hive").to_table()
    assert sorted(silver.column("shipment_id").to_pylist()) == ["S0", "S2", "S3"]
    assert {str(d) for d in silver.column("dt").to_pylist()} == {"2025-03-05", "9999-12-31", "0001-01-01"}
    [envelope] = [json.loads(x) for f in (tmp_path / "out" / "quarantine").rglob("*.jsonl") for x in f.read_text().split("\n") if x]
    assert envelope["stage"] == "validate" and envelope["line"] == 2
    assert envelope["errors"] == [{"path": "$.event_time", "message": f"$.event_time: {when!r} is outside the years "
                                   "1-9999 (in UTC) that silver timestamps hold"}]


def test_other_timestamp_and_date_columns_readers_cannot_hold_are_quarantined():
    ds = dataset({"t": {"type": "string", "format": "date-time"}, "d": {"type": "string", "format": "date"},
                  "l": {"type": "array", "items": {"type": "string", "format": "date-time"}}})
    lines = [line(t="9999-12-31T23:59:59Z", d="9999-12-31", l=["0001-01-01T00:00:00Z"]),
             line(t="9999-12-31T23:59:59-00:01"), line(d="0000-12-31"), line(l=[WHEN, "0000-06-01T00:00:00Z"])]
    result = through_pipeline(ds, lines)
    assert [(q["line"], q["errors"][0]["path"]) for q in result.quarantine] == [(2, "$.t"), (3, "$.d"), (4, "$.l[1]")]
    assert result.silver.to_pylist()[0]["d"].isoformat() == "9999-12-31"  # Python can read every row back
    assert_same(columnar_path(ds, lines), record_path(ds, lines))


def test_a_leap_second_is_stored_as_the_last_microsecond_of_its_minute_on_every_path():
    ds = dataset({"t": {"type": "string", "format": "date-time"}})
    lines = [line(t="2016-12-31T23:59:60Z"), line(t="2016-12-31T18:59:60.5-05:00"), line(t="2016-12-31T23:59:60.5Z"),
             line(event_time="2016-12-31T23:59:60Z"), line(t="2016-12-31T12:59:60Z")]
    result = through_pipeline(ds, lines)
    assert [q["line"] for q in result.quarantine] == [5]  # second 60 only at 23:59 UTC
    stored = sorted(str(t) for t in result.silver.column("t").to_pylist() if t is not None)
    assert stored == ["2016-12-31 23:59:59.999999+00:00"] * 3
    assert {str(d) for d in result.silver.column("dt").to_pylist()} == {"2016-12-31", "2025-03-05"}
    assert_same(columnar_path(ds, lines), record_path(ds, lines))


def test_a_generated_schema_with_a_root_ref_defs_and_optional_unions_runs_on_both_paths():
    """The shape pydantic and friends emit: a root $ref, $defs, anyOf [T, null] with default null,
    titles everywhere."""
    schema = {
        "$ref": "#/$defs/Order", "title": "Order",
        "$defs": {
            "Line": {"title": "Line", "type": "object", "required": ["sku"], "properties": {
                "sku": {"title": "Sku", "type": "string", "pattern": "^[A-Z]{3}-\\d{3}$"},
                "qty": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}], "default": None}}},
            "Order": {"title": "Order", "type": "object", "required": ["event_time", "lines"], "properties": {
                "event_time": {"title": "Event Time", "type": "string", "format": "date-time"},
                "lines": {"title": "Lines", "type": "array", "items": {"$ref": "#/$defs/Line"}, "minItems": 1},
                "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None, "title": "Note"}}}}}
    ds = Dataset(name="orders", json_schema=schema)
    ds.check()
    assert ds.bronze_arrow_schema == pa.schema([
        pa.field("event_time", TS, nullable=False),
        pa.field("lines", pa.list_(pa.struct([pa.field("sku", pa.string(), nullable=False), ("qty", pa.int64())])),
                 nullable=False),
        pa.field("note", pa.string())])
    assert columnar.why_no_plan(ds) is None
    lines = [line(lines=[{"sku": "ABC-123", "qty": 2}], note=None), line(lines=[{"sku": "ABC-12٣"}]),
             line(lines=[{"sku": "ABC-123", "qty": 0}]), line(lines=[]), line(lines=[{"sku": "XYZ-999", "qty": None}])]
    by_record = record_path(ds, lines)
    assert [(r[0], [e["path"] for e in r[2]]) for r in by_record.rejects] == [
        (1, ["$.lines[0].sku"]), (2, ["$.lines[0].qty"]), (3, ["$.lines"])]
    assert_same(columnar_path(ds, lines), by_record)


def test_a_key_repeated_where_silver_keeps_it_is_ambiguous_at_any_depth():
    """Record path: a repeated key matters where silver keeps it (a schema property, in a struct,
    in a list of structs, or anywhere inside a value kept whole as JSON text), not elsewhere."""
    from elt_sdk.batch import decode_line
    from elt_sdk.defaults.validate import ambiguity_errors

    ds = Dataset(name="ambiguity", json_schema={
        "type": "object", "required": ["id"],
        "properties": {
            "id": {"type": "string"},
            "ship": {"type": "object", "properties": {"city": {"type": "string"}}},
            "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}},
            "extra": {},  # any JSON: kept whole, as text
        }})

    def paths(line: str) -> list[str]:
        return [e["path"] for e in ambiguity_errors(ds, decode_line(line.encode()))]

    assert paths('{"id": "a", "id": "b"}') == ["$.id"]
    assert paths('{"id": "a", "note": 1, "note": 2}') == []  # silver drops "note"
    assert paths('{"id": "a", "ship": {"city": "x", "city": "y"}}') == ["$.ship.city"]
    assert paths('{"id": "a", "ship": {"zip": 1, "zip": 2}}') == []
    assert paths('{"id": "a", "lines": [{"sku": "1"}, {"sku": "2", "sku": "3"}]}') == ["$.lines[1].sku"]
    assert paths('{"id": "a", "extra": [{"k": {"z": 1, "z": 2}}]}') == ["$.extra[0]"]
    assert paths('{"id": "a", "extra": {"k": 1}, "ship": {"city": "x"}}') == []
    assert ambiguity_errors(ds, ["not", "an", "object"]) == []
