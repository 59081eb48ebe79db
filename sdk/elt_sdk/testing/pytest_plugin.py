"""The pytest plugin elt-sdk registers (``pytest11`` entry point): an ``elt_registry`` fixture
and a header line naming the installed datasets. Imports nothing heavy until used."""
from __future__ import annotations

import pytest


def pytest_report_header(config: pytest.Config) -> str:
    from elt_sdk.plugins import load_registry

    reg = load_registry()
    line = f"elt-sdk datasets: {', '.join(sorted(reg.datasets)) or 'none'}"
    if reg.broken:
        line += f"; BROKEN plugins: {', '.join(b.name for b in reg.broken)}"
    return line


@pytest.fixture(scope="session")
def elt_registry():
    """The installed plugins' registry, loaded once per session."""
    from elt_sdk.plugins import load_registry

    return load_registry()
