"""The hook contract in use: wrappers over every dataset, overrides of one hook, per-record maps."""
from __future__ import annotations

import hashlib
import json
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from elt_sdk import Dataset, hookimpl
from elt_sdk.pipeline import MapError
from elt_sdk.plugins import load_registry
from elt_sdk.testing import transform_lines

DATASETS = ["shipments", "tracking_events", "invoice_lines"]


def sample(registry, name: str, n: int = 50) -> list[bytes]:
    import random
    ds = registry.dataset(name)
    return [json.dumps(r).encode() for r in registry.hooks(ds).elt_fake_records(dataset=ds, rng=random.Random(5), count=n)]


class Masking:
    """Cross-cutting: every *_id column of every dataset is replaced by a short hash."""

    @hookimpl(wrapper=True)
    def elt_map(self, dataset, table):
        table = yield
        for i, name in enumerate(table.column_names):
            if name.endswith("_id"):
                masked = [hashlib.sha256(v.encode()).hexdigest()[:12] for v in table.column(i).to_pylist()]
                table = table.set_column(i, table.field(i), pa.array(masked, pa.string()))
        return table


class RowCounter:
    def __init__(self):
        self.rows = Counter()

    @hookimpl(wrapper=True)
    def elt_write(self, dataset, table, output):
        self.rows[dataset.name] += table.num_rows
        return (yield)


def test_a_wrapper_changes_every_datasets_output(registry):
    masked_reg = load_registry(extra_plugins=[("masking", Masking())])
    for name in DATASETS:
        lines = sample(registry, name)
        plain = transform_lines(registry, registry.dataset(name), lines).silver
        masked = transform_lines(masked_reg, masked_reg.dataset(name), lines).silver
        id_col = next(c for c in plain.column_names if c.endswith("_id"))
        assert masked.num_rows == plain.num_rows == 50
        expected = [hashlib.sha256(v.encode()).hexdigest()[:12] for v in plain.column(id_col).to_pylist()]
        assert masked.column(id_col).to_pylist() == expected
        others = [c for c in plain.column_names if c != id_col]
        assert masked.select(others).equals(plain.select(others))


def test_a_wrapper_sees_every_write(registry):
    counter = RowCounter()
    reg = load_registry(extra_plugins=[("counter", counter)])
    for name in DATASETS:
        transform_lines(reg, reg.dataset(name), sample(registry, name, 30))
    assert counter.rows == {n: 30 for n in DATASETS}


class KgToGrams:
    """A dataset plugin overriding only the batch map of its own dataset (new silver shape)."""

    dataset = Dataset(
        name="parcels",
        json_schema={"type": "object", "required": ["event_time", "weight_kg"],
                     "properties": {"event_time": {"type": "string", "format": "date-time"},
                                    "weight_kg": {"type": "number", "minimum": 0}}},
        silver_schema=pa.schema([pa.field("event_time", pa.timestamp("us", tz="UTC"), nullable=False),
                                 pa.field("weight_g", pa.int64(), nullable=False)]),
    )

    @hookimpl
    def elt_datasets(self):
        return [self.dataset]

    @hookimpl
    def elt_map(self, dataset, table):
        if dataset.name != "parcels":
            return None
        grams = pc.cast(pc.round(pc.multiply(table.column("weight_kg"), 1000)), pa.int64())
        return pa.table({"event_time": table.column("event_time"), "weight_g": grams})


def test_a_dataset_plugin_overrides_only_its_map(registry):
    reg = load_registry(extra_plugins=[("parcels", KgToGrams())])
    lines = [b'{"event_time": "2025-05-01T00:00:00Z", "weight_kg": 1.25}', b'{"event_time": "2025-05-01T00:00:00Z", "weight_kg": "2"}']
    result = transform_lines(reg, reg.dataset("parcels"), lines)
    assert result.silver.select(["weight_g"]).to_pylist() == [{"weight_g": 1250}]
    assert [r["line"] for r in result.quarantine] == [2]  # default validation still applies
    # other datasets are untouched by the parcels plugin
    plain = transform_lines(reg, reg.dataset("shipments"), sample(registry, "shipments", 5)).silver
    assert "weight_kg" in plain.column_names


class UpperCity:
    @hookimpl
    def elt_map_record(self, dataset, record):
        if dataset.name != "tracking_events":
            return None
        return {**record, "city": record["city"].upper()}


def test_per_record_map_hook(registry):
    reg = load_registry(extra_plugins=[("upper", UpperCity())])
    silver = transform_lines(reg, reg.dataset("tracking_events"), sample(registry, "tracking_events", 20)).silver
    assert all(c == c.upper() for c in silver.column("city").to_pylist())
    ship = transform_lines(reg, reg.dataset("shipments"), sample(registry, "shipments", 5)).silver
    assert any(c != c.upper() for c in ship.column("origin").to_pylist())


class DropsColumn:
    @hookimpl
    def elt_map(self, dataset, table):
        return table.drop_columns(["carrier"]) if dataset.name == "shipments" else None


def test_a_map_that_breaks_the_silver_schema_fails_the_object(registry):
    reg = load_registry(extra_plugins=[("drops", DropsColumn())])
    with pytest.raises(MapError, match="dropped column.*carrier"):
        transform_lines(reg, reg.dataset("shipments"), sample(registry, "shipments", 5))


class KeyValueFeed:
    """A dataset whose feed is not JSON: ``key=value;key=value`` lines, parsed by the plugin."""

    dataset = Dataset(name="kv_events", prefix="bronze/kv/", json_schema={
        "type": "object", "required": ["event_time", "id", "n"],
        "properties": {"event_time": {"type": "string", "format": "date-time"}, "id": {"type": "string"},
                       "n": {"type": "integer"}}})

    @hookimpl
    def elt_datasets(self):
        return [self.dataset]

    @hookimpl
    def elt_parse(self, dataset, block):
        if dataset.name != "kv_events":
            return None
        from elt_sdk.batch import ParsedBatch
        batch = ParsedBatch(block, rows=[])
        for i, line in enumerate(block.lines):
            if not line.strip():
                continue
            try:
                pairs = dict(part.split("=", 1) for part in line.decode().split(";"))
                if "n" in pairs:
                    pairs["n"] = int(pairs["n"])
            except ValueError as exc:
                batch.rejects.append(block.reject(i, [{"path": "$", "message": f"not key=value: {exc}"}], "parse"))
                continue
            batch.rows.append(i)
            batch.decoded[i] = pairs
        return batch


def test_a_plugin_parser_for_a_non_json_feed(registry):
    reg = load_registry(extra_plugins=[("kv", KeyValueFeed())])
    lines = [b"event_time=2025-01-02T03:04:05Z;id=a;n=1", b"garbage", b"", b"event_time=2025-01-02T03:04:05Z;id=b",
             b"event_time=2025-01-03T00:00:00Z;id=c;n=3"]
    result = transform_lines(reg, reg.dataset("kv_events"), lines)
    assert result.silver.select(["id", "n"]).to_pylist() == [{"id": "a", "n": 1}, {"id": "c", "n": 3}]
    assert [(q["line"], q["stage"]) for q in result.quarantine] == [(2, "parse"), (4, "validate")]
    assert result.quarantine[1]["errors"] == [{"path": "$.n", "message": "required field is missing"}]
