"""``elt-sdk plugins``: what is installed, and what failed to load."""
from __future__ import annotations

import click

from elt_sdk.cli.context import emit_json, emit_table, state


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def command(as_json: bool) -> None:
    """List dataset plugins, their datasets and versions, and broken plugins with their errors.

    Exits 1 when a plugin is broken, so CI can catch it.
    """
    reg = state().registry
    if as_json:
        emit_json({
            "plugins": [
                {"name": p.name, "distribution": p.distribution, "version": p.version,
                 "datasets": [{"name": d, "version": reg.datasets[d].version,
                               "prefix": reg.datasets[d].bronze_prefix} for d in p.datasets]}
                for p in reg.plugins
            ],
            "broken": [{"name": b.name, "distribution": b.distribution, "error": b.error} for b in reg.broken],
            "disabled": reg.disabled,
        })
    else:
        rows = [(d.name, d.version, d.plugin, reg_dist(reg, d.plugin), d.bronze_prefix)
                for d in sorted(reg.datasets.values(), key=lambda d: d.name)]
        emit_table(["dataset", "version", "plugin", "distribution", "bronze prefix"], rows)
        for b in reg.broken:
            click.echo(f"BROKEN {b.name} ({b.distribution}): {b.error}")
        for name in reg.disabled:
            click.echo(f"disabled {name}")
    if reg.broken:
        raise SystemExit(1)


def reg_dist(reg, plugin: str) -> str:
    for p in reg.plugins:
        if p.name == plugin:
            return f"{p.distribution} {p.version}"
    return "?"
