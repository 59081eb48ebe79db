"""The standard suite every dataset plugin gets for free.

Subclass it and name the dataset::

    from elt_sdk.testing.suite import DatasetSuite

    class TestOrders(DatasetSuite):
        dataset = "orders"
        skip_tests = {"test_json_array_and_jsonl_agree": "the feed is never sent as an array"}
        field_strategies = {"customer.vat_id": st.from_regex(r"\\ADE[0-9]{9}\\Z")}

Each test draws records from the dataset's own JSON Schema with hypothesis and runs them through
the real hook chain (the installed plugins, the SDK's defaults), then checks what reached silver
and quarantine. ``elt-sdk check-plugin NAME`` runs the same suite on an installed plugin, with the
switch-offs and field strategies of the suite class the plugin declares under the
``elt_sdk.suites`` entry-point group (``SUITE_GROUP``).
"""
from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Mapping, Sequence

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from elt_sdk.dataset import Dataset
from elt_sdk.mutations import Break, apply, breaks, wrong_type_values
from elt_sdk.plugins import Registry, load_registry
from elt_sdk.testing.harness import reference_verdict, transform_lines
from elt_sdk.testing.strategies import FieldStrategies, as_line, invalid_lines, invalid_records, lines, valid_records

EXAMPLES_ENV = "ELT_SDK_SUITE_EXAMPLES"
"""Examples per property test (default 25); raise it in CI for a deeper search."""
SHRINK_ENV = "ELT_SDK_SUITE_SHRINK"
"""Set to 0 to report the first failing example without shrinking it (faster verdicts)."""

_PHASES = [p for p in Phase if p != Phase.shrink or os.environ.get(SHRINK_ENV, "1") != "0"]
_SETTINGS = settings(max_examples=int(os.environ.get(EXAMPLES_ENV, "25")), deadline=None, phases=_PHASES,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                            HealthCheck.function_scoped_fixture,
                                            HealthCheck.differing_executors])  # one method, many datasets


SUITE_GROUP = "elt_sdk.suites"
"""Entry-point group where a plugin names its ``DatasetSuite`` subclass(es), so that
``elt-sdk check-plugin`` runs the suite with the plugin's own switch-offs and field strategies::

    [project.entry-points."elt_sdk.suites"]
    customs = "elt_customs.suite:TestCustoms"
"""

_line = as_line


class SuiteDeclarationError(ValueError):
    """A plugin's ``elt_sdk.suites`` entry that does not load or does not name a suite of its own."""


def declared_suites(distribution: str, datasets: Sequence[str]) -> dict[str, tuple[str, type["DatasetSuite"]]]:
    """The suite classes a plugin's distribution declares under ``SUITE_GROUP``, by dataset:
    ``{dataset: ("module:Class", class)}``. Datasets without one are absent (the bare suite applies)."""
    from importlib.metadata import entry_points

    found: dict[str, tuple[str, type[DatasetSuite]]] = {}
    for ep in entry_points(group=SUITE_GROUP):
        dist = getattr(ep, "dist", None)
        if dist is None or dist.name != distribution:
            continue
        try:
            cls = ep.load()
        except Exception as exc:  # the plugin's code: report, do not crash
            raise SuiteDeclarationError(f"{SUITE_GROUP} entry {ep.name} = {ep.value!r} does not load: "
                                        f"{type(exc).__name__}: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, DatasetSuite)):
            raise SuiteDeclarationError(f"{SUITE_GROUP} entry {ep.name} = {ep.value!r} is not a DatasetSuite subclass")
        if cls.dataset not in datasets:
            raise SuiteDeclarationError(f"{SUITE_GROUP} entry {ep.name} = {ep.value!r} tests dataset {cls.dataset!r}, "
                                        f"which the plugin does not declare ({', '.join(datasets)})")
        if cls.dataset in found:
            raise SuiteDeclarationError(f"two {SUITE_GROUP} entries test dataset {cls.dataset!r}: "
                                        f"{found[cls.dataset][0]} and {ep.value}")
        found[cls.dataset] = (ep.value, cls)
    return found


def _segments(path: str) -> list[str]:
    return [p for p in path.replace("[", ".[").split(".") if p and p != "$"]


def _points_at(error_path: str, brk: Break) -> bool:
    """Does an error's JSON path name the broken place, or an object/array around it, or a field
    inside it? (The root only counts for a break at the root.)"""
    err, at = _segments(error_path), _segments(brk.where)
    if not err:
        return not at
    shorter = min(len(err), len(at))
    return err[:shorter] == at[:shorter]


def _replace(record: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    out = dict(record) if isinstance(record, dict) else list(record)
    out[path[0]] = _replace(record[path[0]], path[1:], value)
    return out


class DatasetSuite:
    dataset: ClassVar[str] = ""
    """The dataset under test (its name)."""
    extra_plugins: ClassVar[Sequence[tuple[str, object]]] = ()
    """Plugin objects to register besides the installed ones (for testing plugins not installed)."""
    skip_tests: ClassVar[Mapping[str, str]] = {}
    """Tests to switch off, by name, each with the reason shown in the report (and printed by
    ``elt-sdk check-plugin``). A name that is not a test of the class is an error."""
    field_strategies: ClassVar[FieldStrategies] = {}
    """Strategies for single fields, by path (``"customs.hs_code"``, ``"lines[].sku"``): see
    ``elt_sdk.testing.strategies``. Every standard test draws those fields from them."""

    _registries: ClassVar[dict[type, Registry]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse switch-offs that would silently switch nothing off (a typo, a renamed test)."""
        super().__init_subclass__(**kwargs)
        tests = {n for n in dir(cls) if n.startswith("test")}
        unknown = sorted(set(cls.skip_tests) - tests)
        if unknown:
            raise TypeError(f"{cls.__name__}.skip_tests names no test: {', '.join(unknown)}; "
                            f"tests: {', '.join(sorted(tests))}")
        empty = sorted(n for n, reason in cls.skip_tests.items() if not isinstance(reason, str) or not reason.strip())
        if empty:
            raise TypeError(f"{cls.__name__}.skip_tests: give a reason for {', '.join(empty)}")

    @classmethod
    def switched_off(cls) -> dict[str, str]:
        """The tests this suite switches off, with their reasons."""
        return dict(cls.skip_tests)

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
        records = data.draw(st.lists(valid_records(self.ds, self.field_strategies), min_size=1, max_size=20), label="records")
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
        bad = data.draw(st.lists(st.one_of(invalid_records(self.ds, self.field_strategies).map(_line), invalid_lines(self.ds, self.field_strategies)),
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
        """Each field, at every depth (inside objects and array items too), given values of the
        wrong JSON type (the number as a string, 2.5 for an integer, a number for a string, null
        where null is not allowed): quarantined, never coerced into silver."""
        record = data.draw(valid_records(self.ds, self.field_strategies), label="record")
        lines_, cases = [], []
        for brk in self._one_place_per_constraint(record, kinds={"wrong_type"}):
            current = record
            for p in brk.path:
                current = current[p]
            for value in wrong_type_values(brk.schema, current):
                lines_.append(_line(_replace(record, brk.path, value)))
                cases.append(f"{brk.where}={value!r}")
        result = transform_lines(self.registry, self.ds, lines_)
        quarantined = {q["line"] for q in result.quarantine}
        leaked = [cases[i] for i in range(len(cases)) if (i + 1) not in quarantined]
        assert not leaked, f"wrong types reached silver: {leaked}"
        assert result.silver.num_rows == 0

    @_SETTINGS
    @given(data=st.data())
    def test_every_constraint_is_enforced_at_every_depth(self, data: st.DataObject) -> None:
        """A valid record broken once for each constraint that applies to it, wherever it sits
        (a nested field missing, too few items, a pattern mismatch with ECMA-262's meaning, not a
        multipleOf, a bound crossed, an unknown enum value, a bad format, a duplicate item, an
        unknown field where none is allowed): each is quarantined, and its errors name the place."""
        record = data.draw(valid_records(self.ds, self.field_strategies), label="record")
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        rng = random.Random(seed)
        cases: list[tuple[Break, bytes]] = []
        for brk in self._one_place_per_constraint(record):
            broken = apply(self.ds.json_schema, record, brk, rng)
            if broken is not None:
                cases.append((brk, _line(broken)))
        result = transform_lines(self.registry, self.ds, [line for _, line in cases])
        by_line = {q["line"]: q for q in result.quarantine}
        leaked = [f"{brk.kind} at {brk.where}: {line[:300]!r}" for i, (brk, line) in enumerate(cases, 1) if i not in by_line]
        assert not leaked, "records breaking the schema reached silver:\n  " + "\n  ".join(leaked)
        unexplained = [f"{brk.kind} at {brk.where}: errors {by_line[i]['errors']}" for i, (brk, _) in enumerate(cases, 1)
                       if not any(_points_at(e.get("path", "$"), brk) for e in by_line[i]["errors"])]
        assert not unexplained, "quarantine reasons do not name the broken place:\n  " + "\n  ".join(unexplained)
        assert result.silver.num_rows == 0

    def _one_place_per_constraint(self, record: Any, kinds: set[str] | None = None) -> list[Break]:
        """One place for each (constraint, depth) of ``record``: the first array item stands for all."""
        chosen: dict[tuple[str, str], Break] = {}
        for brk in breaks(self.ds.json_schema, record):
            if kinds is None or brk.kind in kinds:
                chosen.setdefault(brk.group, brk)
        return list(chosen.values())

    @_SETTINGS
    @given(data=st.data())
    def test_verdicts_match_fastjsonschema(self, data: st.DataObject) -> None:
        """The pipeline keeps exactly the records fastjsonschema accepts (strict JSON, an event
        time a timestamp can hold) and quarantines exactly the others."""
        batch = data.draw(lines(self.ds, field_strategies=self.field_strategies), label="lines")
        result = transform_lines(self.registry, self.ds, batch)
        expected_bad = [i for i, line in enumerate(batch, start=1) if not reference_verdict(self.ds, line)]
        assert [q["line"] for q in result.quarantine] == expected_bad
        assert result.silver.num_rows == len(batch) - len(expected_bad)

    @_SETTINGS
    @given(data=st.data())
    def test_json_array_and_jsonl_agree(self, data: st.DataObject) -> None:
        """The same records sent as a JSON array and as JSON Lines give the same rows."""
        records = data.draw(st.lists(valid_records(self.ds, self.field_strategies), min_size=1, max_size=15), label="records")
        as_lines = transform_lines(self.registry, self.ds, [_line(r) for r in records]).silver
        as_array = transform_lines(self.registry, self.ds, [_line(r) for r in records], fmt="json").silver
        assert as_array.equals(as_lines)

    @_SETTINGS
    @given(data=st.data())
    def test_transform_is_deterministic(self, data: st.DataObject) -> None:
        """Transforming the same input twice writes the same keys with the same bytes (replays
        and redeliveries overwrite instead of duplicating)."""
        batch = data.draw(lines(self.ds, field_strategies=self.field_strategies), label="lines")
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
        records = data.draw(st.lists(valid_records(self.ds, self.field_strategies), min_size=1, max_size=20), label="records")
        silver = transform_lines(self.registry, self.ds, [_line(r) for r in records]).silver
        for row in silver.select([self.ds.event_time_field, "dt"]).to_pylist():
            assert str(row["dt"]) == row[self.ds.event_time_field].strftime("%Y-%m-%d"), row
