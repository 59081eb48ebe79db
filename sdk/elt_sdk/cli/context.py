"""What every command shares: the plugin registry, one-line errors, table and JSON output."""
from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import click

from elt_sdk.plugins import Registry, load_registry

if TYPE_CHECKING:
    from elt_sdk.settings import Settings


class UsageProblem(click.ClickException):
    """Bad input from the user (path, dataset, option): one line, exit code 2."""

    exit_code = 2


class RunFailure(click.ClickException):
    """The command ran but part of the work failed: exit code 1."""

    exit_code = 1


@dataclass
class CliState:
    disabled: list[str] = field(default_factory=list)
    config: Path | None = None
    _registry: Registry | None = None
    _settings: Any = None

    @property
    def settings(self) -> "Settings":
        """The merged settings (file, environment); a bad one is a usage error (exit 2)."""
        if self._settings is None:
            from elt_sdk.settings import Settings, SettingsError

            try:
                self._settings = Settings.load(self.config)
            except SettingsError as exc:
                raise UsageProblem(str(exc)) from None
        return self._settings

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = load_registry(self.disabled, bronze_prefix=self.settings.bronze_prefix)
        return self._registry


def state() -> CliState:
    return click.get_current_context().find_root().obj


def emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        click.echo("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            click.echo("  ".join("-" * w for w in widths))


def warn_broken(registry: Registry) -> None:
    for b in registry.broken:
        click.echo(f"warning: plugin {b.name} ({b.distribution}) not loaded: {b.error}", err=True)


def progress(items: Sequence[Any], label: str, enabled: bool = True):
    """A progress bar on stderr; none when ``enabled`` is false (``--json``) or stderr is not a terminal."""
    if not enabled or not sys.stderr.isatty():
        return contextlib.nullcontext(items)
    return click.progressbar(items, label=label, file=sys.stderr, show_pos=True)
