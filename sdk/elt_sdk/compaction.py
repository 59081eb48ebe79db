"""Compaction: many small Parquet files of one partition -> few large ones.

Row groups are streamed from each input to the output writer, so memory holds one row group at
a time whatever the partition's size.
"""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

MAX_ROWS_PER_FILE = 5_000_000


def compact(inputs: list[Path], out_dir: Path, *, max_rows_per_file: int = MAX_ROWS_PER_FILE) -> tuple[list[Path], int]:
    """Write the rows of ``inputs`` (in order) to ``out_dir/part-NNNNN.parquet``; (files, rows)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: list[Path] = []
    writer: pq.ParquetWriter | None = None
    rows_in_file = total = 0
    schema = pq.read_schema(inputs[0]) if inputs else None
    for path in inputs:
        reader = pq.ParquetFile(path)
        for i in range(reader.num_row_groups):
            group = reader.read_row_group(i).cast(schema)
            if writer is None or rows_in_file + group.num_rows > max_rows_per_file and rows_in_file:
                if writer is not None:
                    writer.close()
                outputs.append(out_dir / f"part-{len(outputs):05d}.parquet")
                writer = pq.ParquetWriter(outputs[-1], schema, compression="snappy")
                rows_in_file = 0
            writer.write_table(group)
            rows_in_file += group.num_rows
            total += group.num_rows
    if writer is not None:
        writer.close()
    return outputs, total
