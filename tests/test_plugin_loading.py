"""Discovery through entry points: broken plugins are reported, the rest load; disabling works."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from elt_sdk.plugins import load_registry

FIRST_PARTY = {"shipments", "tracking_events", "invoice_lines"}

GOOD = """
from elt_sdk import Dataset, hookimpl
@hookimpl
def elt_datasets():
    return [Dataset(name="fake_orders", json_schema={
        "type": "object", "required": ["event_time", "order_id"],
        "properties": {"event_time": {"type": "string", "format": "date-time"},
                       "order_id": {"type": "string"}}})]
"""

IMPORT_FAILS = """
raise ImportError("missing dependency: leftpad")
"""

INVALID_DATASET = """
from elt_sdk import Dataset, hookimpl
@hookimpl
def elt_datasets():
    return [Dataset(name="Bad Name", json_schema={"type": "object", "properties": {}})]
"""

NO_EVENT_TIME = """
from elt_sdk import Dataset, hookimpl
@hookimpl
def elt_datasets():
    return [Dataset(name="fake_noclock", json_schema={"type": "object", "properties": {"a": {"type": "string"}}})]
"""


def test_first_party_plugins_are_discovered(registry):
    assert FIRST_PARTY <= set(registry.datasets)
    assert not registry.broken
    assert {p.name for p in registry.plugins} >= FIRST_PARTY


def test_broken_plugins_are_reported_and_others_load(fake_dist):
    make, _ = fake_dist
    make("fake_good", GOOD)
    make("fake_importfails", IMPORT_FAILS)
    make("fake_invalid", INVALID_DATASET)
    make("fake_noclock", NO_EVENT_TIME)
    reg = load_registry()
    assert FIRST_PARTY | {"fake_orders"} <= set(reg.datasets)
    broken = {b.name: b.error for b in reg.broken}
    assert set(broken) == {"fake_importfails", "fake_invalid", "fake_noclock"}
    assert "leftpad" in broken["fake_importfails"]
    assert "Bad Name" in broken["fake_invalid"]
    assert "event-time field 'event_time'" in broken["fake_noclock"]
    # an invalid plugin's hooks are unregistered, so it cannot act on other datasets
    assert "fake_invalid" not in {name for name, _ in reg.pm.list_name_plugin()}


def test_plugins_command_reports_broken_plugin_with_exit_1(fake_dist):
    make, root = fake_dist
    make("fake_importfails", IMPORT_FAILS)
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "plugins", "--json"], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    payload = json.loads(proc.stdout)
    assert {d["name"] for p in payload["plugins"] for d in p["datasets"]} >= FIRST_PARTY
    assert payload["broken"][0]["name"] == "fake_importfails"
    assert "leftpad" in payload["broken"][0]["error"]


def test_disable_by_flag_and_env(monkeypatch):
    reg = load_registry(["shipments"])
    assert "shipments" not in reg.datasets and "tracking_events" in reg.datasets
    monkeypatch.setenv("ELT_SDK_DISABLE_PLUGINS", "tracking_events, invoice_lines")
    reg = load_registry()
    assert set(reg.datasets) & FIRST_PARTY == {"shipments"}
    assert reg.disabled == ["invoice_lines", "tracking_events"]


def test_disable_flag_on_cli():
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "--disable-plugin", "invoice_lines",
                           "plugins", "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = {d["name"] for p in json.loads(proc.stdout)["plugins"] for d in p["datasets"]}
    assert "invoice_lines" not in names and "shipments" in names


def test_dataset_claimed_twice_is_refused_in_both_until_one_is_disabled(fake_dist):
    make, _ = fake_dist
    make("fake_dupe", GOOD.replace("fake_orders", "shipments"))
    reg = load_registry()
    assert "shipments" not in reg.datasets and "tracking_events" in reg.datasets
    errors = {b.name: b.error for b in reg.broken}
    assert "also declared by plugin 'fake_dupe'" in errors["shipments"]
    assert "also declared by plugin 'shipments'" in errors["fake_dupe"]
    assert load_registry(["fake_dupe"]).datasets["shipments"].plugin == "shipments"
