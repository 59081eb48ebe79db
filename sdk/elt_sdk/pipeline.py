"""The transform core: one object (or chunk) through parse -> validate -> map -> write.

It knows nothing of Lambda, S3 or moto: it reads a ``Source``, writes to a ``Sink`` and calls the
plugin hooks. The CLI, the local runtime and the Lambda handler all call ``transform_object``.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa

from elt_sdk import kernels as k
from elt_sdk import layout, memory
from elt_sdk.batch import ParsedBatch, RawBlock, Reject
from elt_sdk.dataset import Dataset
from elt_sdk.defaults.parse import decode_block
from elt_sdk.framing import DEFAULT_BLOCK_BYTES, Chunk, read_blocks
from elt_sdk.output import ObjectOutput, WrittenPartition
from elt_sdk.plugins import Registry
from elt_sdk.sink import Sink
from elt_sdk.source import Source

PARSE_AHEAD = 1
"""Blocks parsed ahead of the one being validated. Measured on two cores: two or three ahead were
no faster than one (the work is CPU-bound by then) and each costs a block's memory."""
T = TypeVar("T")
R = TypeVar("R")


class MapError(RuntimeError):
    """A plugin's map returned rows that do not match the dataset's silver schema."""


@dataclass
class DatasetCounts:
    objects: int = 0
    records_in: int = 0
    written: int = 0
    quarantined: int = 0

    def add(self, other: "DatasetCounts") -> None:
        self.objects += other.objects
        self.records_in += other.records_in
        self.written += other.written
        self.quarantined += other.quarantined

    @classmethod
    def total(cls, counts: "Iterable[DatasetCounts]") -> "DatasetCounts":
        out = cls()
        for c in counts:
            out.add(c)
        return out


@dataclass
class ObjectReport:
    """What one object (or chunk) produced."""

    uri: str
    chunk: int
    counts: dict[str, DatasetCounts] = field(default_factory=dict)
    partitions: list[WrittenPartition] = field(default_factory=list)
    quarantine_keys: dict[str, str] = field(default_factory=dict)
    bytes_read: int = 0
    seconds: float = 0.0

    def count(self, dataset: str) -> DatasetCounts:
        return self.counts.setdefault(dataset, DatasetCounts())

    def totals(self) -> DatasetCounts:
        return DatasetCounts.total(self.counts.values())


def conform(dataset: Dataset, table: pa.Table) -> pa.Table:
    """Check a mapped table against the silver schema: same columns, castable types, no nulls
    where the schema forbids them. Extra columns are an error too: silver is what the schema says."""
    target = dataset.arrow_schema
    missing = [n for n in target.names if n not in table.column_names]
    if missing:
        raise MapError(f"{dataset.name}: map dropped column(s) {', '.join(missing)} of the silver schema")
    extra = [n for n in table.column_names if n not in target.names]
    if extra:
        raise MapError(f"{dataset.name}: map added column(s) {', '.join(extra)} not in the silver schema "
                       "(declare silver_schema)")
    try:
        table = k.cast_table(table, target)
    except k.ColumnCastError as exc:
        raise MapError(f"{dataset.name}: {exc}") from None
    for f, col in zip(target, table.columns):
        if not f.nullable and col.null_count:
            raise MapError(f"{dataset.name}: column {f.name} has {col.null_count} null(s) but is required")
    return table


class Transformer:
    """Runs objects through the hooks of one registry."""

    def __init__(self, registry: Registry, *, block_bytes: int = DEFAULT_BLOCK_BYTES,
                 row_group_rows: int | None = None, max_rows_per_file: int | None = None):
        memory.use_transform_pool()
        self.registry = registry
        self.block_bytes = block_bytes
        self.output_options: dict[str, Any] = {}
        if row_group_rows:
            self.output_options["row_group_rows"] = row_group_rows
        if max_rows_per_file:
            self.output_options["max_rows_per_file"] = max_rows_per_file

    def transform_object(self, source: Source, sink: Sink, *, chunk: Chunk | None = None,
                         dataset: str | None = None) -> ObjectReport:
        """Transform one object. ``dataset`` forces a dataset; otherwise the key's prefix
        decides, and an object under no dataset's prefix is routed record by record."""
        started = time.perf_counter()
        target = self.registry.dataset(dataset) if dataset else self.registry.route_key(source.key)
        report = ObjectReport(uri=source.uri, chunk=chunk.index if chunk else 0)
        out: ObjectOutput | None = None
        if target is not None:
            def parse(block: RawBlock) -> ParsedBatch:
                return self.registry.hooks(target).elt_parse(dataset=target, block=block)
        else:
            parse = decode_block  # routed record by record
        try:
            for block, parsed in ahead(parse, read_blocks(source, chunk, self.block_bytes)):
                if out is None:
                    out = ObjectOutput(sink, block.source, **self.output_options)
                report.bytes_read += block.size
                if target is not None:
                    self._run(target, parsed, out, report)
                else:
                    self._route(parsed, out, report)
            if out is not None:
                report.partitions, report.quarantine_keys = out.close()
        except BaseException:
            if out is not None:
                out.abort()
            raise
        for name in report.counts:
            report.counts[name].objects = 1
        report.seconds = time.perf_counter() - started
        return report

    def _route(self, parsed: ParsedBatch, out: ObjectOutput, report: ObjectReport) -> None:
        by_dataset: dict[str, tuple[Dataset, list[int]]] = {}
        unrouted: list[Reject] = list(parsed.rejects)
        for i, record in enumerate(parsed.records):
            ds = self.registry.route_record(record)
            if ds is None:
                unrouted.append(parsed.reject(i, [{"path": "$.record_type", "message": _unroutable(record)}], "route"))
            else:
                by_dataset.setdefault(ds.name, (ds, []))[1].append(i)
        for ds, rows in by_dataset.values():
            self._run(ds, parsed.subset(rows), out, report)
        if unrouted:
            counts = report.count(layout.UNROUTED)
            counts.records_in += len(unrouted)
            counts.quarantined += len(unrouted)
            out.quarantine(layout.UNROUTED, "elt_sdk", "-", unrouted)

    def _run(self, ds: Dataset, parsed: ParsedBatch, out: ObjectOutput, report: ObjectReport) -> None:
        hook = self.registry.hooks(ds)
        parsed._settle()
        validated = hook.elt_validate(dataset=ds, batch=parsed)
        rejects = parsed.rejects + validated.rejects
        table = validated.table
        if table.num_rows:
            table = conform(ds, hook.elt_map(dataset=ds, table=table))
            hook.elt_write(dataset=ds, table=table, output=out)
        out.quarantine(ds.name, ds.plugin, ds.version, rejects)
        counts = report.count(ds.name)
        counts.records_in += len(parsed) + len(parsed.rejects)
        counts.written += table.num_rows
        counts.quarantined += len(rejects)


def ahead(fn: Callable[[T], R], items: Iterable[T], depth: int = PARSE_AHEAD) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in order, computing ``fn`` for the next ``depth`` items on worker
    threads while the caller works on this one: parsing the next blocks (pyarrow's reader and
    Arrow kernels release the GIL) overlaps validating and writing this one. Items are taken
    from ``items`` on the caller's thread, so a generator source is only ever advanced there."""
    it = iter(items)
    pool = ThreadPoolExecutor(depth, thread_name_prefix="elt-parse")
    try:
        in_flight: deque[tuple[T, Future]] = deque()
        for item in it:
            in_flight.append((item, pool.submit(fn, item)))
            if len(in_flight) > depth:
                done, future = in_flight.popleft()
                yield done, future.result()
        while in_flight:
            done, future = in_flight.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # nothing runs on once its source is closed
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _unroutable(record: Any) -> str:
    if not isinstance(record, dict):
        return f"record must be a JSON object, got {type(record).__name__}"
    if "record_type" not in record:
        return "no dataset prefix matched the key and the record has no record_type to route it"
    return f"no installed dataset for record_type {record['record_type']!r}"
