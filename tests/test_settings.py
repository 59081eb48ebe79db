"""Settings: every value from every source passes one type and range check; a bad one is one line
naming the setting, where it came from and what is allowed."""
from __future__ import annotations

import subprocess
import sys

import pytest

from elt_sdk.settings import Settings, SettingsError


def write(tmp_path, text: str):
    cfg = tmp_path / "elt-sdk.toml"
    cfg.write_text(text)
    return cfg


@pytest.mark.parametrize("toml, message", [
    ('[pipeline]\nbatch_size = "ten"\n', r"setting batch_size = 'ten' \(from .*elt-sdk.toml\): expected int from 1 to 10000"),
    ("[pipeline]\nmax_receive_count = -1\n", r"setting max_receive_count = -1 \(from .*\): expected int from 1 to 1000"),
    ("[pipeline]\nchunk_bytes = 0\n", r"setting chunk_bytes = 0 .*expected int from 1024"),
    ("[pipeline]\nglue_enabled = 1\n", r"setting glue_enabled = 1 .*expected true or false"),
    ("[pipeline]\nbatch_size = true\n", r"setting batch_size = True .*expected int"),
    ('[pipeline]\narchitecture = "sparc"\n', r"expected one of arm64, x86_64"),
    ('[pipeline]\nbronze_prefix = "bronze"\n', r"setting bronze_prefix = 'bronze' .*matching"),
    ("[pipline]\nbatch_size = 3\n", r"unknown table or key 'pipline'"),
    ("batch_size = 3\n", r"unknown table or key 'batch_size'"),
    ("[pipeline]\nbatchsize = 3\n", r"unknown setting\(s\) batchsize in \[pipeline\] \(did you mean batch_size\?\)"),
])
def test_bad_file_values_are_refused_with_setting_source_and_range(tmp_path, toml, message):
    with pytest.raises(SettingsError, match=message):
        Settings.load(write(tmp_path, toml), env={})


@pytest.mark.parametrize("env, message", [
    ({"ELT_BATCH_SIZE": "0"}, r"batch_size = 0 \(from environment ELT_BATCH_SIZE\): expected int from 1 to 10000"),
    ({"ELT_GLUE_ENABLED": "maybe"}, r"glue_enabled = 'maybe' \(from environment ELT_GLUE_ENABLED\): expected true or false"),
    ({"ELT_QUARANTINE_ALARM_RATIO": "2"}, r"quarantine_alarm_ratio = 2.0 .*from 0.0 to 1.0"),
    ({"ELT_LOG_RETENTION_DAYS": "4"}, r"log_retention_days = 4 .*one of 1, 3, 5, 7"),
])
def test_bad_environment_values_are_refused(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.load(env=env)


def test_flags_and_cdk_context_pass_the_same_check(tmp_path):
    with pytest.raises(SettingsError, match=r"batch_size = 10001 \(from flag\)"):
        Settings.load(env={}, batch_size=10001)
    with pytest.raises(SettingsError, match=r"max_receive_count = 'x' \(from CDK context max_receive_count\)"):
        Settings.coerce({"max_receive_count": "x"})
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.coerce({"bogus": "1"})
    with pytest.raises(SettingsError, match=r"transform_timeout_s = 1 \(from a Settings argument\)"):
        Settings(transform_timeout_s=1)
    assert Settings.coerce({"glue_enabled": "true", "transform_reserved_concurrency": "none"}) == \
        {"glue_enabled": True, "transform_reserved_concurrency": None}


def test_origins_say_where_each_value_came_from(tmp_path):
    cfg = write(tmp_path, "[pipeline]\nbatch_size = 7\nmax_receive_count = 3\n")
    settings, origins = Settings.load_with_origins(cfg, env={"ELT_MAX_RECEIVE_COUNT": "4"}, transform_timeout_s=100)
    assert (settings.batch_size, settings.max_receive_count, settings.transform_timeout_s) == (7, 4, 100)
    assert origins["batch_size"] == str(cfg)
    assert origins["max_receive_count"] == "env ELT_MAX_RECEIVE_COUNT"
    assert origins["transform_timeout_s"] == "flag"
    assert origins["region"] == "default"


def test_a_bad_setting_is_one_line_and_exit_2_on_the_command_line(tmp_path):
    write(tmp_path, '[pipeline]\nbatch_size = "ten"\n')
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "local", "run", "--records", "5"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "setting batch_size = 'ten'" in lines[0] and "expected int from 1 to 10000" in lines[0]


def test_every_command_loads_lazily_and_is_listed():
    """The CLI imports a command's module only when it runs; the table names every command."""
    import importlib
    import pkgutil

    import click

    import elt_sdk.cli as cli

    listed = {(module, attr) for module, attr, _ in cli.COMMANDS.values()}
    found = set()
    for info in (i for i in pkgutil.iter_modules(cli.__path__) if not i.name.startswith("_")):
        module = importlib.import_module(f"elt_sdk.cli.{info.name}")
        for attr, value in vars(module).items():
            if isinstance(value, click.Command) and value.__module__ == module.__name__ and not getattr(value, "hidden", False):
                if not any(value is getattr(importlib.import_module(m), a) for m, a in listed if m == module.__name__):
                    # a subcommand of a group is reached through its group
                    parents = [v for v in vars(module).values() if isinstance(v, click.Group) and value in v.commands.values()]
                    assert parents, f"{module.__name__}.{attr} is not in elt_sdk.cli.COMMANDS"
                found.add((module.__name__, attr))
    for name in cli.COMMANDS:
        proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", name, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "Usage: elt-sdk" in proc.stdout, (name, proc.stderr)
    code = "import sys, elt_sdk.cli; print('pyarrow' in sys.modules, 'elt_sdk.pipeline' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.split() == ["False", "False"]
