"""elt-sdk: land JSON events as query-ready Parquet, one pip-installable plugin per dataset.

The public API, what a plugin may import, is ``__all__`` below and the modules it names; it is
kept stable (a rename ships a deprecation alias first). Everything else is internal. Importing
``elt_sdk`` is cheap: names that need pyarrow load on first use.

- declaring a dataset and its hooks: ``hookimpl``, ``Dataset``, ``DatasetError``, ``PROJECT``
- what hooks receive and return: ``RawBlock``, ``ParsedBatch``, ``ValidatedBatch``, ``Reject``
- realistic fake values for ``elt_fake_records``: ``CITIES``, ``event_time``, ``fake_record``,
  ``fake_value``
- Arrow compute for batch maps, without ``pyarrow.compute``'s import cost: ``elt_sdk.kernels``
- tests for free: ``elt_sdk.testing`` (strategies, harness, ``DatasetSuite``)
"""
from __future__ import annotations

from typing import Any

import pluggy

__version__ = "0.2.0"

PROJECT = "elt_sdk"
"""pluggy project name and entry-point group: a plugin registers under ``[project.entry-points.elt_sdk]``."""

hookimpl = pluggy.HookimplMarker(PROJECT)

_LAZY = {
    "Dataset": "elt_sdk.dataset", "DatasetError": "elt_sdk.dataset",
    "RawBlock": "elt_sdk.batch", "ParsedBatch": "elt_sdk.batch", "ValidatedBatch": "elt_sdk.batch",
    "Reject": "elt_sdk.batch",
    "CITIES": "elt_sdk.fake", "event_time": "elt_sdk.fake", "fake_record": "elt_sdk.fake", "fake_value": "elt_sdk.fake",
    "kernels": "elt_sdk.kernels", "testing": "elt_sdk.testing",
}

__all__ = ["CITIES", "Dataset", "DatasetError", "PROJECT", "ParsedBatch", "RawBlock", "Reject", "ValidatedBatch",
           "__version__", "event_time", "fake_record", "fake_value", "hookimpl", "kernels", "testing"]


def __getattr__(name: str) -> Any:
    """Load the public names that need pyarrow (or hypothesis) only when a plugin asks for them."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'elt_sdk' has no attribute {name!r}")
    import importlib

    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
