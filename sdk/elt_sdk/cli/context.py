"""What every command shares: the plugin registry, one-line errors, table and JSON output."""
from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import click

if TYPE_CHECKING:
    from elt_sdk.plugins import Registry
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
    emitted_json: bool = False
    """A command printed its JSON result: an error after it goes to stderr only."""
    _registry: "Registry | None" = None
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
    def registry(self) -> "Registry":
        if self._registry is None:
            from elt_sdk.plugins import load_registry

            self._registry = load_registry(self.disabled, bronze_prefix=self.settings.bronze_prefix)
            warn_unknown_disabled(self.disabled)
        return self._registry


def warn_unknown_disabled(names: Sequence[str]) -> None:
    """``--disable-plugin NAME`` for a plugin that is not installed is most likely a typo: say so."""
    from importlib.metadata import entry_points

    from elt_sdk import PROJECT

    installed = sorted({ep.name for ep in entry_points(group=PROJECT)})
    for name in names:
        if name not in installed:
            click.echo(f"warning: --disable-plugin {name}: no installed plugin is called {name!r} "
                       f"(installed: {', '.join(installed) or 'none'})", err=True)


def state() -> CliState:
    return click.get_current_context().find_root().obj


def emit_json(payload: Any) -> None:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root().obj if ctx is not None else None
    if isinstance(root, CliState):
        root.emitted_json = True
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


def progress(items: Sequence[Any] | None, label: str, enabled: bool = True, *, length: int | None = None,
             bytes_: bool = False):
    """A progress bar on stderr over ``items`` (or ``length`` steps, advanced by ``update``);
    none when ``enabled`` is false (``--json``) or stderr is not a terminal. ``bytes_`` shows
    the position in MiB."""
    if not enabled or not sys.stderr.isatty():
        return contextlib.nullcontext(_Silent(items))
    fmt = (lambda b: f"{b / 1048576:,.1f} MiB") if bytes_ else None
    bar = click.progressbar(items, length=length, label=label, file=sys.stderr, show_pos=not bytes_,
                            show_percent=True, item_show_func=None)
    if fmt is not None:
        bar.format_pos = lambda: f"{fmt(bar.pos)}/{fmt(bar.length or 0)}"  # type: ignore[method-assign]
        bar.show_pos = True
    return bar


class _Silent(list):
    """What ``progress`` yields when no bar is shown: the items, and an ``update`` that does nothing."""

    def __init__(self, items: Sequence[Any] | None):
        super().__init__(items or [])

    def update(self, n: int, current_item: Any = None) -> None:  # noqa: ARG002
        return None
