"""``elt-sdk gen --invalid-rate`` on a nested dataset: every schema-invalid line it counts is
quarantined (so a test can count exactly), and the breaks reach nested fields, array items and
the constraints inside them, not only top-level fields."""
from __future__ import annotations

import collections
import json
import random

from elt_sdk import Dataset, hookimpl
from elt_sdk import generate
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
