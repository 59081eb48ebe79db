"""``elt-sdk repair``: remove what interrupted commits left visible in silver."""
from __future__ import annotations

from pathlib import Path

import click

from elt_sdk.cli.context import UsageProblem, emit_json
from elt_sdk.cli.silver import silver_option, stores
from elt_sdk.cli.targeting import TargetSpec, target_options


@click.command("repair")
@click.option("--older-than", default="1h", show_default=True, metavar="DURATION",
              help="Only commits started at least this long ago (one still running is younger: 15m, 1h, 2d).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@silver_option
@target_options
def command(older_than: str, as_json: bool, silver_dir: Path | None, target: TargetSpec) -> None:
    """Delete the files of commits that stopped between putting their files in place and naming
    them current (a transform killed mid-commit, a Lambda timeout), and garbage a commit did not
    get to delete. Until then readers see those rows twice: the next commit of the same object
    removes them too; this command does it for every object at once. Safe while the pipeline
    runs (each manifest is changed by a conditional write). Exit codes: 0 done, 2 bad arguments.
    """
    from elt_sdk.commit import Committer
    from elt_sdk.timewindow import parse_duration

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise UsageProblem(f"--older-than: {exc}") from None
    silver, quarantine, where = stores(target, silver_dir)
    report = Committer(silver, quarantine).repair(older_than_s=age)
    if as_json:
        emit_json({**report, "silver": where})
    else:
        click.echo(f"repaired {report['manifests']} object(s): {report['files_removed']} leftover file(s) removed "
                   f"from {where}" if report["manifests"] else f"nothing to repair in {where}")
