"""Show what a local run wrote: rows per dataset and partition, and a few rows, through DuckDB.

DuckDB reads the hive-partitioned folders directly (dt becomes a DATE column), the same layout
Athena reads through Glue. Usage: python tools/show_silver.py OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import duckdb


def main(out: str) -> int:
    silver = Path(out) / "silver"
    if not silver.is_dir():
        print(f"no silver/ under {out}: run 'elt-sdk local run --out {out}' first", file=sys.stderr)
        return 2
    con = duckdb.connect()
    for folder in sorted(p for p in silver.iterdir() if p.is_dir()):
        rel = f"read_parquet('{folder}/*/*.parquet', hive_partitioning = 1)"
        print(f"\n== {folder.name}")
        print(con.sql(f"SELECT dt, count(*) AS rows FROM {rel} GROUP BY dt ORDER BY dt"))
        print(con.sql(f"SELECT * FROM {rel} ORDER BY event_time DESC LIMIT 3"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "elt-out"))
