"""The transform core: one object (or chunk) through parse -> validate -> map -> write, then the
commit that makes its rows the object's rows in silver.

It knows nothing of Lambda, S3 or moto: it reads a ``Source``, writes files aside through
``ObjectOutput``, commits them with a ``Committer`` over ``Store``s, and calls the plugin hooks.
The CLI, the local runtime and the Lambda handler all call ``Transformer.transform_object``.

No record fails its object: a row whose values make validation, a plugin's map, the silver cast
or the partitioning raise is isolated (the batch is halved until it stands alone) and
quarantined at that stage with the exception's message; its neighbours go on. An object fails
whole only for reasons that are not one record's: its container cannot be read
(``ObjectRefused``), a parse hook raises, a map returns the wrong shape, a write hook raises.
"""
from __future__ import annotations

import contextlib
import contextvars
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pyarrow as pa

from elt_sdk import __version__
from elt_sdk import interrupts
from elt_sdk import kernels as k
from elt_sdk import layout
from elt_sdk.batch import ParsedBatch, RawBlock, Reject
from elt_sdk.commit import COMMITTED, Attempt, Committer, Outcome
from elt_sdk.dataset import Dataset
from elt_sdk.errors import RowValueError
from elt_sdk.defaults import columnar
from elt_sdk.defaults.parse import decode_block
from elt_sdk.framing import DEFAULT_BLOCK_BYTES, DEFAULT_LIMITS, Chunk, Limits, read_blocks
from elt_sdk.output import ObjectOutput
from elt_sdk.plugins import Registry
from elt_sdk.source import Source, SourceRef
from elt_sdk.store import Store

PARSE_AHEAD = 1
"""Blocks parsed ahead of the one being validated. Measured on two cores: two or three ahead were
no faster than one (the work is CPU-bound by then) and each costs a block's memory."""
ROW_BY_ROW = 16
"""Below this many rows, a failing batch is retried row by row instead of halved again."""
T = TypeVar("T")
R = TypeVar("R")


class MapError(RuntimeError):
    """A plugin's map returned rows that do not have the silver schema's shape (a column dropped
    or added): a bug in the plugin that fails the object loudly."""


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
class WrittenPartition:
    dataset: str
    dt: str
    rows: int
    keys: list[str] = field(default_factory=list)


@dataclass
class ObjectReport:
    """What one object (or chunk) produced, and what became of it (``outcome``: committed,
    superseded by a newer version, already committed, waiting for other chunks)."""

    uri: str
    chunk: int
    counts: dict[str, DatasetCounts] = field(default_factory=dict)
    partitions: list[WrittenPartition] = field(default_factory=list)
    quarantine_keys: dict[str, str] = field(default_factory=dict)
    bytes_read: int = 0
    seconds: float = 0.0
    outcome: str = COMMITTED

    def count(self, dataset: str) -> DatasetCounts:
        return self.counts.setdefault(dataset, DatasetCounts())

    def totals(self) -> DatasetCounts:
        return DatasetCounts.total(self.counts.values())


def conform(dataset: Dataset, table: pa.Table) -> pa.Table:
    """Check a mapped table against the silver schema: same columns (else MapError: the plugin's
    bug), castable types and no nulls where the schema forbids them (else RowValueError: some
    row's values). Extra columns are an error too: silver is what the schema says."""
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
        raise RowValueError(f"$.{exc.field.name}: {exc}") from None
    for f, col in zip(target, table.columns):
        if not f.nullable and col.null_count:
            raise RowValueError(f"$.{f.name}: null, but the silver schema requires a value")
    return table


class Transformer:
    """Runs objects through the hooks of one registry and commits what they produce."""

    def __init__(self, registry: Registry, *, block_bytes: int = DEFAULT_BLOCK_BYTES,
                 row_group_rows: int | None = None, max_rows_per_file: int | None = None,
                 limits: Limits = DEFAULT_LIMITS):
        self.registry = registry
        self.block_bytes = block_bytes
        self.limits = limits
        self.plans: dict[int, Any] = {}
        """The columnar plans of this Transformer's datasets (``columnar.PLANS``), with the hints they learn."""
        self.output_options: dict[str, Any] = {}
        if row_group_rows:
            self.output_options["row_group_rows"] = row_group_rows
        if max_rows_per_file:
            self.output_options["max_rows_per_file"] = max_rows_per_file

    def fingerprint(self, datasets: Iterable[Dataset]) -> dict[str, str]:
        """What wrote a version: the SDK's version and each dataset's plugin version. A version
        already committed by the same fingerprint need not be transformed again."""
        return {"elt-sdk": __version__, **{ds.name: f"{ds.plugin}:{ds.version}" for ds in datasets}}

    def transform_object(self, source: Source, target: Committer | Store, *, chunk: Chunk | None = None,
                         chunk_count: int = 1, dataset: str | None = None, force: bool = True,
                         first_delivery: bool = False) -> ObjectReport:
        """Transform one object (or one chunk of it) and commit the result. ``dataset`` forces a
        dataset; otherwise the key's prefix decides, and an object under no dataset's prefix is
        routed record by record. Without ``force``, a version already committed by the same
        plugin versions is skipped (``outcome`` says so): checked before the transform, or, for
        a whole object on its ``first_delivery`` (most likely new), by the commit itself, which
        then spends no request on reading a manifest that is not there yet
        (``Committer.assume_new``)."""
        started = time.perf_counter()
        committer = target if isinstance(target, Committer) else Committer(target)
        ds = self.registry.dataset(dataset) if dataset else self.registry.route_key(source.key)
        ref = SourceRef(uri=source.uri, etag=source.etag, chunk=chunk.index if chunk else 0, key=source.key,
                        version=source.version)
        report = ObjectReport(uri=source.uri, chunk=ref.chunk)
        fp = self.fingerprint([ds] if ds else self.registry.datasets.values())
        if not force:
            if first_delivery and chunk_count == 1:
                committer.assume_new(ref)
            elif (done := committer.committed(ref, fp)) is not None:
                self._record(report, done)
                return report
        attempt_id = uuid.uuid4().hex[:10]
        out = ObjectOutput(ref, stage=lambda f: committer.stage(f, ref, attempt_id),
                           columns=committer.file_columns(ref, attempt_id), **self.output_options)
        plans = columnar.PLANS.set(self.plans)
        try:
            if ds is not None:
                hooks = self.registry.hooks(ds)

                def parse(block: RawBlock) -> ParsedBatch:
                    if not block.data:  # only what framing refused (a line over the limit)
                        return ParsedBatch(block, [])
                    return hooks.elt_parse(dataset=ds, block=block)
            else:
                parse = decode_block  # routed record by record: no dataset's parser applies yet
            with contextlib.closing(ahead(parse, read_blocks(source, chunk, self.block_bytes, self.limits))) as blocks:
                for block, parsed in blocks:  # closing: the parse thread has stopped before anything is discarded
                    interrupts.check()  # a stop the signal handler's exception did not deliver
                    report.bytes_read += block.size
                    if ds is not None:
                        self._run(ds, parsed, out, report)
                    else:
                        self._route(parsed, out, report)
            files = out.close()
            interrupts.check()  # never commit after a stop was asked for
            check = getattr(source, "check_unchanged", None)
            if check is not None:
                check()
            counts = {name: {"records_in": c.records_in, "written": c.written, "quarantined": c.quarantined}
                      for name, c in report.counts.items()}
            outcome = committer.commit(Attempt(ref, files, counts, fp, chunk_count, attempt_id, skip_if_current=not force))
        except BaseException:
            committer.discard(out.files)
            raise
        finally:
            columnar.PLANS.reset(plans)
            out.abort()
        self._record(report, outcome)
        report.seconds = time.perf_counter() - started
        return report

    @staticmethod
    def _record(report: ObjectReport, outcome: Outcome) -> None:
        report.outcome = outcome.status
        for name in report.counts:
            report.counts[name].objects = 1
        report.partitions = [WrittenPartition(d, dt, outcome.rows.get((d, dt), 0), keys)
                             for (d, dt), keys in sorted(outcome.partitions.items())]
        report.quarantine_keys = outcome.quarantine_keys

    def _route(self, parsed: ParsedBatch, out: ObjectOutput, report: ObjectReport) -> None:
        by_dataset: dict[str, tuple[Dataset, list[int]]] = {}
        unrouted: list[Reject] = list(parsed.rejects) + parsed.block.rejects
        for i, record in enumerate(parsed.records):
            ds = self.registry.route_record(record)
            if ds is None:
                unrouted.append(parsed.reject(i, [{"path": "$.record_type", "message": _unroutable(record)}], "route"))
            else:
                by_dataset.setdefault(ds.name, (ds, []))[1].append(i)
        for ds, rows in by_dataset.values():
            self._run(ds, parsed.subset(rows), out, report, framing=False)
        if unrouted:
            counts = report.count(layout.UNROUTED)
            counts.records_in += len(unrouted)
            counts.quarantined += len(unrouted)
            out.quarantine(layout.UNROUTED, "elt_sdk", "-", unrouted)

    def _run(self, ds: Dataset, parsed: ParsedBatch, out: ObjectOutput, report: ObjectReport,
             framing: bool = True) -> None:
        hooks = self.registry.hooks(ds)
        parsed._settle()
        rejects: list[Reject] = list(parsed.rejects) + (parsed.block.rejects if framing else [])
        written = 0
        for table, lines, refused in self._validated(ds, hooks, parsed):
            rejects += refused
            if table.num_rows:
                written += self._map_and_write(ds, hooks, table, lines, parsed.block, out, rejects)
        rejects.sort(key=lambda r: r.line)
        out.quarantine(ds.name, ds.plugin, ds.version, rejects)
        counts = report.count(ds.name)
        counts.records_in += written + len(rejects)
        counts.written += written
        counts.quarantined += len(rejects)

    def _validated(self, ds: Dataset, hooks: Any, parsed: ParsedBatch) -> Iterator[tuple[pa.Table, list[int], list[Reject]]]:
        """The validate hook's result; if it raises, the same on halves of the batch, down to the
        rows that make it raise (quarantined at stage ``validate``)."""
        try:
            validated = hooks.elt_validate(dataset=ds, batch=parsed)
        except Exception as exc:  # a plugin validator's bug on some record: isolate it
            n = len(parsed.rows)
            if n <= 1:
                if n:
                    yield ds.arrow_schema.empty_table(), [], [parsed.reject(0, _errors(exc), "validate")]
                return
            groups = [[i] for i in range(n)] if n <= ROW_BY_ROW else [list(range(n // 2)), list(range(n // 2, n))]
            for positions in groups:
                yield from self._validated(ds, hooks, parsed.subset(positions))
            return
        lines = validated.lines
        if lines is None or len(lines) != validated.table.num_rows:  # a plugin validator that did not say
            refused = {r.line for r in validated.rejects}
            lines = [i for i in parsed.rows if parsed.block.lineno(i) not in refused][:validated.table.num_rows]
        yield validated.table, list(lines), list(validated.rejects)

    def _map_and_write(self, ds: Dataset, hooks: Any, table: pa.Table, lines: list[int], block: RawBlock,
                       out: ObjectOutput, rejects: list[Reject]) -> int:
        """Map, conform and write ``table``; where that raises for some rows' values, halve until
        they stand alone and quarantine them (stage ``map``, or ``write`` for values the
        partitioning refuses). Returns the rows written."""
        stage = "map"
        try:
            mapped = conform(ds, hooks.elt_map(dataset=ds, table=table))
            stage = "write"
            # only RowValueError (raised by output.write_silver before it appends anything) splits
            # the batch: any other error may come after rows were appended (a wrapper's second
            # sink), and writing those rows again would duplicate them
            hooks.elt_write(dataset=ds, table=mapped, output=out)
            return mapped.num_rows
        except MapError:
            raise
        except Exception as exc:
            if stage == "write" and not isinstance(exc, RowValueError):
                raise  # a write hook's own failure (a sink down): the object fails and is retried
            n = table.num_rows
            if n == 1:
                rejects.append(block.reject(lines[0], _errors(exc), stage))
                return 0
            if n <= ROW_BY_ROW:
                return sum(self._map_and_write(ds, hooks, table.slice(i, 1), lines[i:i + 1], block, out, rejects)
                           for i in range(n))
            half = n // 2
            return (self._map_and_write(ds, hooks, table.slice(0, half), lines[:half], block, out, rejects)
                    + self._map_and_write(ds, hooks, table.slice(half), lines[half:], block, out, rejects))


def _errors(exc: BaseException) -> list[dict[str, str]]:
    text = str(exc)
    path = text.split(":", 1)[0] if text.startswith("$.") else "$"
    return [{"path": path, "message": f"{type(exc).__name__}: {text}" if path == "$" else text}]


def ahead(fn: Callable[[T], R], items: Iterable[T], depth: int = PARSE_AHEAD) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in order. One worker thread takes the items and computes ``fn`` for up
    to ``depth`` of them ahead while the caller works on the current one: reading and framing the
    next blocks and parsing them (file reads, pyarrow's reader and Arrow kernels release the GIL)
    overlap validating and writing this one. Only that thread advances ``items``; when the caller
    stops early, it is stopped and joined before ``items`` is closed (on the caller's thread)."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    it = iter(items)
    done: "queue.SimpleQueue[tuple[bool, Any]]" = queue.SimpleQueue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            while True:
                slots.acquire()
                if stop.is_set():
                    return
                try:
                    item = next(it)
                except StopIteration:
                    break
                done.put((True, (item, fn(item))))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, in order
            done.put((False, exc))
            return
        done.put((False, None))

    worker = threading.Thread(target=contextvars.copy_context().run, args=(produce,), name="elt-parse", daemon=True)
    worker.start()
    try:
        while True:
            ok, value = done.get()
            if not ok:
                if value is not None:
                    raise value
                return
            slots.release()
            yield value
    finally:
        stop.set()
        slots.release()  # a worker waiting for a slot wakes up and sees the stop
        worker.join()
        close = getattr(it, "close", None)
        if close is not None:
            close()


def _unroutable(record: Any) -> str:
    if not isinstance(record, dict):
        return f"record must be a JSON object, got {type(record).__name__}"
    if "record_type" not in record:
        return "no dataset prefix matched the key and the record has no record_type to route it"
    return f"no installed dataset for record_type {record['record_type']!r}"
