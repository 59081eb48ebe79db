"""The ``elt-sdk`` command line. Each command is a module; this one only assembles the group."""
from __future__ import annotations

from pathlib import Path

import click

from elt_sdk import __version__
from elt_sdk.cli.context import CliState, RunFailure
from elt_sdk.errors import FakeRecordError


class _Group(click.Group):
    """Commands load lazily (``COMMANDS``). Ctrl-C and SIGTERM unwind the command (temporary
    folders are removed on the way) and exit 130, the shell's convention for an interrupted
    program."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str):  # noqa: ANN201 - click's signature
        if name not in COMMANDS:
            return None
        import importlib

        module, attribute, _ = COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in self.list_commands(ctx)])

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        import json
        import signal

        from elt_sdk import interrupts

        def interrupt(signum, frame):  # noqa: ANN001 - signal's signature
            interrupts.request()  # kept, should the exception below be swallowed on its way
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        previous_int = signal.getsignal(signal.SIGINT)
        if previous_int is signal.default_int_handler:  # an ignored SIGINT (nohup, `cmd &`) stays ignored
            signal.signal(signal.SIGINT, interrupt)
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            try:
                result = super().invoke(ctx)
            except FakeRecordError as exc:  # gen, bench, the demo: a plugin's fake records break its schema
                raise RunFailure(str(exc)) from None
            interrupts.check()  # a stop asked for and swallowed on the way: still an interrupted run
            return result
        except KeyboardInterrupt:
            click.echo("interrupted: stopped, temporary files removed; nothing partial was committed (a commit cut short mid-copy is finished or undone by the next one, or by elt-sdk repair)", err=True)
            ctx.exit(130)
        except click.ClickException as exc:
            # under --json, an error is JSON on stdout too (unless the result was printed already)
            if "--json" in args and not getattr(ctx.obj, "emitted_json", False):
                click.echo(json.dumps({"error": exc.format_message(), "exit_code": exc.exit_code}))
                click.echo(f"Error: {exc.format_message()}", err=True)
                ctx.exit(exc.exit_code)
            raise
        finally:
            signal.signal(signal.SIGTERM, previous)
            if previous_int is signal.default_int_handler:
                signal.signal(signal.SIGINT, previous_int)
            interrupts.clear()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="elt-sdk")
@click.option("--disable-plugin", "disabled", multiple=True, metavar="NAME",
              help="Skip this plugin (repeatable). Also: ELT_SDK_DISABLE_PLUGINS=a,b.")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Settings file (default: ./elt-sdk.toml if present).")
@click.pass_context
def main(ctx: click.Context, disabled: tuple[str, ...], config: Path | None) -> None:
    """Land JSON events as partitioned Parquet: dataset plugins, a local pipeline, a CDK deploy."""
    import sys

    from elt_sdk import logs

    logs.configure(sys.stderr, level="WARNING")  # the CLI's own output is stdout; problems go to stderr
    ctx.obj = CliState(disabled=list(disabled), config=config)


COMMANDS: dict[str, tuple[str, str, str]] = {
    # name: (module, attribute, one line of help for the command list)
    "plugins": ("elt_sdk.cli.plugins", "command", "List dataset plugins, their datasets and versions, and broken ones."),
    "gen": ("elt_sdk.cli.gen", "command", "Generate fake events for any installed dataset."),
    "transform": ("elt_sdk.cli.transform", "command", "Parse, validate, map and write local JSON / JSONL / .gz files."),
    "local": ("elt_sdk.cli.local", "command", "Run the pipeline locally: moto's server on loopback stands in for AWS."),
    "put": ("elt_sdk.cli.put", "command", "Upload local files to the targeted stack's bronze bucket."),
    "status": ("elt_sdk.cli.status", "command", "Queues, DLQ, recent objects and rows per dataset of a stack."),
    "replay": ("elt_sdk.cli.replay", "command", "Replay a dataset's bronze objects written in a window."),
    "dlq": ("elt_sdk.cli.dlq", "command", "The dead-letter queue: list, show, redrive, purge."),
    "compact": ("elt_sdk.cli.compact", "command", "Compact one silver partition, verified row by row."),
    "repair": ("elt_sdk.cli.repair", "command", "Remove what interrupted commits left visible in silver."),
    "dq": ("elt_sdk.cli.dq", "command", "Data quality: run a dataset's declared rules on a partition."),
    "query": ("elt_sdk.cli.query", "command", "Run SQL on silver with DuckDB (one view per dataset)."),
    "invoke": ("elt_sdk.cli.invoke", "command", "Run the ingest or transform handler once on an event file."),
    "event": ("elt_sdk.cli.invoke", "event", "Print a realistic event for 'elt-sdk invoke'."),
    "config": ("elt_sdk.cli.config", "command", "The pipeline's settings and where each value came from."),
    "iceberg": ("elt_sdk.cli.iceberg", "group", "Iceberg silver: snapshots, compaction, expiry, orphan files."),
    "verify": ("elt_sdk.cli.verify", "command", "Run the reference acceptance checklist on a stack."),
    "bench": ("elt_sdk.cli.bench", "command", "Measure the transform against pyarrow (and peers), in one run."),
    "new-plugin": ("elt_sdk.cli.scaffold", "new_plugin", "Generate a pip-installable dataset plugin."),
    "check-plugin": ("elt_sdk.cli.scaffold", "check_plugin", "Run the SDK's standard suite on an installed plugin."),
}
"""The commands, imported only when one runs: ``elt-sdk --help`` and every command start without
loading the others (or pyarrow, for those that do not need it)."""
