"""hookspecs.py, sentence by sentence: who is called for what, on which thread, and what a hook
that raises does to its record or its object. Plugins here are written as outsiders would."""
from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pytest

from elt_sdk import Dataset, hookimpl
from elt_sdk import kernels as k
from elt_sdk.pipeline import MapError, Transformer
from elt_sdk.plugins import load_registry
from elt_sdk.source import LocalSource
from elt_sdk.store import LocalStore
from elt_sdk.testing import transform_lines

PARCELS = Dataset(name="parcels", json_schema={
    "type": "object", "required": ["event_time", "weight_kg"],
    "properties": {"event_time": {"type": "string", "format": "date-time"}, "weight_kg": {"type": "number"}}})


def sample(registry, name: str, n: int = 20) -> list[bytes]:
    ds = registry.dataset(name)
    return [json.dumps(r).encode() for r in registry.hooks(ds).elt_fake_records(dataset=ds, rng=random.Random(3), count=n)]


class Greedy:
    """A dataset plugin with no "is this my dataset?" guard in any hook."""

    def __init__(self):
        self.seen: set[str] = set()

    @hookimpl
    def elt_datasets(self):
        return [PARCELS]

    @hookimpl
    def elt_map(self, dataset, table):
        self.seen.add(dataset.name)
        return table.set_column(table.schema.get_field_index("weight_kg"), "weight_kg",
                                k.multiply(table.column("weight_kg"), 2.0))

    @hookimpl
    def elt_fake_records(self, dataset, rng, count):
        self.seen.add(dataset.name)
        return [{"event_time": "2025-01-01T00:00:00Z", "weight_kg": 1.0}] * count


def test_a_dataset_plugin_without_guards_is_called_for_its_own_datasets_only(registry):
    greedy = Greedy()
    reg = load_registry(extra_plugins=[("greedy", greedy)])
    for name in ("shipments", "tracking_events", "invoice_lines"):
        lines = sample(registry, name)
        assert transform_lines(reg, reg.dataset(name), lines).files == transform_lines(registry, registry.dataset(name), lines).files
        assert sample(reg, name) == lines  # its fake records are not theirs either
    parcels = transform_lines(reg, reg.dataset("parcels"), [b'{"event_time": "2025-01-01T00:00:00Z", "weight_kg": 1.5}'])
    assert parcels.silver.column("weight_kg").to_pylist() == [3.0]
    assert greedy.seen == {"parcels"}


class ParseSpy:
    def __init__(self):
        self.datasets: list[str] = []
        self.threads: set[str] = set()

    @hookimpl(wrapper=True)
    def elt_parse(self, dataset, block):
        self.datasets.append(dataset.name)
        self.threads.add(threading.current_thread().name)
        return (yield)


def test_objects_routed_by_record_type_skip_elt_parse_and_parse_runs_on_a_worker_thread(registry, tmp_path):
    spy = ParseSpy()
    reg = load_registry(extra_plugins=[("spy", spy)])
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b"\n".join(sample(registry, "shipments", 5) + sample(registry, "invoice_lines", 5)) + b"\n")
    report = Transformer(reg).transform_object(LocalSource.from_path(mixed, key="bronze/mixed/mixed.jsonl"),
                                               LocalStore(tmp_path / "out"))
    assert report.counts["shipments"].written == 5 and report.counts["invoice_lines"].written == 5
    assert spy.datasets == []  # routed record by record: no dataset's parser applies
    own = tmp_path / "own.jsonl"
    own.write_bytes(b"\n".join(sample(registry, "shipments", 5)) + b"\n")
    Transformer(reg).transform_object(LocalSource.from_path(own, key="bronze/shipments/own.jsonl"),
                                      LocalStore(tmp_path / "out"))
    assert spy.datasets == ["shipments"] and all(t.startswith("elt-parse") for t in spy.threads)


def test_hooks_run_from_several_threads_at_once_with_one_registry(registry, tmp_path):
    transformer = Transformer(registry)
    paths = []
    for i in range(6):
        p = tmp_path / f"o{i}.jsonl"
        p.write_bytes(b"\n".join(sample(registry, "shipments", 50)) + b"\n")
        paths.append(p)
    with ThreadPoolExecutor(3) as pool:
        reports = list(pool.map(lambda p: transformer.transform_object(
            LocalSource.from_path(p, key=f"bronze/shipments/{p.name}"), LocalStore(tmp_path / "out")), paths))
    assert [r.totals().written for r in reports] == [50] * 6


class Raising:
    """Raises in one hook for the records whose shipment_id ends with 7."""

    def __init__(self, hook: str):
        self.hook = hook

    @hookimpl
    def elt_map(self, dataset, table):
        if self.hook == "map" and any(s.endswith("7") for s in table.column("shipment_id").to_pylist()):
            raise ZeroDivisionError("a bug that row 7 triggers")
        if self.hook == "shape":
            return table.drop_columns(["carrier"])
        return None

    @hookimpl
    def elt_validate(self, dataset, batch):
        if self.hook == "validate" and any(r.get("shipment_id", "").endswith("7") for r in batch.records):
            raise KeyError("validator bug")
        return None

    @hookimpl
    def elt_parse(self, dataset, block):
        if self.hook == "parse":
            raise RuntimeError("parser bug")
        return None

    @hookimpl
    def elt_write(self, dataset, table, output):
        if self.hook == "write":
            raise ConnectionError("the second sink is down")
        return None


def shipments_lines(n: int) -> list[bytes]:
    return [json.dumps({"record_type": "shipments", "event_time": "2025-06-01T12:00:00Z", "shipment_id": f"S{i}",
                        "origin": "A", "destination": "B", "carrier": "C", "weight_kg": 1.0}).encode() for i in range(n)]


@pytest.mark.parametrize("hook, stage, message", [("map", "map", "ZeroDivisionError: a bug that row 7 triggers"),
                                                  ("validate", "validate", "KeyError: 'validator bug'")])
def test_a_hook_raising_on_some_rows_quarantines_exactly_those_rows(hook, stage, message):
    reg = load_registry(extra_plugins=[("raising", Raising(hook))])
    lines = shipments_lines(40)
    result = transform_lines(reg, reg.dataset("shipments"), lines)
    bad = [i for i in range(40) if str(i).endswith("7")]
    assert [q["line"] for q in result.quarantine] == [i + 1 for i in bad]
    assert {q["stage"] for q in result.quarantine} == {stage}
    assert all(message in q["errors"][0]["message"] for q in result.quarantine)
    assert sorted(result.silver.column("shipment_id").to_pylist()) == sorted(f"S{i}" for i in range(40) if i not in bad)


@pytest.mark.parametrize("hook, error", [("shape", MapError), ("parse", RuntimeError), ("write", ConnectionError)])
def test_a_plugin_bug_that_is_not_one_rows_fails_the_object_and_leaves_nothing(hook, error, tmp_path):
    reg = load_registry(extra_plugins=[("raising", Raising(hook))])
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(shipments_lines(10)) + b"\n")
    with pytest.raises(error):
        Transformer(reg).transform_object(LocalSource.from_path(src, key="bronze/shipments/in.jsonl"),
                                          LocalStore(tmp_path / "out"))
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()] if (tmp_path / "out").exists() else True


class SecondSinkAfterWrite:
    """A wrapper whose own sink fails with a ValueError after the default write appended the rows."""

    @hookimpl(wrapper=True)
    def elt_write(self, dataset, table, output):
        yield
        raise ValueError("second sink: bad config")


def test_a_write_wrapper_value_error_after_the_write_fails_the_object_without_duplicating(tmp_path):
    reg = load_registry(extra_plugins=[("second-sink", SecondSinkAfterWrite())])
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(shipments_lines(40)) + b"\n")
    with pytest.raises(ValueError, match="second sink"):
        Transformer(reg).transform_object(LocalSource.from_path(src, key="bronze/shipments/in.jsonl"),
                                          LocalStore(tmp_path / "out"))
    out = tmp_path / "out"
    assert not [p for p in out.rglob("*.parquet")] if out.exists() else True


class DatasetsWrapper:
    calls = 0

    @hookimpl(wrapper=True)
    def elt_datasets(self):
        DatasetsWrapper.calls += 1
        return (yield)


class Broken:
    @hookimpl
    def elt_datasets(self):
        raise ValueError("cannot read my schema")


def test_elt_datasets_is_called_on_each_plugin_alone_and_a_failure_is_that_plugins():
    DatasetsWrapper.calls = 0
    reg = load_registry(extra_plugins=[("wrapper", DatasetsWrapper()), ("broken", Broken())])
    assert DatasetsWrapper.calls == 0
    [broken] = reg.broken
    assert broken.name == "broken" and "cannot read my schema" in broken.error
    assert {"shipments", "tracking_events", "invoice_lines"} <= set(reg.datasets)


class RecordMapper:
    def __init__(self, batch_map: bool):
        self.batch_map = batch_map
        self.calls = 0

    @hookimpl
    def elt_datasets(self):
        return [PARCELS]

    @hookimpl
    def elt_map(self, dataset, table):
        return table if self.batch_map else None

    @hookimpl
    def elt_map_record(self, dataset, record):
        self.calls += 1
        return {**record, "weight_kg": record["weight_kg"] + 1}


@pytest.mark.parametrize("batch_map", [True, False])
def test_elt_map_record_runs_only_when_no_batch_map_of_the_dataset_answered(batch_map):
    plugin = RecordMapper(batch_map)
    reg = load_registry(extra_plugins=[("mapper", plugin)])
    silver = transform_lines(reg, reg.dataset("parcels"), [b'{"event_time": "2025-01-01T00:00:00Z", "weight_kg": 1.0}']).silver
    assert silver.column("weight_kg").to_pylist() == ([1.0] if batch_map else [2.0])
    assert plugin.calls == (0 if batch_map else 1)


def test_the_whole_batch_is_a_table_only_when_the_columnar_parse_read_every_row(registry):
    from elt_sdk.batch import RawBlock
    from elt_sdk.source import SourceRef

    ds = registry.dataset("shipments")
    clean = RawBlock(SourceRef("mem://x", "e"), b"\n".join(shipments_lines(5)) + b"\n")
    parsed = registry.hooks(ds).elt_parse(dataset=ds, block=clean)
    assert isinstance(parsed.table, pa.Table) and parsed.table.num_rows == 5 == len(parsed.records)
    with_bad_line = RawBlock(SourceRef("mem://x", "e"), b"\n".join(shipments_lines(5) + [b"{oops"]) + b"\n")
    parsed = registry.hooks(ds).elt_parse(dataset=ds, block=with_bad_line)  # a reject is not a row
    assert parsed.table.num_rows == 5 and len(parsed.records) == 5 and len(parsed.rejects) == 1
    wrong_type = shipments_lines(4) + [shipments_lines(1)[0].replace(b'"weight_kg": 1.0', b'"weight_kg": "heavy"')]
    mixed = RawBlock(SourceRef("mem://x", "e"), b"\n".join(wrong_type) + b"\n")
    parsed = registry.hooks(ds).elt_parse(dataset=ds, block=mixed)  # set aside, decoded on its own
    assert parsed.table is None and len(parsed.records) == 5
