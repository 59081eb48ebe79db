"""``elt-sdk gen --invalid-rate`` on a nested dataset: every schema-invalid line it counts is
quarantined (so a test can count exactly), and the breaks reach nested fields, array items and
the constraints inside them, not only top-level fields."""
from __future__ import annotations

import collections
import json
import os
import random
import subprocess
import sys

import pytest

from elt_sdk import Dataset, hookimpl
from elt_sdk import generate
from elt_sdk.errors import FakeRecordError
from elt_sdk.mutations import break_record
from elt_sdk.plugins import load_registry
from elt_sdk.testing import transform_lines

SCHEMA = {
    "type": "object",
    "required": ["event_time", "order_id", "customer", "lines"],
    "additionalProperties": False,
    "properties": {
        "event_time": {"type": "string", "format": "date-time"},
        "order_id": {"type": "string", "pattern": "^O-[0-9]{6}$"},
        "customer": {"type": "object", "required": ["country"], "additionalProperties": False, "properties": {
            "country": {"type": "string", "enum": ["DE", "FR"]},
            "vip": {"type": "boolean"}}},
        "lines": {"type": "array", "minItems": 1, "maxItems": 4, "items": {
            "type": "object", "required": ["sku", "qty", "price"], "properties": {
                "sku": {"type": "string", "minLength": 3, "maxLength": 12},
                "qty": {"type": "integer", "minimum": 1, "multipleOf": 2},
                "price": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01}}}},
    },
}


class Orders:
    dataset = Dataset(name="nested_orders", json_schema=SCHEMA)

    @hookimpl
    def elt_datasets(self):
        return [self.dataset]

    @hookimpl
    def elt_fake_records(self, dataset, rng, count):
        return [{"event_time": "2025-05-01T12:00:00Z", "order_id": f"O-{rng.randrange(10**6):06d}",
                 "customer": {"country": rng.choice(["DE", "FR"]), "vip": rng.random() < 0.1},
                 "lines": [{"sku": f"SKU{rng.randrange(1000)}", "qty": 2 * rng.randint(1, 9), "price": rng.randint(1, 9999) / 100}
                           for _ in range(rng.randint(1, 4))]}
                for _ in range(count)]


def test_gen_invalid_rate_breaks_nested_constraints_and_counts_exactly():
    reg = load_registry(extra_plugins=[("nested_orders", Orders())], use_entry_points=False)
    ds = reg.dataset("nested_orders")
    stats = generate.GenStats()
    lines = b"".join(generate.generate(reg, ds, 3000, seed=7, invalid_rate=0.3, stats=stats)).splitlines()
    result = transform_lines(reg, ds, lines)
    assert stats.records == 3000 and stats.schema_invalid > 300 and stats.malformed > 300
    assert result.silver.num_rows == stats.valid
    stages = collections.Counter(q["stage"] for q in result.quarantine)
    assert stages == {"parse": stats.malformed, "validate": stats.schema_invalid}
    paths = {e["path"].split("[")[0] for q in result.quarantine if q["stage"] == "validate" for e in q["errors"]}
    assert {"$.customer", "$.customer.country", "$.lines", "$.order_id"} <= paths  # nested, arrays, top level


def test_break_record_draws_every_kind_that_applies_evenly():
    """A kind of break is chosen first, uniformly: with many required fields, a missing field is
    still no likelier than, say, a multipleOf broken inside an array item."""
    rng = random.Random(1)
    record = Orders().elt_fake_records(None, random.Random(2), 1)[0]
    record["customer"]["vip"] = True
    before = json.dumps(record)
    kinds = collections.Counter(break_record(SCHEMA, record, rng)[1].kind for _ in range(3000))
    assert set(kinds) >= {"missing_required", "wrong_type", "pattern", "not_in_enum", "too_short", "too_long",
                          "below_minimum", "not_multiple", "too_few_items", "too_many_items", "unknown_field", "format"}
    assert max(kinds.values()) < 2 * min(kinds.values()), kinds
    assert json.dumps(record) == before  # breaks are made on copies


EVERY_KEYWORD = {  # what the schema-driven default draws: each constraint here once broke its records
    **SCHEMA["properties"],
    "code": {"type": "string", "maxLength": 2},
    "score": {"type": ["null", "integer"], "multipleOf": 7, "exclusiveMinimum": 0, "maximum": 50},
    "where": {"$ref": "#/definitions/point"},
    "contact": {"type": "string", "format": "email"},
    "either": {"oneOf": [{"type": "string", "pattern": "^A[0-9]{3}$"}, {"type": "integer", "minimum": 5}]},
    "step": {"type": "number", "multipleOf": 0.25, "minimum": -3, "maximum": 3},
    "pair": {"type": "array", "items": [{"type": "string", "format": "date"}, {"type": "integer", "maximum": -1}]},
}


class NoFakes:
    """An outsider's plugin that leaves fake records to the SDK's schema-driven default."""

    def __init__(self, name: str, properties: dict, optional: dict | None = None, options: dict | None = None,
                 **schema):
        properties = {"event_time": {"type": "string", "format": "date-time"}, **properties}
        self.dataset = Dataset(name=name, json_schema={
            "type": "object", "required": list(properties), "properties": {**properties, **(optional or {})}, **schema},
            **(options or {}))

    @hookimpl
    def elt_datasets(self):
        return [self.dataset]


def test_the_default_fake_records_are_valid_for_every_keyword_they_draw():
    """``gen`` counts every record of the default hook as valid: patterns, multipleOf (decimal
    too), $ref, nullable unions, formats, oneOf, short maxLength and tuple items are honoured,
    so silver takes them all."""
    plugin = NoFakes("no_fakes", EVERY_KEYWORD, additionalProperties=False,
                     definitions={"point": {"type": "object", "required": ["lat"], "properties": {
                         "lat": {"type": "number", "minimum": -90, "maximum": 90}}}})
    reg = load_registry(extra_plugins=[("no_fakes", plugin)], use_entry_points=False)
    ds = reg.dataset("no_fakes")
    stats = generate.GenStats()
    lines = b"".join(generate.generate(reg, ds, 2000, seed=5, stats=stats)).splitlines()
    result = transform_lines(reg, ds, lines)
    assert stats.valid == 2000 and result.quarantine == []
    assert result.silver.num_rows == 2000
    order_ids = result.silver.column("order_id").to_pylist()
    assert len(set(order_ids)) > 1900 and all(len(o) == 8 and o.startswith("O-") for o in order_ids)
    assert {None, 7, 49} <= set(result.silver.column("score").to_pylist())


def test_fake_records_that_break_the_schema_stop_gen_with_the_reason():
    """A plugin's hook returning a record its schema refuses, and a schema the default cannot
    satisfy (a look-ahead it does not honour), fail with the dataset and the error named, instead
    of counting invalid records as valid."""
    class BadFakes(NoFakes):
        @hookimpl
        def elt_fake_records(self, dataset, rng, count):
            return [{"event_time": "2025-05-01T12:00:00Z", "n": i} for i in range(count)]

    bad = BadFakes("bad_fakes", {"n": {"type": "integer", "maximum": 10}})
    unsatisfiable = NoFakes("lookahead", {"w": {"type": "string", "pattern": "^(?=.*x)[a-c]{3}$"}})
    reg = load_registry(extra_plugins=[("bad_fakes", bad), ("lookahead", unsatisfiable)], use_entry_points=False)
    with pytest.raises(FakeRecordError, match=r"dataset 'bad_fakes': fake record 11 from its elt_fake_records breaks "
                                              r"its schema \(data.n must be smaller than or equal to 10\)"):
        list(generate.generate(reg, reg.dataset("bad_fakes"), 100, seed=1))
    with pytest.raises(FakeRecordError, match=r"dataset 'lookahead': .* cannot satisfy its schema "
                                              r"\(data.w must match pattern .*\); implement elt_fake_records"):
        list(generate.generate(reg, reg.dataset("lookahead"), 10, seed=1))


def test_gen_of_a_plugin_whose_fake_records_break_its_schema_fails_in_one_line(fake_dist):
    make, root = fake_dist
    make("fake_badgen", '''
        from elt_sdk import Dataset, hookimpl
        DATASET = Dataset(name="fake_badgen", json_schema={"type": "object", "required": ["event_time", "n"],
            "properties": {"event_time": {"type": "string", "format": "date-time"}, "n": {"type": "integer", "maximum": 10}}})

        @hookimpl
        def elt_datasets():
            return [DATASET]

        @hookimpl
        def elt_fake_records(dataset, rng, count):
            return [{"event_time": "2025-05-01T12:00:00Z", "n": 99} for _ in range(count)]
    ''')
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "gen", "fake_badgen", "--count", "5"], env=env,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        ("Error: dataset 'fake_badgen': fake record 0 from its elt_fake_records breaks its schema "
         "(data.n must be smaller than or equal to 10); fix the hook so it returns valid records")]


def test_fake_values_keep_decimal_multiples_and_bounds_on_the_first_draw():
    """``fake_value`` itself, without the hook's validation and redraws to hide a slip."""
    from elt_sdk import fake_value

    rng = random.Random(3)
    cents = [fake_value({"type": "number", "multipleOf": 0.01, "minimum": 0, "maximum": 100}, rng) for _ in range(500)]
    assert all(len(repr(v).partition(".")[2]) <= 2 for v in cents) and len(set(cents)) > 100  # 0.3, not 0.30000000000000004
    assert {fake_value({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3}, rng) for _ in range(200)} == {1, 2}
    assert all(0 < fake_value({"type": "number", "exclusiveMinimum": 0, "maximum": 0.005}, rng) <= 0.005 for _ in range(50))
    assert max(fake_value({"type": "integer", "minimum": 0, "maximum": 10**9}, rng) for _ in range(50)) > 10**6
    assert all(len(fake_value({"type": "string", "maxLength": 2.0}, rng)) <= 2 for _ in range(20))


def test_default_fake_records_end_recursive_refs_unite_allof_and_name_an_impossible_schema():
    definitions = {"node": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "minLength": 1},
        "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}}},
        "base": {"type": "object", "required": ["a"], "properties": {"a": {"type": "string", "pattern": "^A[0-9]$"}}}}
    tree = NoFakes("tree", {"root": {"$ref": "#/definitions/node"},
                            "both": {"allOf": [{"$ref": "#/definitions/base"},
                                               {"required": ["b"], "properties": {"b": {"type": "integer", "minimum": 5}}}]}},
                   definitions=definitions)
    impossible = NoFakes("impossible", {"n": {"type": "integer", "minimum": 5, "maximum": 1}})
    reg = load_registry(extra_plugins=[("tree", tree), ("impossible", impossible)], use_entry_points=False)
    ds = reg.dataset("tree")
    stats = generate.GenStats()
    lines = b"".join(generate.generate(reg, ds, 300, seed=4, stats=stats)).splitlines()
    assert stats.valid == 300 and transform_lines(reg, ds, lines).quarantine == []
    records = [json.loads(ln) for ln in lines]
    assert all(r["both"]["a"][0] == "A" and r["both"]["b"] >= 5 for r in records)
    assert any(r["root"].get("children") for r in records)
    with pytest.raises(FakeRecordError, match=r"dataset 'impossible': .* cannot satisfy its schema"):
        list(generate.generate(reg, reg.dataset("impossible"), 5, seed=1))


def test_fake_records_from_a_new_schema_dict_each_time_hold_few_resolvers():
    """A caller drawing from a fresh schema document per record (a dict built in a loop) must not
    make the per-document resolver cache grow with the records."""
    from elt_sdk import fake

    rng = random.Random(5)
    for n in range(3 * fake.MAX_RESOLVERS):
        schema = {"definitions": {"n": {"type": "integer", "minimum": n, "maximum": n}},
                  "type": "object", "required": ["v"], "properties": {"v": {"$ref": "#/definitions/n"}}}
        assert fake.fake_record(schema, rng) == {"v": n}
        assert len(fake._RESOLVERS) <= fake.MAX_RESOLVERS


def test_the_validator_filling_defaults_leaves_fake_records_as_drawn():
    """A dataset whose validator fills in defaults: the fake record keeps its absent field (the
    check runs on a copy), so gen's files still exercise the default."""
    plugin = NoFakes("defaults", {"n": {"type": "integer"}}, optional={"note": {"type": "string", "default": "none"}},
                     options={"apply_defaults": True})
    reg = load_registry(extra_plugins=[("defaults", plugin)], use_entry_points=False)
    ds = reg.dataset("defaults")
    filled = {"event_time": "2025-05-01T12:00:00Z", "n": 1}
    ds.validator(filled)
    assert filled["note"] == "none"  # the validator does fill it in
    lines = b"".join(generate.generate(reg, ds, 400, seed=2)).splitlines()
    assert 20 < sum(b'"note"' not in ln for ln in lines) < 200
