"""Iceberg silver as Arrow: what ``elt-sdk query`` hands DuckDB and ``verify`` checks.

A scan reads one snapshot (the current one unless told), so a reader sees whole commits only.
Each table gets a ``dt`` column (the UTC date of its event time: its day partition), so the same
SQL runs on plain and on Iceberg silver.
"""
from __future__ import annotations

from typing import Any

import pyarrow as pa

from elt_sdk import kernels as k
from elt_sdk import layout
from elt_sdk.iceberg.catalog import Warehouse


def event_time_column(table: Any) -> str:
    """The column a table is partitioned by (day of it)."""
    [field] = [f for f in table.spec().fields if f.name == layout.ICEBERG_PARTITION] or [table.spec().fields[0]]
    return table.schema().find_column_name(field.source_id)


def rows(table: Any, snapshot_id: int | None = None, *, with_dt: bool = True) -> pa.Table:
    """A table's rows at ``snapshot_id`` (current by default), with ``dt``."""
    data = table.scan(snapshot_id=snapshot_id).to_arrow()
    if with_dt:
        data = data.append_column(pa.field("dt", pa.date32()),
                                  k.cast(data.column(event_time_column(table)), pa.date32()))
    return data


def tables(warehouse: Warehouse) -> dict[str, pa.Table]:
    """Every dataset's current rows, by dataset."""
    out = {}
    for name in warehouse.datasets():
        table = warehouse.load(name)
        if table is not None:
            out[name] = rows(table)
    return out


COPY_RECORD = "_elt/iceberg-copy.json"
"""What ``copy_tables`` downloaded, for ``register_copies`` once the folder is in its place."""


def copy_tables(warehouse: Warehouse, folder: Any) -> dict[str, int]:
    """Download each table's current snapshot into ``folder/silver/<dataset>/data/`` (what
    ``local run --out`` keeps of a run); ``register_copies`` makes them tables once the folder
    has its final path (Iceberg metadata holds absolute paths). Returns the rows per dataset."""
    import json
    from pathlib import Path

    from elt_sdk.iceberg.producers import day_of

    record: dict[str, Any] = {"namespace": warehouse.namespace, "tables": {}}
    counts = {}
    for name in warehouse.datasets():
        source = warehouse.load(name)
        if source is None:
            continue
        tasks = list(source.scan().plan_files()) if source.current_snapshot() else []
        keys = []
        for task in tasks:
            key = f"{layout.iceberg_table_prefix(name)}data/{layout.ICEBERG_PARTITION}={day_of(task.file)}/" \
                  f"{task.file.file_path.rsplit('/', 1)[-1]}"
            path = Path(folder) / key
            path.parent.mkdir(parents=True, exist_ok=True)
            with source.io.new_input(task.file.file_path).open() as src, path.open("wb") as dst:
                while chunk := src.read(8 << 20):
                    dst.write(chunk)
            keys.append(key)
        record["tables"][name] = {"schema": source.schema().model_dump_json(), "spec": source.spec().model_dump_json(),
                                  "snapshot": source.current_snapshot().snapshot_id if tasks else None, "files": keys}
        counts[name] = sum(t.file.record_count for t in tasks)
    path = Path(folder) / COPY_RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return counts


def register_copies(folder: Any) -> list[str]:
    """Make the files ``copy_tables`` downloaded into ``folder`` its tables (catalog
    ``folder/iceberg.db``), one snapshot each. Returns the datasets."""
    import json
    from pathlib import Path

    from pyiceberg.io.pyarrow import parquet_file_to_data_file
    from pyiceberg.partitioning import PartitionSpec
    from pyiceberg.schema import Schema

    from elt_sdk.iceberg.catalog import local_warehouse

    path = Path(folder) / COPY_RECORD
    if not path.is_file():
        return []
    record = json.loads(path.read_text())
    target = local_warehouse(Path(folder), record["namespace"])
    for name, t in sorted(record["tables"].items()):
        copy = target.create(name, Schema.model_validate_json(t["schema"]), PartitionSpec.model_validate_json(t["spec"]))
        if t["files"]:
            tx = copy.transaction()
            with tx.update_snapshot(snapshot_properties={"elt.copied-from": str(t["snapshot"])}).fast_append() as add:
                for key in t["files"]:
                    add.append_data_file(parquet_file_to_data_file(copy.io, tx.table_metadata, target.uri(key)))
            tx.commit_transaction()
    path.unlink()
    return sorted(record["tables"])
