"""How silver Parquet files are encoded: snappy pages, and dictionaries only where they pay.

Arrow's writer dictionary-encodes every column and falls back to plain values only once a
column's dictionary passes 1 MiB in a row group. Silver row groups hold at most 64k rows, so a
column of mostly distinct values (an id, a precise time) never falls back: each row group hashes
every value into a dictionary as large as the data, which cost ~25 % of the write of the bench's
partitions and made their files 9-12 % larger. So a file's writer decides per top-level column
from the first rows it is given: a column whose sampled values are mostly distinct is written
plain, any other (and every nested column) keeps its dictionary. Every Parquet reader reads
both encodings.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from elt_sdk import kernels as k

COMPRESSION = "snappy"
SAMPLE_ROWS = 4096
"""Rows looked at to judge a column's cardinality."""
MIN_SAMPLE_ROWS = 256
"""Fewer rows than this tell nothing: every column keeps its dictionary."""
_leaves: dict[pa.Schema, list[list[str]]] = {}
"""Leaf paths by schema: a process sees a few schemas (one per dataset version)."""


def open_writer(path: Path | str | Any, schema: pa.Schema, sample: pa.Table) -> pq.ParquetWriter:
    """A writer for ``schema``, its dictionary columns chosen from ``sample`` (the first rows it
    will write)."""
    return pq.ParquetWriter(path, schema, compression=COMPRESSION, use_dictionary=dictionary_columns(schema, sample))


def dictionary_columns(schema: pa.Schema, sample: pa.Table) -> list[str] | bool:
    """The leaf columns worth a dictionary (True: all of them)."""
    rows = min(sample.num_rows, SAMPLE_ROWS)
    if rows < MIN_SAMPLE_ROWS:
        return True
    head = sample.slice(0, rows)
    plain = {f.name for f in schema if not pa.types.is_nested(f.type) and f.name in head.column_names
             and _mostly_distinct(head.column(f.name), rows)}
    if not plain:
        return True
    return [path for field, paths in zip(schema, leaf_paths(schema)) if field.name not in plain for path in paths]


def _mostly_distinct(column: Any, rows: int) -> bool:
    try:
        return 2 * k.call("count_distinct", column).as_py() > rows
    except k.ARROW_ERRORS:  # a type count_distinct cannot hash (an extension type): the dictionary stays
        return False


def leaf_paths(schema: pa.Schema) -> list[list[str]]:
    """For each field of ``schema``, the Parquet column paths of its leaves (``a``, ``s.b``,
    ``items.list.element.c``), as ``use_dictionary`` names them."""
    if schema not in _leaves:
        buf = io.BytesIO()
        pq.ParquetWriter(buf, schema).close()
        parquet_schema = pq.ParquetFile(io.BytesIO(buf.getvalue())).schema
        paths = [parquet_schema.column(i).path for i in range(len(parquet_schema))]
        grouped, start = [], 0
        for field in schema:  # leaves come field by field: a name with a dot stays its own field's
            n = _leaf_count(field.type)
            grouped.append(paths[start:start + n])
            start += n
        _leaves[schema] = grouped
    return _leaves[schema]


def _leaf_count(typ: pa.DataType) -> int:
    if pa.types.is_struct(typ):
        return sum(_leaf_count(typ.field(i).type) for i in range(typ.num_fields))
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return _leaf_count(typ.value_type)
    if pa.types.is_map(typ):
        return _leaf_count(typ.key_type) + _leaf_count(typ.item_type)
    return 1
