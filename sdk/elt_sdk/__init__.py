"""elt-sdk: land JSON events as query-ready Parquet, one pip-installable plugin per dataset.

Plugin authors need three names from here: ``hookimpl`` to mark hook implementations,
``Dataset`` to declare a dataset, and ``__version__``.
"""
from __future__ import annotations

import pluggy

__version__ = "0.1.0"

PROJECT = "elt_sdk"
"""pluggy project name and entry-point group: a plugin registers under ``[project.entry-points.elt_sdk]``."""

hookimpl = pluggy.HookimplMarker(PROJECT)

from elt_sdk.dataset import Dataset, DatasetError  # noqa: E402  (after the markers it may import)

__all__ = ["Dataset", "DatasetError", "PROJECT", "__version__", "hookimpl"]
