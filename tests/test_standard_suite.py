"""The standard suite catches broken plugins: each deliberately broken plugin fails the test
that guards the broken promise (and a sound plugin passes them all)."""
from __future__ import annotations

import textwrap

import pytest


PLUGINS = textwrap.dedent('''
    import dataclasses
    import random
    import pyarrow as pa
    import pyarrow.compute as pc
    from elt_sdk import Dataset, hookimpl
    from elt_sdk.batch import ValidatedBatch
    from elt_sdk.defaults import validate as default_validate
    from elt_sdk.testing.suite import DatasetSuite

    def parcels(name):
        return Dataset(name=name, json_schema={
            "type": "object", "required": ["event_time", "parcel_id", "weight_kg"],
            "properties": {"event_time": {"type": "string", "format": "date-time"},
                           "parcel_id": {"type": "string", "minLength": 1},
                           "weight_kg": {"type": "number", "minimum": 0}}})

    class Sound:
        @hookimpl
        def elt_datasets(self):
            return [parcels("sound")]

    class DropsColumn:
        @hookimpl
        def elt_datasets(self):
            return [parcels("drops")]

        @hookimpl
        def elt_map(self, dataset, table):
            return table.drop_columns(["parcel_id"]) if dataset.name == "drops" else None

    class AcceptsWrongType:
        """Coerces "12.5" to 12.5 before validating: what the reference pipeline did."""
        @hookimpl
        def elt_datasets(self):
            return [parcels("lenient")]

        @hookimpl
        def elt_validate(self, dataset, batch):
            if dataset.name != "lenient":
                return None
            for r in batch.records:
                if isinstance(r, dict) and isinstance(r.get("weight_kg"), str):
                    try:
                        r["weight_kg"] = abs(float(r["weight_kg"]))
                    except ValueError:
                        pass
            return default_validate.elt_validate(dataset=dataset, batch=batch)

    class Jitter:
        @hookimpl
        def elt_datasets(self):
            return [parcels("jitter")]

        @hookimpl
        def elt_map(self, dataset, table):
            if dataset.name != "jitter":
                return None
            noise = pa.array([random.random() for _ in range(table.num_rows)], pa.float64())
            return table.set_column(2, "weight_kg", pc.add(table.column("weight_kg"), noise))

    ORDERS = {
        "type": "object", "required": ["event_time", "order_id", "lines"],
        "properties": {"event_time": {"type": "string", "format": "date-time"},
                       "order_id": {"type": "string", "minLength": 1},
                       "lines": {"type": "array", "minItems": 1, "items": {
                           "type": "object", "required": ["sku", "qty"],
                           "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}$"},
                                          "qty": {"type": "integer", "minimum": 1, "multipleOf": 2}}}}}}

    class Shallow:
        """Checks types, and the constraints of top-level fields, but not those inside the
        lines: a record with no line, or a line of 3 (not a multiple of 2), reaches silver."""
        @hookimpl
        def elt_datasets(self):
            return [Dataset(name="shallow", json_schema=ORDERS)]

        @hookimpl
        def elt_validate(self, dataset, batch):
            lines = ORDERS["properties"]["lines"]
            item = {"type": "object", "required": ["sku", "qty"],
                    "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}}
            lax = {**ORDERS, "properties": {**ORDERS["properties"], "lines": {"type": "array", "items": item}}}
            return default_validate.elt_validate(dataset=dataclasses.replace(dataset, json_schema=lax), batch=batch)

    class TestSound(DatasetSuite):
        dataset = "sound"
        extra_plugins = [("sound", Sound())]

    class TestDrops(DatasetSuite):
        dataset = "drops"
        extra_plugins = [("drops", DropsColumn())]

    class TestLenient(DatasetSuite):
        dataset = "lenient"
        extra_plugins = [("lenient", AcceptsWrongType())]

    class TestShallow(DatasetSuite):
        dataset = "shallow"
        extra_plugins = [("shallow", Shallow())]

    class TestJitter(DatasetSuite):
        dataset = "jitter"
        extra_plugins = [("jitter", Jitter())]
        skip_tests = {"test_json_array_and_jsonl_agree": "noise differs between any two runs"}
''')




def outcomes(result) -> dict[str, str]:
    """test id -> outcome, from pytest's -rA summary lines (``PASSED test_broken.py::TestX::test_y``)."""
    out = {}
    for line in result.outlines:
        parts = line.split(" ", 2)
        if len(parts) >= 2 and parts[0] in ("PASSED", "FAILED", "SKIPPED") and "::" in parts[1]:
            out[parts[1].split("::", 1)[1]] = parts[0].lower()
    return out


def test_suite_catches_each_broken_plugin(pytester, monkeypatch):
    pytester.makepyfile(test_broken=PLUGINS)
    monkeypatch.setenv("ELT_SDK_SUITE_SHRINK", "0")  # a verdict, not a minimal example: much faster
    result = pytester.runpytest_subprocess("-q", "-rA", "-p", "no:cacheprovider", "-o", "addopts=")
    reports = outcomes(result)
    sound = {k: v for k, v in reports.items() if k.startswith("TestSound::")}
    assert len(sound) == 9 and set(sound.values()) == {"passed"}, sound
    # a map that drops a required column
    assert reports["TestDrops::test_valid_records_map_to_silver_rows"] == "failed"
    assert reports["TestDrops::test_declaration_is_valid"] == "passed"
    # a validator that accepts a wrong type
    assert reports["TestLenient::test_every_field_refuses_wrong_types"] == "failed"
    assert reports["TestLenient::test_valid_records_map_to_silver_rows"] == "passed"
    # a validator that lets nested constraints through (minItems, multipleOf inside array items)
    assert reports["TestShallow::test_every_constraint_is_enforced_at_every_depth"] == "failed"
    assert reports["TestShallow::test_every_field_refuses_wrong_types"] == "passed"
    assert reports["TestShallow::test_valid_records_map_to_silver_rows"] == "passed"
    # a map that is not deterministic
    assert reports["TestJitter::test_transform_is_deterministic"] == "failed"
    assert reports["TestJitter::test_dt_is_the_utc_date_of_the_event_time"] == "passed"
    # a test switched off by the plugin is reported as such, with its reason
    skipped = [line for line in result.outlines if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "switched off by the plugin: noise differs" in skipped[0]


def test_a_switch_off_must_name_a_test_and_give_a_reason():
    from elt_sdk.testing.suite import DatasetSuite

    with pytest.raises(TypeError, match="skip_tests names no test: test_json_arrays_agree; tests: .*test_json_array_and_jsonl_agree"):
        type("TestTypo", (DatasetSuite,), {"dataset": "x", "skip_tests": {"test_json_arrays_agree": "never arrays"}})
    with pytest.raises(TypeError, match="give a reason for test_transform_is_deterministic"):
        type("TestNoReason", (DatasetSuite,), {"dataset": "x", "skip_tests": {"test_transform_is_deterministic": " "}})
    suite = type("TestOk", (DatasetSuite,), {"dataset": "x", "skip_tests": {"test_transform_is_deterministic": "clock"}})
    assert suite.switched_off() == {"test_transform_is_deterministic": "clock"}
