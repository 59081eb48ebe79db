"""Show what a run wrote: rows per dataset and partition, and the latest rows, through DuckDB.

Works from any folder: ``python tools/show_silver.py OUT_DIR`` is ``elt-sdk query --silver OUT_DIR``
(hive partitions: dt is a DATE, as Athena reads them through Glue).
"""
from __future__ import annotations

import sys

from elt_sdk.cli import main

if __name__ == "__main__":
    sys.exit(main(["query", "--silver", sys.argv[1] if len(sys.argv) > 1 else "elt-out"]))
