"""``elt-sdk compact``: one silver partition's small files into a few large ones."""
from __future__ import annotations

from pathlib import Path

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, state
from elt_sdk.cli.silver import silver_option, silver_store
from elt_sdk.cli.targeting import TargetSpec, target_options
from elt_sdk.plugins import UnknownDataset


@click.command("compact")
@click.option("--dataset", "-d", required=True, help="The dataset.")
@click.option("--dt", required=True, metavar="DATE", help="The partition's date (YYYY-MM-DD).")
@click.option("--target-mb", type=click.FloatRange(0.001), default=128, show_default=True,
              help="Size of each compacted file.")
@click.option("--in-place", is_flag=True,
              help="Rewrite silver itself, under the commit protocol (default: write to --output-prefix).")
@click.option("--output-prefix", default="silver_compacted/", show_default=True,
              help="Where out-of-place outputs go (<prefix>/<dataset>/dt=<dt>/).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")
@silver_option
@target_options
def command(dataset: str, dt: str, target_mb: float, in_place: bool, output_prefix: str, as_json: bool,
            silver_dir: Path | None, target: TargetSpec) -> None:
    """Compact partition DATASET/dt=DT: stream its live files (each object's current version, and
    earlier compacted files) row group by row group into files of about --target-mb, and compare
    the outputs with the inputs row by row before anything is removed.

    Out of place (the default) writes <output prefix>/<dataset>/dt=<dt>/part-NNNNN.parquet and
    leaves silver as it is. --in-place replaces the partition's files: the partition manifest
    records which rows of each compacted file belong to which object version, so a later version
    of an object still replaces its rows; an interrupted run is finished by the next one (run the
    command again). On Iceberg silver the day is rewritten in one snapshot (as 'elt-sdk iceberg
    compact'). Exit codes: 0 done (or nothing to do), 1 failed or busy, 2 bad arguments.
    """
    from datetime import date

    from elt_sdk import compaction

    try:
        schema = state().registry.dataset(dataset).arrow_schema  # files of an older schema are left apart
        date.fromisoformat(dt)
    except UnknownDataset as exc:
        raise UsageProblem(str(exc)) from None
    except ValueError:
        raise UsageProblem(f"--dt {dt!r} is not a date (YYYY-MM-DD)") from None
    from elt_sdk.cli.silver import iceberg_silver
    from elt_sdk.query import database_name

    found = iceberg_silver(target, silver_dir, database_name(state().settings.name_prefix))
    if found is not None:  # Iceberg silver: the day rewritten in one snapshot ('elt-sdk iceberg compact')
        from elt_sdk.iceberg import maintenance

        warehouse, store, where = found
        try:
            ice = maintenance.compact_day(warehouse, store, dataset, dt, target_bytes=int(target_mb * (1 << 20)))
        except (maintenance.MaintenanceConflict, LookupError) as exc:
            raise RunFailure(str(exc)) from None
        if as_json:
            emit_json({**ice.to_dict(), "silver": where})
        else:
            click.echo(ice.note or f"compacted {dataset} dt={dt} in one snapshot ({ice.snapshot}): {ice.files_before} "
                                   f"file(s) -> {ice.files_after}, {ice.rows:,} rows, in {ice.seconds:.2f}s")
        return
    store, where = silver_store(target, silver_dir)
    try:
        report = compaction.compact(store, dataset, dt, in_place=in_place, target_bytes=target_mb * (1 << 20),
                                    output_prefix=output_prefix, schema=schema)
    except compaction.CompactionError as exc:
        raise RunFailure(str(exc)) from None
    payload = {**report.to_dict(), "silver": where}
    if as_json:
        emit_json(payload)
        return
    if report.recovered:
        click.echo(f"an interrupted compaction of this partition was found: {report.recovered}")
    if report.nothing_to_do:
        click.echo(f"nothing to compact in {dataset} dt={dt} in {where}: "
                   f"{report.input_files} small live file(s), {report.files_after or report.input_files} file(s) in all"
                   " (live: named current by an object's commit record under _elt/objects/)")
        return
    click.echo(f"compacted {dataset} dt={dt} {'in place' if in_place else 'to ' + output_prefix}: "
               f"{report.input_files} file(s) -> {report.output_files}, {report.rows:,} rows verified equal, "
               f"{report.bytes_in:,} -> {report.bytes_out:,} bytes in {report.seconds:.2f}s"
               + (f"; the partition has {report.files_after} file(s) now (was {report.files_before})" if in_place else ""))
    for key in report.keys:
        click.echo(f"  {key}")
    if report.skipped:
        click.echo(f"left apart (another schema): {', '.join(report.skipped)}", err=True)
