"""Old names of ``elt_sdk.store`` (``Sink`` is now ``Store``, ``LocalSink`` is ``LocalStore``)."""
from __future__ import annotations

from elt_sdk.store import LocalStore as LocalSink  # noqa: F401
from elt_sdk.store import Store as Sink  # noqa: F401
