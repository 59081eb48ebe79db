"""SQL over silver with DuckDB: one view per dataset, ``dt`` a DATE (hive partitions), the same
tables Athena sees through Glue.

Silver is read from a local output folder (``read_parquet`` over its hive folders) or from a
stack's bucket through pyarrow's S3 filesystem (``endpoint_override`` for the embedded endpoint),
handed to DuckDB as Arrow datasets: no DuckDB extension is downloaded, and DuckDB pushes column
and partition filters down into the scan. Iceberg silver is read through its catalog: each
table's current snapshot, scanned by pyiceberg into Arrow (DuckDB's iceberg extension would need a
download), with a ``dt`` column computed from the event time. Each view exists twice, as ``<dataset>`` and as
``<database>.<dataset>`` (the Glue database name, ``<name prefix>_silver``), so Athena queries run
as written. ``approx_distinct`` (Athena's name) is a macro over DuckDB's ``approx_count_distinct``;
the session's time zone is UTC, like Athena's.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable

from elt_sdk import layout

MACROS = ("CREATE MACRO approx_distinct(x) AS approx_count_distinct(x)",)
REFERENCE_QUERIES = (
    ("latest shipments", "SELECT dt, shipment_id, origin, destination, carrier, weight_kg, event_time\n"
                         "FROM {table}\nWHERE record_type = 'shipments'\nORDER BY dt DESC, event_time DESC\nLIMIT 20"),
    ("rows per day", "SELECT dt, COUNT(*) AS rows\nFROM {table}\nWHERE record_type = 'shipments'\nGROUP BY dt\n"
                     "ORDER BY dt DESC"),
    ("range and uniqueness", "SELECT\n  dt,\n  MIN(weight_kg) AS min_weight_kg,\n  MAX(weight_kg) AS max_weight_kg,\n"
                             "  APPROX_DISTINCT(shipment_id) AS approx_unique_shipments\nFROM {table}\n"
                             "WHERE record_type = 'shipments'\nGROUP BY dt\nORDER BY dt DESC"),
)
"""The reference pipeline's three Athena quick queries, word for word but for the table
(``"<db>".silver`` there; ``"<db>".shipments`` here: one table per dataset)."""


def database_name(name_prefix: str) -> str:
    """The Glue database of a stack's silver tables, as the CDK app names it."""
    return name_prefix.replace("-", "_") + "_silver"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(datasets: dict[str, Any], *, folder: Path | None = None, filesystem: Any = None, bucket: str | None = None,
            databases: Iterable[str] = (), iceberg: Any = None) -> Any:
    """A DuckDB connection with a view per dataset (``datasets``: name -> ``Dataset``, whose
    silver schema gives empty views their columns), over ``folder`` (holding ``silver/``) or
    ``bucket`` on ``filesystem``, or the Iceberg tables of ``iceberg`` (a ``Warehouse``: each
    table's current snapshot, scanned to Arrow, with ``dt``); the views are also created in each
    of ``databases``."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for macro in MACROS:
        con.execute(macro)
    names = set(datasets)
    snapshots: dict[str, Any] = {}
    if iceberg is not None:
        from elt_sdk.iceberg.read import tables

        snapshots = tables(iceberg)
        names |= set(snapshots)
        folder = filesystem = bucket = None
    if folder is not None:
        silver = folder / layout.SILVER_PREFIX
        names |= {p.name for p in silver.iterdir() if p.is_dir()} if silver.is_dir() else set()
    for name in sorted(names):
        if name in snapshots:
            con.register(f"_iceberg_{name}", snapshots[name])
            source = f"SELECT * FROM {_ident('_iceberg_' + name)}"
        else:
            source = _source(con, name, datasets.get(name), folder, filesystem, bucket)
        con.execute(f"CREATE VIEW {_ident(name)} AS {source}")
    for db in databases:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {_ident(db)}")
        for name in sorted(names):
            con.execute(f"CREATE VIEW {_ident(db)}.{_ident(name)} AS SELECT * FROM main.{_ident(name)}")
    return con


def _source(con: Any, name: str, dataset: Any, folder: Path | None, filesystem: Any, bucket: str | None) -> str:
    import pyarrow as pa

    if folder is not None:
        files = sorted((folder / layout.SILVER_PREFIX / name).glob("dt=*/*.parquet"))
        if files:
            glob = str(folder.resolve() / layout.SILVER_PREFIX / name / "*" / "*.parquet").replace("'", "''")
            return f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, hive_types = {{'dt': DATE}})"
    elif filesystem is not None and bucket:
        import pyarrow.dataset as pds
        from pyarrow import fs

        base = f"{bucket}/{layout.SILVER_PREFIX}{name}/"
        if filesystem.get_file_info(fs.FileSelector(base, allow_not_found=True)):
            data = pds.dataset(base, filesystem=filesystem, format="parquet",
                               partitioning=pds.partitioning(pa.schema([("dt", pa.date32())]), flavor="hive"))
            con.register(f"_arrow_{name}", data)
            return f"SELECT * FROM {_ident('_arrow_' + name)}"
    # no rows yet: an empty view with the dataset's columns (or just dt)
    schema = dataset.arrow_schema if dataset is not None else pa.schema([])
    empty = pa.schema([*schema, pa.field("dt", pa.date32())]).empty_table()
    con.register(f"_empty_{name}", empty)
    return f"SELECT * FROM {_ident('_empty_' + name)}"


def run(con: Any, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """``sql``'s column names and rows."""
    rel = con.execute(sql)
    columns = [d[0] for d in rel.description] if rel.description else []
    return columns, rel.fetchall()


def plain(value: Any) -> Any:
    """A value as JSON has it: dates and times in ISO 8601, decimals as numbers."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def as_json(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    """A list of row objects keyed by column name."""
    return json.dumps([{c: plain(v) for c, v in zip(columns, row)} for row in rows], indent=2)


def as_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        w.writerow(["" if v is None else plain(v) for v in row])
    return out.getvalue()


def summary(con: Any, datasets: Iterable[str], sample: int = 3) -> list[tuple[str, list[str], list[tuple], list[str], list[tuple]]]:
    """For each dataset with rows: rows per dt, and its ``sample`` latest rows."""
    out = []
    for name in sorted(datasets):
        cols, rows = run(con, f"SELECT dt, count(*) AS rows FROM {_ident(name)} GROUP BY dt ORDER BY dt")
        if not rows:
            continue
        order = "event_time DESC" if "event_time" in [c for c, *_ in con.execute(f"DESCRIBE {_ident(name)}").fetchall()] else "dt DESC"
        scols, srows = run(con, f"SELECT * FROM {_ident(name)} ORDER BY {order} LIMIT {int(sample)}")
        out.append((name, cols, rows, scols, srows))
    return out
