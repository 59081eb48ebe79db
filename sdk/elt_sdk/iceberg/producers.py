"""The two kinds of snapshot elt-sdk writes, each one snapshot in one transaction.

- ``ReplaceObjects`` (the committer): drop the files of the objects being replaced, add the new
  and rewritten ones. Its conflict check: nothing was added for the same objects, and the files it
  drops still exist, since the snapshot it planned on; otherwise the commit is refused and the
  committer plans again from the new head.
- ``RewriteFiles`` (compaction): replace files by files holding the same rows. Its conflict check:
  the files it replaces still exist (an object replaced meanwhile makes it give up; appends to the
  same day do not).

Both merge small manifests and drop the manifests that only recorded earlier snapshots' deletes,
so planning a commit does not slow down with every commit before it.

These extend pyiceberg's overwrite producer (``_OverwriteFiles``): the extra pins pyiceberg to
0.12.x; ``tests/test_iceberg.py`` exercises what they rely on.
"""
from __future__ import annotations

import tempfile
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.expressions import AlwaysFalse, BooleanExpression
from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow
from pyiceberg.manifest import DataFile, ManifestContent
from pyiceberg.table import TableProperties, Transaction
from pyiceberg.table.snapshots import Operation
from pyiceberg.table.update.snapshot import _ManifestMergeManager, _OverwriteFiles
from pyiceberg.utils.properties import property_as_bool, property_as_int

from elt_sdk import layout, parquet_encoding
from elt_sdk.store import Store

EPOCH = date(1970, 1, 1)


class _Producer(_OverwriteFiles):
    conflict_filter: BooleanExpression | None = None

    def _process_manifests(self, manifests: list[Any]) -> list[Any]:
        live = [m for m in manifests
                if m.has_added_files() or m.has_existing_files() or m.added_snapshot_id == self._snapshot_id]
        props = self._transaction.table_metadata.properties
        merge = _ManifestMergeManager(
            target_size_bytes=property_as_int(props, TableProperties.MANIFEST_TARGET_SIZE_BYTES,
                                              TableProperties.MANIFEST_TARGET_SIZE_BYTES_DEFAULT),  # type: ignore[arg-type]
            min_count_to_merge=property_as_int(props, TableProperties.MANIFEST_MIN_MERGE_COUNT,
                                               TableProperties.MANIFEST_MIN_MERGE_COUNT_DEFAULT),  # type: ignore[arg-type]
            merge_enabled=property_as_bool(props, TableProperties.MANIFEST_MERGE_ENABLED, True),
            snapshot_producer=self)
        data = [m for m in live if m.content == ManifestContent.DATA]
        return merge.merge_manifests(data) + [m for m in live if m.content != ManifestContent.DATA]


class ReplaceObjects(_Producer):
    """The committer's snapshot. ``conflict_filter``: the rows of the objects it replaces."""

    def _validate_concurrency(self) -> None:
        saved = self._predicate
        self._predicate = self.conflict_filter if self.conflict_filter is not None else AlwaysFalse()
        try:
            super()._validate_concurrency()  # serializable on these objects' rows; dropped files still there
        finally:
            self._predicate = saved


class RewriteFiles(_Producer):
    """Compaction's snapshot: the same rows in other files."""

    def _validate_concurrency(self) -> None:
        from pyiceberg.table.update.validate import _validate_data_files_exist

        window = self._commit_window
        if window is None or window.is_empty() or window.head is None:
            return
        _validate_data_files_exist(self._transaction._table, window.head, self._deleted_data_files, window.base)


def producer(cls: type[_Producer], tx: Transaction, properties: dict[str, str]) -> _Producer:
    """A producer of ``cls`` on ``tx`` (an append when the table has no snapshot yet)."""
    has_snapshot = tx.table_metadata.current_snapshot() is not None
    return cls(operation=Operation.OVERWRITE if has_snapshot else Operation.APPEND, transaction=tx,
               io=tx._table.io, snapshot_properties=properties)


def day_of(data_file: DataFile) -> str:
    """The ``dt`` (YYYY-MM-DD) of a data file of a day-partitioned table."""
    days = data_file.partition[0]
    return (EPOCH + timedelta(days=int(days))).isoformat() if days is not None else "null"


def arrow_schema(tx: Transaction) -> pa.Schema:
    """The table's current schema as Arrow, without field ids (files are read by name mapping)."""
    return schema_to_pyarrow(tx.table_metadata.schema(), include_field_ids=False)


class FileWriter:
    """Writes rows into new data files of a table (through the silver ``Store``), one day at a
    time, rolling over past ``target_bytes``; ``data_files`` are ready to add."""

    def __init__(self, warehouse: Any, store: Store, tx: Transaction, dataset: str, *, prefix: str = "rewrite",
                 target_bytes: int = 128 << 20, row_group_rows: int = 128 * 1024):
        self.warehouse, self.store, self.tx, self.dataset = warehouse, store, tx, dataset
        self.prefix, self.target_bytes, self.row_group_rows = prefix, target_bytes, row_group_rows
        self.schema = arrow_schema(tx)
        self.tmp = tempfile.TemporaryDirectory(prefix="elt-iceberg-")
        self.written: list[str] = []
        self.data_files: list[DataFile] = []
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._dt = ""
        self._bytes = 0

    def write(self, dt: str, rows: pa.Table) -> None:
        if not rows.num_rows:
            return
        if self._writer is not None and (dt != self._dt or self._bytes >= self.target_bytes):
            self._finish()
        rows = rows.cast(self.schema)
        if self._writer is None:
            self._dt, self._bytes = dt, 0
            self._path = Path(self.tmp.name) / f"{uuid.uuid4().hex}.parquet"
            self._writer = parquet_encoding.open_writer(self._path, self.schema, rows)
        for batch in rows.to_batches(self.row_group_rows):
            self._writer.write_batch(batch)
            self._bytes += batch.nbytes

    def _finish(self) -> None:
        assert self._writer is not None and self._path is not None
        self._writer.close()
        key = (f"{layout.iceberg_table_prefix(self.dataset)}data/{layout.ICEBERG_PARTITION}={self._dt}/"
               f"{self.prefix}-{uuid.uuid4().hex}.parquet")
        self.store.put_file(key, self._path)
        self._path.unlink(missing_ok=True)
        self.written.append(key)
        self.data_files.append(parquet_file_to_data_file(self.tx._table.io, self.tx.table_metadata,
                                                         self.warehouse.uri(key)))
        self._writer, self._path = None, None

    def close(self) -> list[DataFile]:
        if self._writer is not None:
            self._finish()
        self.tmp.cleanup()
        return self.data_files

    def abort(self) -> None:
        """Remove what was written (nothing of it was committed)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.tmp.cleanup()
        if self.written:
            self.store.delete(self.written)
