"""The ``elt-sdk`` command line. Each command is a module; this one only assembles the group."""
from __future__ import annotations

import click

from elt_sdk import __version__
from elt_sdk.cli.context import CliState


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="elt-sdk")
@click.option("--disable-plugin", "disabled", multiple=True, metavar="NAME",
              help="Skip this plugin (repeatable). Also: ELT_SDK_DISABLE_PLUGINS=a,b.")
@click.pass_context
def main(ctx: click.Context, disabled: tuple[str, ...]) -> None:
    """Land JSON events as partitioned Parquet: dataset plugins, a local pipeline, a CDK deploy."""
    import sys

    from elt_sdk import logs

    logs.configure(sys.stderr, level="WARNING")  # the CLI's own output is stdout; problems go to stderr
    ctx.obj = CliState(disabled=list(disabled))


def _register() -> None:
    from elt_sdk.cli import bench, gen, local, plugins, scaffold, transform, verify

    for module in (plugins, gen, transform, local, verify, bench):
        main.add_command(module.command)
    main.add_command(scaffold.new_plugin)
    main.add_command(scaffold.check_plugin)


_register()
