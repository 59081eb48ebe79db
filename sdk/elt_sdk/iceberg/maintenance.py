"""Keeping Iceberg silver small and fast: compaction of a day, snapshot expiry, orphan removal.

- ``compact_day``: a day's files rewritten into files of about ``target_bytes``, in one snapshot
  (``RewriteFiles``): readers see the old files or the new ones, never both. Rows keep their
  ``_elt_source``/``_elt_version``, so a later version of an object still replaces its rows (the
  committer rewrites the compacted file without them). An object replaced while the compaction
  ran makes it give up (its conflict check), leaving the table as it was; appends to the same day
  do not.
- ``expire``: snapshots older than ``older_than_days`` leave the table's metadata (the current
  one always stays); their files become orphans unless a live snapshot still uses them.
- ``orphans``: files under a table's ``data/`` and ``metadata/`` that no live snapshot or metadata
  file references, older than ``older_than_days`` (never younger: a transform may have staged them
  for a commit still in the queue), deleted.

``elt-sdk iceberg compact|expire|orphans`` and the scheduled maintenance function run these.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.table import FileScanTask

from elt_sdk import layout
from elt_sdk.iceberg.catalog import Warehouse
from elt_sdk.iceberg.producers import FileWriter, RewriteFiles, day_of, producer
from elt_sdk.store import Store


class MaintenanceConflict(RuntimeError):
    """A concurrent commit replaced files this run was rewriting: run it again later."""


@dataclass
class Report:
    dataset: str
    action: str
    files_before: int = 0
    files_after: int = 0
    rows: int = 0
    removed: list[str] = field(default_factory=list)
    snapshot: int | None = None
    seconds: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["removed"] = len(self.removed)
        return out


def _table(warehouse: Warehouse, dataset: str) -> Any:
    table = warehouse.load(dataset)
    if table is None:
        raise LookupError(f"no Iceberg table {warehouse.namespace}.{dataset} (nothing committed yet?)")
    return table


def compact_day(warehouse: Warehouse, store: Store, dataset: str, dt: str, *, target_bytes: int = 128 << 20,
                min_files: int = 2) -> Report:
    """Rewrite the day ``dt`` of ``dataset`` into files of about ``target_bytes``, in one snapshot."""
    started = time.perf_counter()
    date.fromisoformat(dt)
    table = _table(warehouse, dataset)
    tx = table.transaction()
    snapshot = tx.table_metadata.current_snapshot()
    tasks = [t for t in (tx._scan().plan_files() if snapshot else []) if day_of(t.file) == dt]  # noqa: SLF001
    report = Report(dataset, "compact", files_before=len(tasks), files_after=len(tasks))
    if len(tasks) < min_files:
        report.note = f"{len(tasks)} file(s) in {dataset} dt={dt}: nothing to compact"
        return report
    writer = FileWriter(warehouse, store, tx, dataset, prefix="compact", target_bytes=target_bytes)
    metadata = tx.table_metadata
    try:
        rows_in = 0
        for task in sorted(tasks, key=lambda t: t.file.file_path):
            rows = ArrowScan(table_metadata=metadata, io=table.io, projected_schema=metadata.schema(),
                             row_filter=AlwaysTrue()).to_table([FileScanTask(task.file)])
            rows_in += rows.num_rows
            writer.write(dt, rows)
        new = writer.close()
        rows_out = sum(df.record_count for df in new)
        if rows_out != rows_in or rows_in != sum(t.file.record_count for t in tasks):
            raise RuntimeError(f"compaction of {dataset} dt={dt} wrote {rows_out} rows for {rows_in}: nothing committed")
        with producer(RewriteFiles, tx, {"elt.maintenance": "compact", "elt.dt": dt}) as p:
            for task in tasks:
                p.delete_data_file(task.file)
            for df in new:
                p.append_data_file(df)
        tx.commit_transaction()
    except (CommitFailedException, ValidationException) as exc:
        writer.abort()
        raise MaintenanceConflict(f"{dataset} dt={dt}: a concurrent commit replaced files being compacted ({exc}); "
                                  "nothing changed, run it again") from None
    except BaseException:
        writer.abort()
        raise
    report.files_after, report.rows = len(new), rows_out
    report.snapshot = table.refresh().current_snapshot().snapshot_id
    report.seconds = time.perf_counter() - started
    return report


def expire(warehouse: Warehouse, dataset: str, *, older_than_days: float) -> Report:
    """Expire the snapshots older than ``older_than_days`` (the current one is always kept)."""
    started = time.perf_counter()
    table = _table(warehouse, dataset)
    before = len(table.snapshots())
    cutoff = datetime.now(timezone.utc) - timedelta(days=older_than_days)
    expiring = [s for s in table.snapshots() if s.timestamp_ms < cutoff.timestamp() * 1000]
    if expiring:
        table.maintenance.expire_snapshots().older_than(cutoff).commit()
    after = len(table.refresh().snapshots())
    return Report(dataset, "expire", before, after, removed=[str(s.snapshot_id) for s in expiring][: before - after],
                  snapshot=(table.current_snapshot() or None) and table.current_snapshot().snapshot_id,
                  seconds=time.perf_counter() - started)


def referenced(table: Any) -> set[str]:
    """Every file a live snapshot or the metadata references (data, manifests, manifest lists,
    metadata files of the log)."""
    io = table.io
    refs = {table.metadata_location, *(e.metadata_file for e in table.metadata.metadata_log)}
    refs |= {s.statistics_path for s in table.metadata.statistics} if table.metadata.statistics else set()
    seen_manifests: set[str] = set()
    for snapshot in table.snapshots():
        refs.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            if manifest.manifest_path in seen_manifests:
                continue
            seen_manifests.add(manifest.manifest_path)
            refs.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
                refs.add(entry.data_file.file_path)
    return refs


def orphans(warehouse: Warehouse, store: Store, dataset: str, *, older_than_days: float, dry_run: bool = False,
            now: float | None = None) -> Report:
    """Delete (or, ``dry_run``, list) files of the table no snapshot references, older than
    ``older_than_days``: failed or superseded commits' staged files, replaced files of expired
    snapshots, metadata no longer in the log."""
    from pyarrow import fs

    started = time.perf_counter()
    table = _table(warehouse, dataset)
    refs = referenced(table)
    io = table.io
    scheme, netloc, _ = io.parse_location(table.location())
    filesystem = io.fs_by_scheme(scheme, netloc)
    cutoff = (now or time.time()) - older_than_days * 86400
    found, orphaned = 0, []
    for folder in ("data", "metadata"):
        base = warehouse.uri(layout.iceberg_table_prefix(dataset) + folder)
        _, _, path = io.parse_location(base)
        for info in filesystem.get_file_info(fs.FileSelector(path, recursive=True, allow_not_found=True)):
            if info.type != fs.FileType.File:
                continue
            found += 1
            uri = f"{scheme}://{info.path}" if scheme != "file" else f"file://{info.path}"
            key = warehouse.key(uri)
            if key is None or uri in refs or (info.mtime is not None and info.mtime.timestamp() > cutoff):
                continue
            orphaned.append(key)
    if orphaned and not dry_run:
        store.delete(orphaned)
    return Report(dataset, "orphans" + (" (dry run)" if dry_run else ""), found, found - (0 if dry_run else len(orphaned)),
                  removed=sorted(orphaned), seconds=time.perf_counter() - started)


def maintain(warehouse: Warehouse, store: Store, *, snapshot_retention_days: float, orphan_age_days: float,
             compact_days: int = 2, target_bytes: int = 128 << 20, datasets: list[str] | None = None) -> list[Report]:
    """What the scheduled function runs on every table: compact the last ``compact_days`` days
    that have small files, expire old snapshots, remove orphans. A conflict skips that day."""
    reports = []
    for dataset in datasets or warehouse.datasets():
        table = warehouse.load(dataset)
        if table is None:
            continue
        small: dict[str, int] = {}
        for task in table.scan().plan_files() if table.current_snapshot() else []:
            if task.file.file_size_in_bytes < target_bytes / 2:
                small[day_of(task.file)] = small.get(day_of(task.file), 0) + 1
        for dt in sorted((d for d, n in small.items() if n > 1), reverse=True)[:compact_days]:
            try:
                reports.append(compact_day(warehouse, store, dataset, dt, target_bytes=target_bytes))
            except MaintenanceConflict as exc:
                reports.append(Report(dataset, "compact", note=str(exc)))
        reports.append(expire(warehouse, dataset, older_than_days=snapshot_retention_days))
        reports.append(orphans(warehouse, store, dataset, older_than_days=orphan_age_days))
    return reports
