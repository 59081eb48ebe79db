"""``elt-sdk config show``: the merged settings and where each value came from."""
from __future__ import annotations

import click

from elt_sdk.cli.context import UsageProblem, emit_json, emit_table, state


@click.group("config")
def command() -> None:
    """The pipeline's settings (defaults < elt-sdk.toml < ELT_* environment < flags)."""


@command.command("show")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: value, origin, variable, allowed values, help.")
def show(as_json: bool) -> None:
    """Every setting's value and its origin: default, the settings file, or an environment variable."""
    from elt_sdk.settings import CONFIG_FILE, Settings, SettingsError

    cfg_path = state().config
    try:
        settings, origins = Settings.load_with_origins(cfg_path)
    except SettingsError as exc:
        raise UsageProblem(str(exc)) from None
    described = {d["name"]: d for d in Settings.describe()}
    values = settings.to_dict()
    if as_json:
        from pathlib import Path

        file = Path(cfg_path) if cfg_path else Path(CONFIG_FILE)
        emit_json({"config_file": str(file) if file.is_file() else None,
                   "settings": {n: {"value": values[n], "origin": origins[n], "env": described[n]["env"],
                                    "allowed": described[n]["allowed"], "help": described[n]["help"]}
                                for n in values}})
        return
    emit_table(["setting", "value", "from", "variable"],
               [(n, "-" if values[n] is None else values[n], origins[n], described[n]["env"]) for n in values])
