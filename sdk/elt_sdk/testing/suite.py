"""The standard suite every dataset plugin gets for free.

Subclass it in a plugin's tests and name the dataset::

    from elt_sdk.testing.suite import DatasetSuite

    class TestOrders(DatasetSuite):
        dataset = "orders"
        skip_tests = {"test_json_array_and_jsonl_agree": "the feed is never sent as an array"}

Each test draws records from the dataset's own JSON Schema with hypothesis and runs them through
the real hook chain (the installed plugins, the SDK's defaults), then checks what reached silver
and quarantine. ``elt-sdk check-plugin NAME`` runs the same suite on an installed plugin.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from elt_sdk.dataset import Dataset
from elt_sdk.plugins import Registry, load_registry
from elt_sdk.testing.harness import reference_verdict, transform_lines
from elt_sdk.generate import wrong_type_values
from elt_sdk.testing.strategies import invalid_lines, invalid_records, lines, valid_records

EXAMPLES_ENV = "ELT_SDK_SUITE_EXAMPLES"
"""Examples per property test (default 25); raise it in CI for a deeper search."""
SHRINK_ENV = "ELT_SDK_SUITE_SHRINK"
"""Set to 0 to report the first failing example without shrinking it (faster verdicts)."""

_PHASES = [p for p in Phase if p != Phase.shrink or os.environ.get(SHRINK_ENV, "1") != "0"]
_SETTINGS = settings(max_examples=int(os.environ.get(EXAMPLES_ENV, "25")), deadline=None, phases=_PHASES,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture,
                                            HealthCheck.differing_executors])  # one method, many datasets


def _line(record: Any) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


class DatasetSuite:
    dataset: ClassVar[str] = ""
    """The dataset under test (its name)."""
    extra_plugins: ClassVar[Sequence[tuple[str, object]]] = ()
    """Plugin objects to register besides the installed ones (for testing plugins not installed)."""
    skip_tests: ClassVar[Mapping[str, str]] = {}
    """Tests to switch off, by name, each with the reason shown in the report."""

    _registries: ClassVar[dict[type, Registry]] = {}

    @pytest.fixture(autouse=True)
    def _elt_switches(self, request: pytest.FixtureRequest) -> None:
        reason = self.skip_tests.get(request.node.originalname)
        if reason:
            pytest.skip(f"switched off by the plugin: {reason}")

    @property
    def registry(self) -> Registry:
        cls = type(self)
        if cls not in DatasetSuite._registries:
            DatasetSuite._registries[cls] = load_registry(extra_plugins=self.extra_plugins)
        return DatasetSuite._registries[cls]

    @property
    def ds(self) -> Dataset:
        assert self.dataset, f"{type(self).__name__}.dataset must name the dataset under test"
        return self.registry.dataset(self.dataset)

    # -- the contract ---------------------------------------------------------------------------

    def test_declaration_is_valid(self) -> None:
        """The dataset loads (no broken plugin), and its schema drives a silver schema."""
        broken = [b for b in self.registry.broken if b.name == self.ds.plugin]
        assert not broken, broken
        self.ds.check()
        assert self.ds.event_time_field in self.ds.arrow_schema.names

    @_SETTINGS
    @given(data=st.data())
    def test_valid_records_map_to_silver_rows(self, data: st.DataObject) -> None:
        """Every valid record becomes one silver row matching the silver schema."""
        records = data.draw(st.lists(valid_records(self.ds), min_size=1, max_size=20), label="records")
        result = transform_lines(self.registry, self.ds, [_line(r) for r in records])
        assert result.quarantine == [], f"valid records were quarantined: {result.quarantine[:2]}"
        assert result.silver.num_rows == len(records)
        silver = result.silver.drop_columns(["dt"])
        assert silver.schema.equals(self.ds.arrow_schema, check_metadata=False), \
            f"silver schema {silver.schema} != declared {self.ds.arrow_schema}"

    @_SETTINGS
    @given(data=st.data())
    def test_invalid_records_are_quarantined_with_a_reason(self, data: st.DataObject) -> None:
        """Records the schema refuses, and lines that are not JSON, land in quarantine with their
        errors; nothing raises, and nothing of them reaches silver."""
        bad = data.draw(st.lists(st.one_of(invalid_records(self.ds).map(_line), invalid_lines(self.ds)),
                                 min_size=1, max_size=15), label="bad lines")
        result = transform_lines(self.registry, self.ds, bad)
        assert result.silver.num_rows == 0, f"invalid records reached silver: {result.silver.slice(0, 2).to_pylist()}"
        assert len(result.quarantine) == len(bad)
        for q in result.quarantine:
            assert q["errors"] and all(e.get("message") for e in q["errors"]), q
            assert q["dataset"] == self.ds.name and q["line"] >= 1

    @_SETTINGS
    @given(data=st.data())
    def test_every_field_refuses_wrong_types(self, data: st.DataObject) -> None:
        """Each property, in turn, given values of the wrong JSON type (the number as a string,
        2.5 for an integer, a number for a string, null where null is not allowed): quarantined,
        never coerced into silver."""
        record = data.draw(valid_records(self.ds), label="record")
        props = self.ds.json_schema.get("properties", {})
        lines_, cases = [], []
        for name, prop in props.items():
            for value in wrong_type_values(prop, record.get(name)):
                lines_.append(_line({**record, name: value}))
                cases.append(f"{name}={value!r}")
        result = transform_lines(self.registry, self.ds, lines_)
        leaked = [cases[i] for i in range(len(cases)) if (i + 1) not in {q["line"] for q in result.quarantine}]
        assert not leaked, f"wrong types reached silver: {leaked}"
        assert result.silver.num_rows == 0

    @_SETTINGS
    @given(data=st.data())
    def test_verdicts_match_fastjsonschema(self, data: st.DataObject) -> None:
        """The pipeline keeps exactly the records fastjsonschema accepts (strict JSON, an event
        time a timestamp can hold) and quarantines exactly the others."""
        batch = data.draw(lines(self.ds), label="lines")
        result = transform_lines(self.registry, self.ds, batch)
        expected_bad = [i for i, line in enumerate(batch, start=1) if not reference_verdict(self.ds, line)]
        assert [q["line"] for q in result.quarantine] == expected_bad
        assert result.silver.num_rows == len(batch) - len(expected_bad)

    @_SETTINGS
    @given(data=st.data())
    def test_json_array_and_jsonl_agree(self, data: st.DataObject) -> None:
        """The same records sent as a JSON array and as JSON Lines give the same rows."""
        records = data.draw(st.lists(valid_records(self.ds), min_size=1, max_size=15), label="records")
        as_lines = transform_lines(self.registry, self.ds, [_line(r) for r in records]).silver
        as_array = transform_lines(self.registry, self.ds, [_line(r) for r in records], fmt="json").silver
        assert as_array.equals(as_lines)

    @_SETTINGS
    @given(data=st.data())
    def test_transform_is_deterministic(self, data: st.DataObject) -> None:
        """Transforming the same input twice writes the same keys with the same bytes (replays
        and redeliveries overwrite instead of duplicating)."""
        batch = data.draw(lines(self.ds), label="lines")
        with tempfile.TemporaryDirectory() as folder:
            first = transform_lines(self.registry, self.ds, batch, input_dir=Path(folder))
            second = transform_lines(self.registry, self.ds, batch, input_dir=Path(folder))
        assert sorted(first.files) == sorted(second.files)
        changed = [k for k in first.files if first.files[k] != second.files[k]]
        assert not changed, f"output differs between two runs: {changed}"

    @_SETTINGS
    @given(data=st.data())
    def test_dt_is_the_utc_date_of_the_event_time(self, data: st.DataObject) -> None:
        """Every row sits in the dt partition of its event time's UTC date."""
        records = data.draw(st.lists(valid_records(self.ds), min_size=1, max_size=20), label="records")
        silver = transform_lines(self.registry, self.ds, [_line(r) for r in records]).silver
        for row in silver.select([self.ds.event_time_field, "dt"]).to_pylist():
            assert str(row["dt"]) == row[self.ds.event_time_field].strftime("%Y-%m-%d"), row
