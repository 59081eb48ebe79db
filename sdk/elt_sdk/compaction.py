"""Compaction: the many small Parquet files of one silver partition become a few large ones.

Both modes read only the partition's *live* files: a per-object file counts when its object's
manifest names it in ``current`` (a crashed attempt's leftovers and files awaiting deletion are
left alone), a compacted file when the partition manifest lists it. Rows are streamed row group
by row group (memory holds about one row group; local disk one input and one output file), into
outputs of about ``target_bytes`` each, and the outputs are read back and compared row by row,
in order, with the inputs before anything is removed.

**Out of place** (the reference's way): outputs go to ``<output prefix>/<dataset>/dt=<dt>/``;
silver is not touched.

**In place**, under the commit protocol (``commit.py``). A compacted file holds rows of many
object versions, so the *partition manifest* (``_elt/partitions/<dataset>/<dt>.json``, changed
only by ``Store.put_if``) records, for each compacted file, which row ranges (*segments*) came
from which input file, i.e. from which object version; inputs are concatenated in key order. A
run:

1. plans the inputs and writes the outputs to ``_elt/staging/compaction/...``, then verifies them;
2. writes the partition manifest with the run as ``pending`` (inputs, outputs, segments, owner);
3. *claims* each per-object input in its object's manifest: the file moves from
   ``current.files.silver`` to ``current.compacted`` (file -> partition manifest); a file its
   object no longer names (superseded meanwhile) is a dead segment;
4. copies the outputs to their final keys under ``silver/`` (``compacted-<run>-<n>.parquet``);
5. writes the partition manifest with the outputs listed, the inputs as garbage, ``pending``
   cleared; an output holding a dead or tombstoned segment is first rewritten without it;
6. deletes the inputs and the staged files.

When an object whose rows were compacted is superseded (or its version replaced by a replay), its
commit puts the compacted files' segment ids in its garbage (area ``segments``), and collecting
that garbage takes those row ranges out: the compacted file is rewritten without them under a new
key and the partition manifest swapped by ``put_if`` (``drop_segments``). A segment held by a
pending run cannot be rewritten yet: it is *tombstoned* in the partition manifest
(``dropped``), and the run's step 5 (or its recovery) removes it. Garbage of a commit that crashed
is collected by the next commit of the key or ``Committer.repair``.

A run that dies (a crash, a timeout) leaves its ``pending`` entry; the next run of the partition,
once the dead run's lease is over (or at once when its process is known to be gone), *finishes*
it: claims, promotion, manifest and deletes are all idempotent, and the outputs were verified
before ``pending`` was written. Only if its staged outputs vanished (staging expires after
``staging_expiry_days``) is it rolled back. Readers see the inputs until step 4, inputs and
outputs during steps 4-6 (a few requests), the outputs after; never a partial file.
"""
from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from elt_sdk import faults, layout, parquet_encoding
from elt_sdk.partition import exists, listing, local_path, parquet_files
from elt_sdk.store import Conflict, Store

PARTITIONS = f"{layout.META_PREFIX}partitions/"
OBJECTS = f"{layout.META_PREFIX}objects/"
STAGING = f"{layout.META_PREFIX}staging/compaction/"
SEGMENTS = "segments"
"""Garbage area of an object manifest: ids of segments to take out of compacted files."""
COMPACTED = "compacted-"
OWNER = "owner.json"
"""In a run's staging folder: which process stages there (so a dead run's files can be removed)."""
DEFAULT_TARGET_BYTES = 128 << 20
DEFAULT_OUTPUT_PREFIX = "silver_compacted/"
LEASE_S = 900.0
"""How long a run's claim on its partition holds (the compaction function's timeout)."""
ORPHAN_AGE_S = 3600.0
"""A compacted file no manifest lists is removed once this old (a crashed writer's leftover)."""
ROW_GROUP_ROWS = 64 * 1024
MAX_ROUNDS = 20


class CompactionError(RuntimeError):
    """The run could not be made (rows differ, a partition being compacted elsewhere ...)."""


class Busy(CompactionError):
    """Another run holds the partition."""


def partition_key(dataset: str, dt: str) -> str:
    return f"{PARTITIONS}{dataset}/{dt}.json"


def partition_of(key: str) -> tuple[str, str] | None:
    """``(dataset, dt)`` of a file under ``silver/<dataset>/dt=<dt>/``."""
    root = layout.SILVER_PREFIX
    if not key.startswith(root):
        return None
    parts = key[len(root):].split("/")
    if len(parts) != 3 or not parts[1].startswith("dt="):
        return None
    return parts[0], parts[1][3:]


def compacted_key(dataset: str, dt: str, run: str, n: int) -> str:
    return f"{layout.silver_partition(dataset, dt)}{COMPACTED}{run}-{n:04d}.parquet"


def _manifest_for(file_key: str) -> str:
    """The object manifest of a per-object silver file (``<object id>-<version>-...``)."""
    return f"{OBJECTS}{file_key.rsplit('/', 1)[-1].split('-', 1)[0]}.json"


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


# -- the partition manifest ------------------------------------------------------------------------


@dataclass
class Segment:
    """Rows ``[start, start + rows)`` of a compacted file came from input file ``id`` (a
    per-object file's key, kept as the id wherever the rows move), of bronze object ``object``."""

    id: str
    object: str
    start: int
    rows: int

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Segment":
        return cls(d["id"], d.get("object", ""), int(d["start"]), int(d["rows"]))


def _segments(entry: dict[str, Any]) -> list[Segment]:
    return [Segment.from_dict(s) for s in entry.get("segments", [])]


def _entry(rows: int, segments: list[Segment], **extra: Any) -> dict[str, Any]:
    return {"rows": rows, "segments": [asdict(s) for s in segments], **extra}


def _empty(dataset: str, dt: str) -> dict[str, Any]:
    return {"dataset": dataset, "dt": dt, "files": {}, "pending": None, "dropped": [], "garbage": []}


def load_partition(store: Store, dataset: str, dt: str) -> tuple[dict[str, Any], str | None]:
    got = store.get_bytes(partition_key(dataset, dt))
    if got is None:
        return _empty(dataset, dt), None
    doc = json.loads(got[0])
    for k, v in _empty(dataset, dt).items():
        doc.setdefault(k, v)
    return doc, got[1]


def _save(store: Store, doc: dict[str, Any], token: str | None, clock: Callable[[], float]) -> str:
    doc["updated_at"] = clock()
    return store.put_if(partition_key(doc["dataset"], doc["dt"]), _dump(doc), token)


# -- reading and writing rows ------------------------------------------------------------------------


def _ranges(pf: pq.ParquetFile, start: int, rows: int) -> Iterator[pa.Table]:
    """Rows ``[start, start + rows)`` of a Parquet file, a row group at a time."""
    end, offset = start + rows, 0
    for i in range(pf.num_row_groups):
        n = pf.metadata.row_group(i).num_rows
        lo, hi = max(start, offset), min(end, offset + n)
        if lo < hi:
            table = pf.read_row_group(i)
            yield table.slice(lo - offset, hi - lo)
        offset += n
        if offset >= end:
            return


@dataclass
class Piece:
    """Rows of one input to carry: ``[start, start + rows)`` of file ``key``, segment ``id``."""

    key: str
    id: str
    object: str
    start: int
    rows: int | None  # None: the whole file


@dataclass
class Output:
    rows: int = 0
    segments: list[Segment] = field(default_factory=list)
    path: Path | None = None
    staged: str | None = None
    final: str | None = None
    bytes: int = 0


class _Writer:
    """Streams pieces into output files of about ``target_bytes``, recording segments."""

    def __init__(self, schema: pa.Schema, tmp: Path, target_bytes: float, finish: Callable[[Output], None]):
        self.schema, self.tmp, self.target_bytes, self.finish = schema, tmp, target_bytes, finish
        self.outputs: list[Output] = []
        self.writer: pq.ParquetWriter | None = None
        self.buffer: list[pa.Table] = []
        self.buffered = 0
        self.estimate = 0.0

    def _open(self, sample: pa.Table) -> Output:
        out = Output(path=self.tmp / f"out-{len(self.outputs):04d}-{uuid.uuid4().hex[:6]}.parquet")
        self.outputs.append(out)
        self.writer = parquet_encoding.open_writer(out.path, self.schema, sample)
        self.estimate = 0.0
        return out

    def add(self, table: pa.Table, seg_id: str, obj: str, bytes_per_row: float) -> None:
        while table.num_rows:
            out = self.outputs[-1] if self.writer is not None else self._open(table)
            room = table.num_rows
            if bytes_per_row > 0 and out.rows:
                room = max(1, min(room, int((self.target_bytes - self.estimate) / bytes_per_row)))
            head, table = table.slice(0, room), table.slice(room)
            last = out.segments[-1] if out.segments else None
            if last is not None and last.id == seg_id and last.start + last.rows == out.rows:
                last.rows += head.num_rows
            else:
                out.segments.append(Segment(seg_id, obj, out.rows, head.num_rows))
            out.rows += head.num_rows
            self.estimate += head.num_rows * bytes_per_row
            self.buffer.append(head)
            self.buffered += head.num_rows
            if self.buffered >= ROW_GROUP_ROWS:
                self._flush()
            if self.estimate >= self.target_bytes:
                self.close_current()

    def _flush(self) -> None:
        if self.buffer and self.writer is not None:
            table = pa.concat_tables(self.buffer) if len(self.buffer) > 1 else self.buffer[0]
            self.writer.write_table(table.cast(self.schema), row_group_size=ROW_GROUP_ROWS)
        self.buffer, self.buffered = [], 0

    def close_current(self) -> None:
        if self.writer is None:
            return
        self._flush()
        self.writer.close()
        self.writer = None
        out = self.outputs[-1]
        out.bytes = out.path.stat().st_size if out.path else 0
        self.finish(out)

    def close(self) -> list[Output]:
        self.close_current()
        return self.outputs


def _pieces_rows(store: Store, pieces: list[Piece], tmp: Path,
                 accept: Callable[[str, pa.Schema], bool] | None = None) -> Iterator[tuple[Piece, pa.Table, float]]:
    """The rows of ``pieces`` in order, with each input's bytes per row (for output sizing);
    files ``accept`` refuses (by schema) are passed over."""
    by_key: dict[str, list[Piece]] = {}
    order: list[str] = []
    for p in pieces:
        if p.key not in by_key:
            order.append(p.key)
        by_key.setdefault(p.key, []).append(p)
    for key in order:
        with local_path(store, key, tmp) as path:
            pf = pq.ParquetFile(path)
            if accept is not None and not accept(key, pf.schema_arrow):
                continue
            total = pf.metadata.num_rows
            per_row = path.stat().st_size / total if total else 0.0
            for p in by_key[key]:
                for table in _ranges(pf, p.start, total - p.start if p.rows is None else p.rows):
                    yield p, table, per_row


def _aligned(a: Iterator[pa.Table], b: Iterator[pa.Table]) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Equal-length slices of two streams of tables, in order (a short stream ends it)."""
    ta = tb = None
    while True:
        if ta is None or ta.num_rows == 0:
            ta = next(a, None)
        if tb is None or tb.num_rows == 0:
            tb = next(b, None)
        if ta is None or tb is None:
            if (ta is None) != (tb is None) and (ta if ta is not None else tb).num_rows:
                yield (ta if ta is not None else pa.table({})), (tb if tb is not None else pa.table({}))
            return
        n = min(ta.num_rows, tb.num_rows)
        yield ta.slice(0, n), tb.slice(0, n)
        ta, tb = ta.slice(n), tb.slice(n)


def _equal(a: pa.Table, b: pa.Table) -> bool:
    if a.num_rows != b.num_rows or a.column_names != b.column_names:
        return False
    if a.equals(b):
        return True
    return a.to_pylist() == b.to_pylist() or _nan_equal(a.to_pylist(), b.to_pylist())


def _nan_equal(x: list[dict[str, Any]], y: list[dict[str, Any]]) -> bool:
    def norm(v: Any) -> Any:
        return "NaN" if isinstance(v, float) and v != v else v
    return [{k: norm(v) for k, v in r.items()} for r in x] == [{k: norm(v) for k, v in r.items()} for r in y]


def verify(store: Store, pieces: list[Piece], outputs: list[tuple[str, int]], schema: pa.Schema, tmp: Path) -> int:
    """Read the outputs (``(key, rows)``) back and compare them, row by row and in order, with the
    pieces; the rows compared. Raises CompactionError on any difference."""
    def inputs() -> Iterator[pa.Table]:
        for _, table, _ in _pieces_rows(store, pieces, tmp):
            yield table.cast(schema)

    def written() -> Iterator[pa.Table]:
        for key, _ in outputs:
            with local_path(store, key, tmp) as path:
                pf = pq.ParquetFile(path)
                for i in range(pf.num_row_groups):
                    yield pf.read_row_group(i)

    n = 0
    for x, y in _aligned(inputs(), written()):
        if not _equal(x, y):
            raise CompactionError(f"the compacted rows differ from the inputs near row {n}: nothing was changed")
        n += x.num_rows
    expected = sum(rows for _, rows in outputs)
    if n != expected:
        raise CompactionError(f"compacted {n} rows but the outputs say {expected}: nothing was changed")
    return n


# -- planning ------------------------------------------------------------------------------------


@dataclass
class Plan:
    pieces: list[Piece] = field(default_factory=list)
    object_inputs: dict[str, str] = field(default_factory=dict)
    """per-object input file -> its object manifest key"""
    compacted_inputs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    bytes_in: int = 0
    schema: pa.Schema | None = None

    @property
    def input_files(self) -> int:
        return len(self.object_inputs) + len(self.compacted_inputs)


def plan(store: Store, dataset: str, dt: str, doc: dict[str, Any], *, target_bytes: float,
         schema: pa.Schema | None, clock: Callable[[], float], include_large: bool = False) -> Plan:
    """The partition's live files, in key order: per-object files their object's manifest names
    as current, and compacted files the partition manifest lists (their segments, tombstoned ones
    left out). Compacted files near the target size stay as they are (unless ``include_large``)."""
    prefix = layout.silver_partition(dataset, dt)
    p = Plan(schema=schema)
    dropped = set(doc.get("dropped", []))
    pending = doc.get("pending") or {}
    held = set(pending.get("files", {})) | set(pending.get("inputs", []))
    files = listing(store, prefix)
    manifests = _manifests(store, {_manifest_for(k) for k in files
                                   if k.endswith(".parquet") and not k.rsplit("/", 1)[-1].startswith(COMPACTED)})
    for key in sorted(files):
        name = key.rsplit("/", 1)[-1]
        if not name.endswith(".parquet"):
            continue
        size, modified = files[key]
        if name.startswith(COMPACTED):
            entry = doc["files"].get(key)
            if entry is None:
                if key not in held and modified is not None and clock() - modified > ORPHAN_AGE_S:
                    p.orphans.append(key)
                continue
            segs = _segments(entry)
            live = [s for s in segs if s.id not in dropped]
            if size >= 0.8 * target_bytes and len(live) == len(segs) and not include_large:
                continue
            p.compacted_inputs.append(key)
            p.bytes_in += size
            p.pieces += [Piece(key, s.id, s.object, s.start, s.rows) for s in live]
        else:
            mkey = _manifest_for(key)
            m = manifests.get(mkey)
            current = (m or {}).get("current") or {}
            if key not in (current.get("files") or {}).get("silver", []):
                continue  # an attempt in flight, or garbage awaiting deletion: not ours to touch
            if any(((m or {}).get("garbage") or {}).values()):
                continue  # its commit's step 5 is not done: the delivery that finishes it announces these files
            p.object_inputs[key] = mkey
            p.bytes_in += size
            p.pieces.append(Piece(key, key, m.get("key", ""), 0, None))  # type: ignore[union-attr]
    return p


def _manifests(store: Store, keys: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """The object manifests ``keys`` (read eight at a time: one request each)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(key: str) -> tuple[str, dict[str, Any] | None]:
        got = store.get_bytes(key)
        return key, json.loads(got[0]) if got else None

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, sorted(keys)))


def _accept_schema(p: Plan) -> Callable[[str, pa.Schema], bool]:
    """Files of another schema (written before a plugin changed its silver schema) stay apart:
    the plan's schema (the dataset's silver schema), or else the first file's, decides."""
    def accept(key: str, schema: pa.Schema) -> bool:
        schema = schema.remove_metadata()
        if p.schema is None:
            p.schema = schema
        if schema.equals(p.schema.remove_metadata()):
            return True
        p.skipped.append(key)
        p.object_inputs.pop(key, None)
        if key in p.compacted_inputs:
            p.compacted_inputs.remove(key)
        return False
    return accept


def _vanished(exc: BaseException) -> bool:
    """An input removed meanwhile (its object superseded): plan again."""
    if isinstance(exc, FileNotFoundError):
        return True
    response = getattr(exc, "response", None)
    return isinstance(response, dict) and str(response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound")


# -- a run ---------------------------------------------------------------------------------------------


@dataclass
class Report:
    dataset: str
    dt: str
    mode: str
    input_files: int = 0
    output_files: int = 0
    rows: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    keys: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    dead_segments: int = 0
    recovered: str | None = None
    nothing_to_do: bool = False
    files_before: int = 0
    files_after: int = 0
    """Parquet files in the partition (in place) before and after the run."""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compact(store: Store, dataset: str, dt: str, *, in_place: bool = False, target_bytes: float = DEFAULT_TARGET_BYTES,
            output_prefix: str = DEFAULT_OUTPUT_PREFIX, schema: pa.Schema | None = None,
            clock: Callable[[], float] = time.time, lease_s: float = LEASE_S,
            tmp_dir: str | None = None) -> Report:
    """Compact one partition of ``store`` (the silver store); see the module docstring."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="elt-compact-", dir=tmp_dir) as tmp_name:
        tmp = Path(tmp_name)
        if in_place:
            before = len(parquet_files(store, dataset, dt))
            report = _in_place(store, dataset, dt, target_bytes, schema, clock, lease_s, tmp)
            report.files_before, report.files_after = before, len(parquet_files(store, dataset, dt))
        else:
            report = _out_of_place(store, dataset, dt, target_bytes, output_prefix, schema, clock, tmp)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _write_outputs(store: Store, p: Plan, target_bytes: float, tmp: Path,
                   finish: Callable[[Output], None]) -> list[Output]:
    writer: _Writer | None = None
    for piece, table, per_row in _pieces_rows(store, p.pieces, tmp, _accept_schema(p)):
        if writer is None:
            assert p.schema is not None
            writer = _Writer(p.schema, tmp, target_bytes, finish)
        writer.add(table, piece.id, piece.object, per_row)
    skipped = set(p.skipped)
    p.pieces = [x for x in p.pieces if x.key not in skipped]
    return writer.close() if writer is not None else []


def _out_of_place(store: Store, dataset: str, dt: str, target_bytes: float, output_prefix: str,
                  schema: pa.Schema | None, clock: Callable[[], float], tmp: Path) -> Report:
    root = output_prefix.strip("/")
    if root == layout.SILVER_PREFIX.strip("/"):
        raise CompactionError("the output prefix must not be silver/: use in-place compaction to rewrite silver")
    doc, _ = load_partition(store, dataset, dt)
    p = plan(store, dataset, dt, doc, target_bytes=target_bytes, schema=schema, clock=clock, include_large=True)
    report = Report(dataset, dt, "out-of-place", input_files=p.input_files, bytes_in=p.bytes_in, skipped=p.skipped)
    out_prefix = layout.silver_partition(dataset, dt, root=root)
    old = [k for k in store.list(out_prefix)]
    if not p.pieces:
        report.nothing_to_do = True
        return report

    def finish(out: Output) -> None:
        out.final = f"{out_prefix}part-{len(report.keys):05d}.parquet"
        store.put_file(out.final, out.path)  # type: ignore[arg-type]
        out.path.unlink(missing_ok=True)  # type: ignore[union-attr]
        report.keys.append(out.final)

    try:
        outputs = _write_outputs(store, p, target_bytes, tmp, finish)
        report.rows = verify(store, p.pieces, [(o.final, o.rows) for o in outputs], p.schema, tmp)  # type: ignore[misc, arg-type]
    except BaseException:
        store.delete(report.keys)  # no unverified copy is left behind
        raise
    store.delete([k for k in old if k not in set(report.keys)])  # a previous run's surplus parts
    report.output_files, report.bytes_out = len(outputs), sum(o.bytes for o in outputs)
    return report


def _dead_staging(store: Store, dataset: str, dt: str, clock: Callable[[], float]) -> list[str]:
    """Staged files of runs that died before writing ``pending`` (their owner is gone, or they
    are older than ``ORPHAN_AGE_S`` and say nothing of their owner)."""
    runs: dict[str, list[str]] = {}
    oldest: dict[str, float] = {}
    for key, (_, modified) in listing(store, f"{STAGING}{dataset}/{dt}/").items():
        run = key.rsplit("/", 1)[0]
        runs.setdefault(run, []).append(key)
        oldest[run] = min(oldest.get(run, modified or 0), modified or 0)
    dead = []
    for run, keys in runs.items():
        got = store.get_bytes(f"{run}/{OWNER}")
        owner = json.loads(got[0]) if got else None
        if (owner is not None and _owner_gone(owner, clock)) or (owner is None and clock() - oldest[run] > ORPHAN_AGE_S):
            dead += keys
    return dead


def _owner(clock: Callable[[], float], lease_s: float) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "lease_until": clock() + lease_s}


def _owner_gone(owner: dict[str, Any], clock: Callable[[], float]) -> bool:
    """Is the run that wrote ``pending`` over: its lease ended, or (on this machine) its process is gone?"""
    if clock() > float(owner.get("lease_until", 0)):
        return True
    if owner.get("host") == socket.gethostname() and owner.get("pid"):
        from elt_sdk.processes import pid_alive

        pid = int(owner["pid"])
        return pid == os.getpid() or not pid_alive(pid)
    return False


def _in_place(store: Store, dataset: str, dt: str, target_bytes: float, schema: pa.Schema | None,
              clock: Callable[[], float], lease_s: float, tmp: Path) -> Report:
    report = Report(dataset, dt, "in-place")
    for _ in range(MAX_ROUNDS):
        doc, token = load_partition(store, dataset, dt)
        if doc.get("garbage") and not doc.get("pending"):  # what a run (or a rewrite) left to delete
            _collect(store, doc, token, clock)
            report.recovered = report.recovered or "deleted the inputs an interrupted run had replaced"
            continue
        if doc.get("pending"):
            owner = doc["pending"].get("owner", {})
            if not _owner_gone(owner, clock):
                raise Busy(f"{dataset} dt={dt} is being compacted by {owner.get('host')} pid {owner.get('pid')} "
                           f"(its lease ends in {float(owner.get('lease_until', 0)) - clock():.0f}s); try again later")
            report.recovered = _recover(store, doc, token, clock, tmp)
            continue
        p = plan(store, dataset, dt, doc, target_bytes=target_bytes, schema=schema, clock=clock)
        p.orphans += _dead_staging(store, dataset, dt, clock)
        if p.orphans:
            store.delete(p.orphans)
        report.input_files, report.bytes_in, report.skipped = p.input_files, p.bytes_in, p.skipped
        if p.input_files < 2 and not (p.compacted_inputs and
                                      len(p.pieces) < sum(len(doc["files"][k]["segments"]) for k in p.compacted_inputs)):
            report.nothing_to_do = True
            return report
        run = uuid.uuid4().hex[:10]
        staging = f"{STAGING}{dataset}/{dt}/{run}/"
        store.put_bytes(f"{staging}{OWNER}", _dump(_owner(clock, lease_s)))

        def finish(out: Output, _n: list[int] = [0]) -> None:  # noqa: B006 - a counter local to this run
            out.staged = f"{staging}part-{_n[0]:04d}.parquet"
            out.final = compacted_key(dataset, dt, run, _n[0])
            _n[0] += 1
            store.put_file(out.staged, out.path)  # type: ignore[arg-type]
            out.path.unlink(missing_ok=True)  # type: ignore[union-attr]

        outputs: list[Output] = []
        try:
            outputs = _write_outputs(store, p, target_bytes, tmp, finish)
            report.rows = verify(store, p.pieces, [(o.staged, o.rows) for o in outputs], p.schema, tmp)  # type: ignore[misc]
        except Exception as exc:
            store.delete([o.staged for o in outputs if o.staged] + [f"{staging}{OWNER}"])
            if _vanished(exc):  # an input was superseded meanwhile: plan again
                continue
            raise
        report.input_files, report.skipped = p.input_files, p.skipped
        if p.input_files < 2 and not outputs:
            report.nothing_to_do = True
            return report
        faults.point("compact:staged")
        doc["pending"] = {"run": run, "started_at": clock(), "owner": _owner(clock, lease_s),
                          "inputs": sorted(p.object_inputs) + p.compacted_inputs, "objects": p.object_inputs,
                          "files": {o.final: _entry(o.rows, o.segments, staged=o.staged, bytes=o.bytes) for o in outputs}}
        try:
            token = _save(store, doc, token, clock)
        except Conflict:  # the partition changed since it was read (a rewrite, a tombstone): plan again
            store.delete([o.staged for o in outputs if o.staged] + [f"{staging}{OWNER}"])
            continue
        faults.point("compact:pending")
        report.dead_segments, report.keys = _finish(store, doc, token, clock, tmp)
        report.output_files = len(report.keys)
        report.bytes_out = sum(o.bytes for o in outputs)
        return report
    raise CompactionError(f"{dataset} dt={dt}: the partition kept changing; {MAX_ROUNDS} plans abandoned")


def _claim(store: Store, file_key: str, mkey: str, pkey: str) -> bool:
    """Move ``file_key`` from its object's current files to its compacted ones (True), unless the
    object no longer names it (False: superseded or replaced meanwhile, a dead segment)."""
    for _ in range(MAX_ROUNDS * 5):
        got = store.get_bytes(mkey)
        if got is None:
            return False
        doc, token = json.loads(got[0]), got[1]
        current = doc.get("current") or {}
        compacted = current.get("compacted") or {}
        if compacted.get(file_key) == pkey:
            return True
        files = current.get("files") or {}
        silver = list(files.get("silver", []))
        if file_key not in silver:
            return False
        silver.remove(file_key)
        current = {**current, "files": {**files, "silver": silver}, "compacted": {**compacted, file_key: pkey}}
        try:
            store.put_if(mkey, _dump({**doc, "current": current}), token)
            return True
        except Conflict:
            continue
    raise CompactionError(f"{mkey}: too many concurrent changes while claiming {file_key}")


def _finish(store: Store, doc: dict[str, Any], token: str | None, clock: Callable[[], float],
            tmp: Path) -> tuple[int, list[str]]:
    """Steps 3-6 of a run whose ``pending`` entry is written (also how a dead run is finished)."""
    pending = doc["pending"]
    pkey = partition_key(doc["dataset"], doc["dt"])
    dead: set[str] = set()
    for file_key, mkey in sorted(pending.get("objects", {}).items()):
        if not _claim(store, file_key, mkey, pkey):
            dead.add(file_key)
        faults.point("compact:claimed-one")
    faults.point("compact:claimed")
    for final, entry in sorted(pending["files"].items()):
        if not exists(store, final):
            store.copy(entry["staged"], final)
    faults.point("compact:promoted")
    written: list[str] = []
    for _ in range(MAX_ROUNDS * 5):
        drop = dead | set(doc.get("dropped", []))
        files = dict(doc["files"])
        for k in pending["inputs"]:
            files.pop(k, None)
        staging = {e["staged"].rsplit("/", 1)[0] + "/" + OWNER for e in pending["files"].values() if e.get("staged")}
        garbage = list(pending["inputs"]) + [e["staged"] for e in pending["files"].values() if e.get("staged")] \
            + sorted(staging)
        for final, entry in sorted(pending["files"].items()):
            segs = _segments(entry)
            if any(s.id in drop for s in segs):
                new_key, new_entry = rewrite_without(store, final, entry, drop, tmp)
                garbage.append(final)
                if new_key:
                    written.append(new_key)
                    files[new_key] = new_entry
            else:
                files[final] = _entry(entry["rows"], segs)
        held = {s["id"] for e in files.values() for s in e["segments"]}
        new = {**doc, "files": files, "pending": None, "garbage": sorted(set(doc.get("garbage", [])) | set(garbage)),
               "dropped": sorted(d for d in doc.get("dropped", []) if d in held)}
        try:
            token = _save(store, new, token, clock)
            break
        except Conflict:  # a tombstone (or a recovery) came in: read again and recheck
            store.delete(written)
            written = []
            doc, token = load_partition(store, doc["dataset"], doc["dt"])
            if (doc.get("pending") or {}).get("run") != pending["run"]:
                return len(dead), []  # another process finished (or rolled back) this run
    else:
        raise CompactionError(f"{pkey}: too many concurrent changes while finishing run {pending['run']}")
    faults.point("compact:finalized")
    _collect(store, new, token, clock)
    mine = set(pending["files"]) | set(written)
    return len(dead), sorted(k for k in files if k in mine)


def _collect(store: Store, doc: dict[str, Any], token: str | None, clock: Callable[[], float],
             extra: Iterable[str] = ()) -> None:
    """Delete the manifest's garbage (and ``extra``), then unlist it (best effort: it is gone
    whatever the manifest says, and deleting a key twice is harmless)."""
    gone = set(doc.get("garbage", []))
    store.delete(sorted(gone | set(extra)))
    for _ in range(MAX_ROUNDS):
        left = [g for g in doc.get("garbage", []) if g not in gone]
        if len(left) == len(doc.get("garbage", [])):
            return
        try:
            _save(store, {**doc, "garbage": left}, token, clock)
            return
        except Conflict:
            doc, token = load_partition(store, doc["dataset"], doc["dt"])


def _recover(store: Store, doc: dict[str, Any], token: str | None, clock: Callable[[], float], tmp: Path) -> str:
    """Finish a dead run (its outputs were verified before it wrote ``pending``), or roll it back
    if its staged outputs are gone. Says which."""
    pending = doc["pending"]
    missing = [f for f, e in pending["files"].items()
               if store.get_bytes(e["staged"]) is None and not exists(store, f)]
    if not missing:
        _finish(store, doc, token, clock, tmp)
        return f"finished run {pending['run']}"
    pkey = partition_key(doc["dataset"], doc["dt"])
    for file_key, mkey in pending.get("objects", {}).items():  # give the claimed files back
        _unclaim(store, file_key, mkey, pkey)
    store.delete(sorted(pending["files"]))
    doc = {**doc, "pending": None}
    _save(store, doc, token, clock)
    held = [k for k in doc["files"] if any(s["id"] in set(doc.get("dropped", [])) for s in doc["files"][k]["segments"])]
    if held:
        drop_segments(store, sorted(set(doc.get("dropped", []))), clock=clock)
    return f"rolled back run {pending['run']} (its staged outputs expired)"


def _unclaim(store: Store, file_key: str, mkey: str, pkey: str) -> None:
    for _ in range(MAX_ROUNDS * 5):
        got = store.get_bytes(mkey)
        if got is None:
            return
        doc, token = json.loads(got[0]), got[1]
        current = doc.get("current") or {}
        compacted = dict(current.get("compacted") or {})
        if compacted.get(file_key) != pkey:
            return
        del compacted[file_key]
        files = current.get("files") or {}
        current = {**current, "files": {**files, "silver": [*files.get("silver", []), file_key]}, "compacted": compacted}
        try:
            store.put_if(mkey, _dump({**doc, "current": current}), token)
            return
        except Conflict:
            continue


# -- taking superseded rows out ---------------------------------------------------------------------------


def rewrite_without(store: Store, key: str, entry: dict[str, Any], drop: set[str], tmp: Path) -> tuple[str | None, dict[str, Any] | None]:
    """Write compacted file ``key`` again without the segments in ``drop``, under a new key;
    (new key, its entry), or (None, None) when nothing is left of it."""
    keep = [s for s in _segments(entry) if s.id not in drop]
    if not keep:
        return None, None
    part = partition_of(key)
    assert part is not None
    new_key = compacted_key(part[0], part[1], uuid.uuid4().hex[:10], 0)
    with local_path(store, key, tmp) as path:
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        writer = _Writer(schema, tmp, float("inf"), lambda out: None)
        for s in keep:
            for table in _ranges(pf, s.start, s.rows):
                writer.add(table, s.id, s.object, 0.0)
        [out] = writer.close()
    try:
        store.put_file(new_key, out.path)  # type: ignore[arg-type]
    finally:
        out.path.unlink(missing_ok=True)  # type: ignore[union-attr]
    return new_key, _entry(out.rows, out.segments)


def drop_segments(store: Store, ids: Iterable[str], *, clock: Callable[[], float] = time.time) -> int:
    """Take the rows of segments ``ids`` (superseded object versions' files) out of the
    compacted files holding them; a segment held by a pending run is tombstoned for the run to
    drop. Called when a commit collects its garbage; idempotent. Returns files rewritten."""
    by_partition: dict[tuple[str, str], set[str]] = {}
    for i in ids:
        part = partition_of(i)
        if part is not None:
            by_partition.setdefault(part, set()).add(i)
    rewritten = 0
    with tempfile.TemporaryDirectory(prefix="elt-drop-") as tmp_name:
        tmp = Path(tmp_name)
        for (dataset, dt), wanted in sorted(by_partition.items()):
            for _ in range(MAX_ROUNDS * 5):
                got = store.get_bytes(partition_key(dataset, dt))
                if got is None:
                    break
                doc, token = json.loads(got[0]), got[1]
                pending = doc.get("pending") or {}
                held_by_run = {s["id"] for e in pending.get("files", {}).values() for s in e.get("segments", [])}
                run_inputs = set(pending.get("inputs", []))
                tombs = set(doc.get("dropped", []))
                new_tombs = set()
                affected: dict[str, dict[str, Any]] = {}
                for key, entry in doc.get("files", {}).items():
                    ids_here = {s["id"] for s in entry.get("segments", [])} & wanted
                    if not ids_here:
                        continue
                    if key in run_inputs:
                        new_tombs |= ids_here
                    else:
                        affected[key] = entry
                new_tombs |= wanted & held_by_run
                new_tombs -= tombs
                if not affected and not new_tombs:
                    break  # nothing of them here (already taken out, or never compacted)
                written, files, garbage = [], dict(doc["files"]), list(doc.get("garbage", []))
                for key, entry in sorted(affected.items()):
                    new_key, new_entry = rewrite_without(store, key, entry, wanted | tombs, tmp)
                    del files[key]
                    garbage.append(key)
                    if new_key:
                        files[new_key] = new_entry  # type: ignore[assignment]
                        written.append(new_key)
                still_held = held_by_run | {s_["id"] for k, e in files.items() if k in run_inputs
                                            for s_ in e.get("segments", [])}
                new = {**doc, "files": files, "garbage": garbage,
                       "dropped": sorted(t for t in tombs | new_tombs if t in still_held)}
                try:
                    token = _save(store, new, token, clock)
                except Conflict:
                    store.delete(written)
                    continue
                rewritten += len(written)
                _collect(store, new, token, clock)
                break
            else:
                raise CompactionError(f"{dataset} dt={dt}: too many concurrent changes while dropping segments")
    return rewritten
