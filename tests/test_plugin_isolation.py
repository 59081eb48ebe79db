"""Dispatch by ownership, as a third party meets it: a plugin installed beside the first-party
ones, whose hooks answer every call they get (no "is this my dataset?" guard) and would take over
any dataset (hooks are ``firstresult``), changes none of the first-party datasets' outputs."""
from __future__ import annotations

import json
import random

from elt_sdk.plugins import load_registry
from elt_sdk.testing import transform_lines

FIRST_PARTY = ["shipments", "tracking_events", "invoice_lines"]

GREEDY = """
    import pyarrow as pa
    from elt_sdk import Dataset, ParsedBatch, ValidatedBatch, hookimpl

    DATASET = Dataset(name="fake_greedy", json_schema={
        "type": "object", "required": ["event_time", "n"],
        "properties": {"event_time": {"type": "string", "format": "date-time"}, "n": {"type": "integer"}}})

    @hookimpl
    def elt_datasets():
        return [DATASET]

    @hookimpl
    def elt_parse(dataset, block):
        return ParsedBatch(block, rows=[])             # every line dropped

    @hookimpl
    def elt_validate(dataset, batch):
        return ValidatedBatch(dataset.bronze_arrow_schema.empty_table(), [], [])

    @hookimpl
    def elt_map(dataset, table):
        return table.slice(0, 0)

    @hookimpl
    def elt_map_record(dataset, record):
        return {}

    @hookimpl
    def elt_write(dataset, table, output):
        return True                                     # "written": nowhere

    @hookimpl
    def elt_fake_records(dataset, rng, count):
        return [{"event_time": "2025-01-01T00:00:00Z", "n": 1, "greedy": True}] * count
"""


def _lines(registry, name: str) -> list[bytes]:
    ds = registry.dataset(name)
    records = registry.hooks(ds).elt_fake_records(dataset=ds, rng=random.Random(11), count=40)
    lines = [json.dumps(r).encode() for r in records]
    lines[3] = lines[3][:-5]  # a malformed line
    broken = dict(records[7])
    broken.pop("event_time")  # a schema-invalid record
    lines[7] = json.dumps(broken).encode()
    return lines


def test_a_plugin_without_guards_changes_no_other_datasets_output(fake_dist, tmp_path):
    make, _ = fake_dist
    make("fake_greedy", GREEDY)
    plain = load_registry(["fake_greedy"])
    both = load_registry()
    assert "fake_greedy" in both.datasets and not both.broken
    for name in FIRST_PARTY:
        lines = _lines(plain, name)
        alone = transform_lines(plain, plain.dataset(name), lines, input_dir=tmp_path)  # same source path: same envelopes
        beside = transform_lines(both, both.dataset(name), lines, input_dir=tmp_path)
        assert alone.silver.num_rows == 38 and len(alone.quarantine) == 2
        assert beside.files == alone.files, f"{name}: the greedy plugin changed what was written"
        ds = both.dataset(name)
        assert both.hooks(ds).elt_fake_records(dataset=ds, rng=random.Random(3), count=5) == \
            plain.hooks(plain.dataset(name)).elt_fake_records(dataset=plain.dataset(name), rng=random.Random(3), count=5)
    # its hooks do answer for its own dataset: every line dropped, nothing written
    own = both.dataset("fake_greedy")
    result = transform_lines(both, own, [b'{"event_time": "2025-01-01T00:00:00Z", "n": 1}'] * 3)
    assert result.silver.num_rows == 0 and result.quarantine == []
    assert both.hooks(own).elt_fake_records(dataset=own, rng=random.Random(1), count=1)[0]["greedy"] is True
