"""The plugin manifest a Lambda asset carries (``elt_sdk.bundled``): written by the bundler from the
installed plugins, it must route and load exactly as entry-point discovery does."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from elt_sdk import bundled, plugins
from elt_sdk.plugins import load_registry

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "deploy"))

from elt_deploy.bundle import plugin_manifest  # noqa: E402

KEYS = ["bronze/shipments/2025/a.jsonl", "bronze/tracking_events/x.json.gz", "bronze/invoice_lines/y.jsonl",
        "bronze/unknown/z.jsonl", "bronze/a.jsonl", "other/shipments/a.jsonl", "landing/shipments/a.jsonl",
        "landing/invoice_lines/deep/b.jsonl", "bronze/shipmentsX/a.jsonl"]


@pytest.fixture
def manifest(tmp_path, monkeypatch) -> Path:
    """The manifest the bundler writes, installed where ``elt_sdk.bundled`` looks for it."""
    path = tmp_path / "bundled.json"
    path.write_text(json.dumps(plugin_manifest()))
    monkeypatch.setattr(bundled, "MANIFEST", path)
    return path


def test_no_manifest_means_entry_point_discovery(tmp_path, monkeypatch):
    monkeypatch.setattr(bundled, "MANIFEST", tmp_path / "absent.json")
    assert bundled.entry_points() is None and bundled.load_routes() is None
    assert set(load_registry().datasets) >= {"shipments", "tracking_events", "invoice_lines"}


@pytest.mark.parametrize("root", ["bronze/", "landing/"])
def test_manifest_routes_every_key_as_the_registry_does(manifest, monkeypatch, root):
    monkeypatch.setenv("ELT_BRONZE_PREFIX", root)
    registry = load_registry()
    routes = bundled.load_routes()
    assert routes is not None and {r.name for r in routes.routes} == set(registry.datasets)
    for key in KEYS:
        by_registry = registry.route_key(key)
        by_manifest = routes.route_key(key)
        assert (by_manifest.name if by_manifest else None) == (by_registry.name if by_registry else None), key
    for ds in registry.datasets.values():  # the prefix rule is Dataset.bronze_prefix's
        assert bundled.dataset_prefix(ds.name, ds.prefix, root) == ds.bronze_prefix


def test_manifest_honours_disabled_plugins(manifest, monkeypatch):
    monkeypatch.setenv(plugins.DISABLE_ENV, "shipments")
    routes = bundled.load_routes()
    assert routes.route_key("bronze/shipments/a.jsonl") is None
    assert routes.route_key("bronze/invoice_lines/a.jsonl").name == "invoice_lines"
    assert "shipments" not in load_registry().datasets


def test_registry_from_the_manifest_equals_the_discovered_one(manifest, monkeypatch):
    with_manifest = load_registry()
    monkeypatch.setattr(bundled, "MANIFEST", manifest.parent / "absent.json")
    discovered = load_registry()
    assert set(with_manifest.datasets) == set(discovered.datasets)
    assert [(p.name, p.distribution, p.version, p.datasets) for p in with_manifest.plugins] == \
           [(p.name, p.distribution, p.version, p.datasets) for p in discovered.plugins]
    assert with_manifest.broken == discovered.broken == []


def test_a_manifest_entry_that_does_not_import_is_a_broken_plugin(manifest):
    data = json.loads(manifest.read_text())
    data["entry_points"].append({"name": "ghost", "value": "elt_ghost_plugin:plugin", "distribution": "elt-ghost",
                                 "version": "0.1"})
    manifest.write_text(json.dumps(data))
    registry = load_registry()
    [broken] = registry.broken
    assert (broken.name, broken.distribution) == ("ghost", "elt-ghost")
    assert "import failed: ModuleNotFoundError" in broken.error
    assert {"shipments", "tracking_events", "invoice_lines"} <= set(registry.datasets)  # the others load


def test_an_entry_point_value_with_attributes_loads_like_importlib_metadatas():
    ep = bundled.BundledEntryPoint("x", "elt_sdk.bundled:Routes.route_key", bundled.Dist("elt-sdk", "0"))
    assert ep.load() is bundled.Routes.route_key


def test_a_manifest_of_another_format_is_refused_with_what_to_do(manifest):
    manifest.write_text(json.dumps({"format": 99, "entry_points": [], "datasets": []}))
    with pytest.raises(RuntimeError, match="format 99.*rebuild the asset"):
        bundled.entry_points()


def test_the_ingest_handler_routes_with_the_manifest_when_there_is_one(manifest, monkeypatch):
    from elt_sdk.aws import handlers

    monkeypatch.setenv("ELT_QUEUE_URL", "http://127.0.0.1:9/queue")
    monkeypatch.setenv("ELT_IDEMPOTENCY_TABLE", "t")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-2")
    handlers.reset()
    try:
        assert isinstance(handlers._ingestor().registry, bundled.Routes)
        monkeypatch.setattr(bundled, "MANIFEST", manifest.parent / "absent.json")
        handlers.reset()
        assert isinstance(handlers._ingestor().registry, plugins.Registry)
    finally:
        handlers.reset()
