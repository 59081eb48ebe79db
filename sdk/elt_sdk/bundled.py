"""The plugin manifest a Lambda asset carries: ``elt_sdk/bundled.json``, written by the deploy
bundler (``deploy/elt_deploy/bundle.py``) with each plugin's entry point and each dataset's
bronze prefix, as installed where the asset was built.

Why: in Lambda every millisecond of a cold start is paid again. With the manifest, finding the
plugins needs no ``importlib.metadata`` (~30 ms to import, plus a scan of every dist-info), and
ingest routes a key to its dataset without importing any plugin, pyarrow or fastjsonschema (its
asset carries none of them). Without a manifest (a pip-installed SDK, the CLI, the local runtime)
nothing changes: plugins are found through their entry points and ingest uses the registry.
This module imports nothing heavy.
"""
from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from elt_sdk import layout

MANIFEST = Path(__file__).with_name("bundled.json")
FORMAT = 1
DISABLE_ENV = "ELT_SDK_DISABLE_PLUGINS"
"""Comma-separated plugin names to skip, e.g. ``ELT_SDK_DISABLE_PLUGINS=masking,shipments``."""


@dataclass(frozen=True)
class Dist:
    name: str
    version: str


@dataclass(frozen=True)
class BundledEntryPoint:
    """An ``elt_sdk`` entry point as the bundler recorded it; ``load()`` works as importlib.metadata's."""

    name: str
    value: str
    dist: Dist

    def load(self) -> Any:
        module, _, attrs = self.value.partition(":")
        obj: Any = importlib.import_module(module.strip())
        for attr in filter(None, attrs.strip().split(".")):
            obj = getattr(obj, attr)
        return obj


def read(path: Path | None = None) -> dict[str, Any] | None:
    """The manifest, or None when this SDK was not installed by the bundler."""
    path = path or MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if data.get("format") != FORMAT:
        raise RuntimeError(f"{path}: plugin manifest format {data.get('format')!r}, this SDK reads {FORMAT}: "
                           "rebuild the asset (make synth)")
    return data


def entry_points(path: Path | None = None) -> list[BundledEntryPoint] | None:
    """The bundled plugins' entry points, or None (find them through package metadata)."""
    data = read(path)
    if data is None:
        return None
    return [BundledEntryPoint(e["name"], e["value"], Dist(e["distribution"], e["version"])) for e in data["entry_points"]]


def disabled_from_env() -> list[str]:
    return [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]


def dataset_prefix(name: str, prefix: str | None, bronze_root: str) -> str:
    """A dataset's bronze prefix: the ``prefix`` its plugin declared, else ``<bronze_root><name>/``
    (the rule ``Dataset.bronze_prefix`` follows; a test keeps the two equal)."""
    return prefix if prefix is not None else f"{bronze_root}{name}/"


@dataclass(frozen=True)
class Route:
    """What ingest needs of a dataset: its name and where its objects live."""

    name: str
    bronze_prefix: str


class Routes:
    """Key -> dataset routing from the manifest, the same answers as ``Registry.route_key``."""

    def __init__(self, routes: Iterable[Route]):
        self.routes = list(routes)

    def route_key(self, key: str) -> Route | None:
        """The dataset whose bronze prefix is the longest match for ``key``, if any."""
        best = None
        for r in self.routes:
            if key.startswith(r.bronze_prefix) and (best is None or len(r.bronze_prefix) > len(best.bronze_prefix)):
                best = r
        return best


def load_routes(path: Path | None = None, *, bronze_prefix: str | None = None) -> Routes | None:
    """The manifest's datasets under ``bronze_prefix`` (default: ``ELT_BRONZE_PREFIX``, else
    ``bronze/``), less the plugins disabled by ``ELT_SDK_DISABLE_PLUGINS``; None without a manifest."""
    data = read(path)
    if data is None:
        return None
    root = bronze_prefix or os.environ.get("ELT_BRONZE_PREFIX") or layout.BRONZE_PREFIX
    off = set(disabled_from_env())
    return Routes(Route(d["name"], dataset_prefix(d["name"], d["prefix"], root))
                  for d in data["datasets"] if d["plugin"] not in off)
