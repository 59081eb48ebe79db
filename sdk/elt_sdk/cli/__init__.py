"""The ``elt-sdk`` command line. Each command is a module; this one only assembles the group."""
from __future__ import annotations

from pathlib import Path

import click

from elt_sdk import __version__
from elt_sdk.cli.context import CliState


class _Group(click.Group):
    """Ctrl-C and SIGTERM unwind the command (temporary folders are removed on the way) and exit
    130, the shell's convention for an interrupted program."""

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        import json
        import signal

        def interrupt(signum, frame):  # noqa: ANN001 - signal's signature
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        args = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            click.echo("interrupted: stopped, temporary files removed; nothing partial was committed", err=True)
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


def _register() -> None:
    from elt_sdk.cli import (bench, compact, config, dlq, dq, gen, iceberg, invoke, local, plugins, put, query, replay,
                             scaffold, status, transform, verify)

    for module in (plugins, gen, transform, local, put, status, replay, dlq, compact, dq, query, invoke, config,
                   verify, bench):
        main.add_command(module.command)
    main.add_command(invoke.event)
    main.add_command(iceberg.group)
    main.add_command(scaffold.new_plugin)
    main.add_command(scaffold.check_plugin)


_register()
