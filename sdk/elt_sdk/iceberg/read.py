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
