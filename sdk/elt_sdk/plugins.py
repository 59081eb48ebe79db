"""Plugin discovery that survives a broken plugin, and dispatch by ownership.

pluggy's ``load_setuptools_entrypoints`` stops at the first plugin that fails to import; here
each entry point is loaded on its own, and a plugin that fails to import, or declares an invalid
dataset, is reported with its name and error while the others load.

A *dataset plugin* (one that declares datasets) is called only for its own datasets:
``Registry.hooks(dataset)`` is a hook relay without the other dataset plugins, so a plugin that
answers every call (no "is this my dataset?" guard) cannot take over another dataset. Plugins
that declare no dataset are cross-cutting and see every dataset; the SDK's defaults answer last.
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import pluggy

from elt_sdk import PROJECT, bundled, hookspecs
from elt_sdk.bundled import DISABLE_ENV, disabled_from_env  # noqa: F401 (DISABLE_ENV: its old home)
from elt_sdk.dataset import Dataset, DatasetError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint


class UnknownDataset(LookupError):
    def __init__(self, name: str, known: Iterable[str]):
        known = sorted(known)
        super().__init__(
            f"unknown dataset {name!r}; installed datasets: {', '.join(known) or 'none'}"
            " (see 'elt-sdk plugins')"
        )


@dataclass
class PluginInfo:
    name: str
    distribution: str
    version: str
    datasets: list[str] = field(default_factory=list)


@dataclass
class BrokenPlugin:
    name: str
    distribution: str
    error: str
    detail: str = ""


@dataclass
class Registry:
    """Loaded plugins, their datasets, and the hook relay that runs them."""

    pm: pluggy.PluginManager
    datasets: dict[str, Dataset]
    plugins: list[PluginInfo]
    broken: list[BrokenPlugin]
    disabled: list[str]

    _callers: dict[str, "DatasetHooks"] = field(default_factory=dict, repr=False)

    @property
    def hook(self) -> Any:
        """Every plugin's hooks, whoever owns the dataset: for cross-cutting calls only. Calls for one
        dataset go through ``hooks(dataset)``."""
        return self.pm.hook

    def hooks(self, dataset: "Dataset | str") -> "DatasetHooks":
        """The hook relay for one dataset: its own plugin, the cross-cutting plugins, the defaults."""
        name = dataset if isinstance(dataset, str) else dataset.name
        callers = self._callers.get(name)
        if callers is None:
            owner = self.datasets[name].plugin if name in self.datasets else None
            others = [self.pm.get_plugin(p.name) for p in self.plugins if p.datasets and p.name != owner]
            callers = self._callers[name] = DatasetHooks(self.pm, [o for o in others if o is not None])
        return callers

    def dataset(self, name: str) -> Dataset:
        try:
            return self.datasets[name]
        except KeyError:
            raise UnknownDataset(name, self.datasets) from None

    def route_key(self, key: str) -> Dataset | None:
        """The dataset whose bronze prefix is the longest match for ``key``, if any."""
        best = None
        for ds in self.datasets.values():
            if key.startswith(ds.bronze_prefix) and (best is None or len(ds.bronze_prefix) > len(best.bronze_prefix)):
                best = ds
        return best

    def route_record(self, record: Any) -> Dataset | None:
        """The dataset a record of a mixed object belongs to, by its discriminator field."""
        if not isinstance(record, dict):
            return None
        for ds in self.datasets.values():
            if record.get(ds.discriminator) == ds.route_value:
                return ds
        return None


class DatasetHooks:
    """The hooks of ``hookspecs`` as one dataset sees them (pluggy subset callers, built once)."""

    def __init__(self, pm: pluggy.PluginManager, exclude: list[object]):
        self._pm, self._exclude = pm, exclude

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("elt_"):
            raise AttributeError(name)
        caller = self._pm.subset_hook_caller(name, self._exclude) if self._exclude else getattr(self._pm.hook, name)
        setattr(self, name, caller)
        return caller


def _dist_of(ep: "EntryPoint | bundled.BundledEntryPoint") -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (dist.name, dist.version) if dist is not None else ("?", "?")


def load_registry(disabled: Iterable[str] = (), *, extra_plugins: Iterable[tuple[str, object]] = (),
                  use_entry_points: bool = True, bronze_prefix: str | None = None) -> Registry:
    """Load the built-in defaults, every ``elt_sdk`` entry point not disabled, and ``extra_plugins``.

    ``disabled`` adds to the names in ``ELT_SDK_DISABLE_PLUGINS``. Datasets live under
    ``bronze_prefix`` (default: the ``ELT_BRONZE_PREFIX`` environment variable, else ``bronze/``).
    """
    from elt_sdk import defaults, layout

    root = bronze_prefix or os.environ.get("ELT_BRONZE_PREFIX") or layout.BRONZE_PREFIX

    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    defaults_plugins = defaults.builtin_plugins()
    for name, plugin in defaults_plugins:
        pm.register(plugin, name=name)

    off = sorted(set(disabled) | set(disabled_from_env()))
    broken: list[BrokenPlugin] = []
    candidates: list[tuple[str, object, str, str]] = []
    if use_entry_points:
        found: Iterable[Any] | None = bundled.entry_points()  # in a Lambda asset: recorded when it was built
        if found is None:
            from importlib.metadata import entry_points  # ~30 ms to import: only where no manifest exists

            found = entry_points(group=PROJECT)
        for ep in sorted(found, key=lambda e: e.name):
            dist, version = _dist_of(ep)
            if ep.name in off:
                continue
            try:
                candidates.append((ep.name, ep.load(), dist, version))
            except Exception as exc:  # any import-time failure is the plugin's, not ours
                broken.append(BrokenPlugin(ep.name, dist, f"import failed: {type(exc).__name__}: {exc}",
                                           traceback.format_exc(limit=3)))
    for name, obj in extra_plugins:
        if name not in off:
            candidates.append((name, obj, "(in-process)", "-"))

    declared: list[tuple[str, object, str, str, list[Dataset]]] = []
    for name, obj, dist, version in candidates:
        try:
            pm.register(obj, name=name)
        except Exception as exc:
            broken.append(BrokenPlugin(name, dist, f"registration failed: {type(exc).__name__}: {exc}"))
            continue
        try:
            mine = []
            for ds in _declared(pm, obj):
                if not isinstance(ds, Dataset):
                    raise DatasetError(f"elt_datasets returned {type(ds).__name__}, not elt_sdk.Dataset")
                ds.check()
                mine.append(ds.with_plugin(name, root))
        except Exception as exc:
            pm.unregister(obj)
            broken.append(BrokenPlugin(name, dist, f"invalid dataset: {exc}" if isinstance(exc, DatasetError)
                                       else f"elt_datasets failed: {type(exc).__name__}: {exc}"))
            continue
        declared.append((name, obj, dist, version, mine))

    # A dataset claimed twice is refused in both plugins: silently picking one would route data
    # by install order.
    owners: dict[str, list[str]] = {}
    for name, _, _, _, mine in declared:
        for ds in mine:
            owners.setdefault(ds.name, []).append(name)
    datasets: dict[str, Dataset] = {}
    infos: list[PluginInfo] = []
    for name, obj, dist, version, mine in declared:
        clash = [ds.name for ds in mine if len(owners[ds.name]) > 1]
        if clash:
            pm.unregister(obj)
            others = sorted({o for ds in clash for o in owners[ds] if o != name})
            broken.append(BrokenPlugin(name, dist, f"invalid dataset: {', '.join(map(repr, clash))} is also "
                                       f"declared by plugin {', '.join(map(repr, others))}; disable one"))
            continue
        for ds in mine:
            datasets[ds.name] = ds
        infos.append(PluginInfo(name, dist, version, [d.name for d in mine]))
    registry = Registry(pm=pm, datasets=datasets, plugins=infos, broken=broken, disabled=off)
    for _, plugin in defaults_plugins:
        if hasattr(plugin, "bind"):
            plugin.bind(registry)
    return registry


def _declared(pm: pluggy.PluginManager, plugin: object) -> list[Dataset]:
    """Call only ``plugin``'s own ``elt_datasets``, so errors are attributed to it."""
    result: list[Dataset] = []
    for impl in pm.hook.elt_datasets.get_hookimpls():
        if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
            result.extend(impl.function() or [])
    return result
