"""``elt-sdk iceberg``: the maintenance of Iceberg silver (``silver_format = iceberg``), on a
local output folder (``--silver DIR``) or a stack's tables; the scheduled maintenance function
runs the same code (``iceberg/maintenance.py``)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, emit_table, state
from elt_sdk.cli.silver import iceberg_silver, silver_option
from elt_sdk.cli.targeting import TargetSpec, target_options


def _open(target: TargetSpec, silver_dir: Path | None) -> tuple[Any, Any, str]:
    from elt_sdk.query import database_name

    found = iceberg_silver(target, silver_dir, database_name(state().settings.name_prefix))
    if found is None:
        raise UsageProblem("this silver is plain Parquet, not Iceberg tables (silver_format = iceberg; "
                           "'elt-sdk compact' compacts plain partitions)")
    return found


def _datasets(warehouse: Any, dataset: str | None) -> list[str]:
    names = warehouse.datasets()
    if dataset:
        if dataset not in names:
            raise UsageProblem(f"no Iceberg table {warehouse.namespace}.{dataset} (tables: {', '.join(names) or 'none'})")
        return [dataset]
    return names


def _emit(reports: list[Any], as_json: bool, where: str) -> None:
    rows = [r.to_dict() for r in reports]
    if as_json:
        emit_json({"silver": where, "reports": rows})
        return
    emit_table(["dataset", "action", "files before", "files after", "rows", "removed", "seconds", "note"],
               [(r["dataset"], r["action"], r["files_before"], r["files_after"], r["rows"], r["removed"],
                 round(r["seconds"], 2), r["note"]) for r in rows])


def _common(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--json", "as_json", is_flag=True, help="Machine-readable report.")(fn)
    return target_options(silver_option(fn))


@click.group("iceberg")
def group() -> None:
    """Iceberg silver: snapshots, compaction of a day, snapshot expiry, orphan-file removal."""


@group.command("snapshots")
@click.option("--dataset", "-d", default=None, help="One table (default: every table).")
@_common
def snapshots(dataset: str | None, as_json: bool, silver_dir: Path | None, target: TargetSpec) -> None:
    """Each table's snapshots, oldest first: when, what kind, rows added and removed, rows in all."""
    warehouse, _, where = _open(target, silver_dir)
    rows = []
    for name in _datasets(warehouse, dataset):
        table = warehouse.load(name)
        current = table.current_snapshot()
        for s in table.snapshots():
            summary = s.summary.additional_properties if s.summary else {}
            rows.append({"dataset": name, "snapshot": s.snapshot_id, "current": current is not None and s.snapshot_id == current.snapshot_id,
                         "at": datetime.fromtimestamp(s.timestamp_ms / 1000, timezone.utc).isoformat(),
                         "operation": s.summary.operation.value if s.summary else "?",
                         "added_rows": int(summary.get("added-records", 0)),
                         "deleted_rows": int(summary.get("deleted-records", 0)),
                         "total_rows": int(summary.get("total-records", 0)),
                         "objects": int(summary.get("elt.objects", 0)),
                         "by": "maintenance" if "elt.maintenance" in summary else "committer"})
    if as_json:
        emit_json({"silver": where, "snapshots": rows})
        return
    emit_table(["dataset", "snapshot", "at", "operation", "objects", "+rows", "-rows", "rows", "by", ""],
               [(r["dataset"], r["snapshot"], r["at"][:19], r["operation"], r["objects"], r["added_rows"],
                 r["deleted_rows"], r["total_rows"], r["by"], "current" if r["current"] else "") for r in rows])


@group.command("compact")
@click.option("--dataset", "-d", required=True, help="The table.")
@click.option("--dt", required=True, metavar="DATE", help="The day (YYYY-MM-DD).")
@click.option("--target-mb", type=click.FloatRange(0.001), default=128, show_default=True,
              help="Size of each compacted file.")
@_common
def compact(dataset: str, dt: str, target_mb: float, as_json: bool, silver_dir: Path | None, target: TargetSpec) -> None:
    """Rewrite one day of a table into files of about --target-mb, in one snapshot (readers see
    the old files or the new ones). Exit 1 when a concurrent commit replaced files it was
    rewriting (nothing changed: run it again)."""
    from elt_sdk.iceberg import maintenance

    warehouse, store, where = _open(target, silver_dir)
    _datasets(warehouse, dataset)
    try:
        report = maintenance.compact_day(warehouse, store, dataset, dt, target_bytes=int(target_mb * (1 << 20)))
    except ValueError:
        raise UsageProblem(f"--dt {dt!r} is not a date (YYYY-MM-DD)") from None
    except maintenance.MaintenanceConflict as exc:
        raise RunFailure(str(exc)) from None
    _emit([report], as_json, where)


@group.command("expire")
@click.option("--dataset", "-d", default=None, help="One table (default: every table).")
@click.option("--older-than-days", type=click.FloatRange(0), default=None,
              help="Expire snapshots older than this (default: the iceberg_snapshot_retention_days setting).")
@_common
def expire(dataset: str | None, older_than_days: float | None, as_json: bool, silver_dir: Path | None,
           target: TargetSpec) -> None:
    """Expire old snapshots (the current one always stays): time travel reaches back this far."""
    from elt_sdk.iceberg import maintenance

    days = state().settings.iceberg_snapshot_retention_days if older_than_days is None else older_than_days
    warehouse, _, where = _open(target, silver_dir)
    _emit([maintenance.expire(warehouse, name, older_than_days=days) for name in _datasets(warehouse, dataset)],
          as_json, where)


@group.command("orphans")
@click.option("--dataset", "-d", default=None, help="One table (default: every table).")
@click.option("--older-than-days", type=click.FloatRange(0), default=None,
              help="Only files older than this (default: the iceberg_orphan_age_days setting). Younger files may "
                   "belong to commits still in the queue.")
@click.option("--dry-run", is_flag=True, help="List, do not delete.")
@_common
def orphans(dataset: str | None, older_than_days: float | None, dry_run: bool, as_json: bool, silver_dir: Path | None,
            target: TargetSpec) -> None:
    """Delete files under a table's data/ and metadata/ that no live snapshot references: staged
    files of commits that failed or were superseded, files of expired snapshots."""
    from elt_sdk.iceberg import maintenance

    days = state().settings.iceberg_orphan_age_days if older_than_days is None else older_than_days
    warehouse, store, where = _open(target, silver_dir)
    reports = [maintenance.orphans(warehouse, store, name, older_than_days=days, dry_run=dry_run)
               for name in _datasets(warehouse, dataset)]
    _emit(reports, as_json, where)
    if dry_run and not as_json:
        for r in reports:
            for key in r.removed:
                click.echo(f"  {key}")


@group.command("maintain")
@click.option("--dataset", "-d", default=None, help="One table (default: every table).")
@_common
def maintain(dataset: str | None, as_json: bool, silver_dir: Path | None, target: TargetSpec) -> None:
    """What the scheduled maintenance function does: compact the recent days with small files,
    expire old snapshots, remove orphans (ages from the settings)."""
    from elt_sdk.iceberg import maintenance

    cfg = state().settings
    warehouse, store, where = _open(target, silver_dir)
    reports = maintenance.maintain(warehouse, store, snapshot_retention_days=cfg.iceberg_snapshot_retention_days,
                                   orphan_age_days=cfg.iceberg_orphan_age_days,
                                   datasets=_datasets(warehouse, dataset))
    _emit(reports, as_json, where)
