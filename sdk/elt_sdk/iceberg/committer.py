"""The one writer of silver's Iceberg tables: a batch of commit messages, one snapshot per table.

A commit message (``commit.IcebergHandoff`` sends it) names one object version's round: its
bronze key, its version, the silver files it staged under the tables' data folders (each file one
day of one dataset, every row carrying ``_elt_source`` = the key and ``_elt_version``), and every
table that may hold rows of the key (``tables``: this round's and every earlier round's).

For each table the batch touches, in one transaction (one snapshot), each attempt:

1. load the table (the snapshot it plans on), then read each message's object manifest: a round
   the manifest no longer names current is *superseded* and skipped (a newer round of the key
   has been handed off, and will replace whatever the table holds) — so versions land in
   ``ObjectVersion`` order, never an older one after a newer one;
2. evolve the schema if the files need it (``schema.py``), or refuse those messages for good;
3. find what the table holds of each key (``_elt_source``): files of one object are known from
   their column bounds, files shared by several objects (compacted) are read (two columns); a key
   whose rows are exactly this round's (``_elt_version``) is a *duplicate* delivery: nothing to do;
4. drop the files of the other keys' older rounds, rewrite the shared files without those keys'
   rows, add the new files: one ``ReplaceObjects`` snapshot, whose conflict check refuses it when
   anything was added for the same keys, or a dropped file removed, since step 1 (then plan again).

Nothing of an object is visible before its snapshot; a message that fails leaves the table as it
was (its files stay unreferenced, and orphan removal deletes them once older than
``iceberg_orphan_age_days``). An object whose records go to several datasets lands table by table.
"""
from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.exceptions import CommitFailedException, ValidationException
from pyiceberg.expressions import AlwaysTrue, In
from pyiceberg.io.pyarrow import ArrowScan
from pyiceberg.manifest import DataFile
from pyiceberg.table import DataScan, FileScanTask, Transaction

from elt_sdk import __version__
from elt_sdk import kernels as k
from elt_sdk.commit import ELT_SOURCE, ELT_VERSION, HANDOFF_VERSION, Committer
from elt_sdk.errors import BadMessage
from elt_sdk.iceberg import schema as schemas
from elt_sdk.iceberg.catalog import Warehouse
from elt_sdk.iceberg.producers import FileWriter, ReplaceObjects, day_of, producer
from elt_sdk.source import ObjectVersion, SourceRef
from elt_sdk.store import Store

COMMITTED, DUPLICATE, SUPERSEDED, FAILED = "committed", "already committed", "superseded", "failed"
ATTEMPTS = 8
"""Plans per table and batch before the batch's messages fail (and are retried by the queue)."""


@dataclass(frozen=True)
class HandedFile:
    dataset: str
    dt: str
    key: str
    rows: int
    elt_version: str


@dataclass(frozen=True)
class CommitMessage:
    """One object version's round, as the transform handed it over."""

    commit: str
    key: str
    source: str
    version: ObjectVersion
    round: str
    tables: tuple[str, ...]
    files: tuple[HandedFile, ...]

    @classmethod
    def parse(cls, body: str | dict[str, Any]) -> "CommitMessage":
        try:
            d = json.loads(body) if isinstance(body, str) else dict(body)
            if not isinstance(d, dict) or d.get("v") != HANDOFF_VERSION:
                raise BadMessage(f"not a commit message of version {HANDOFF_VERSION}: {str(body)[:200]!r}")
            files = tuple(HandedFile(f["dataset"], f["dt"], f["key"], int(f["rows"]), f["elt_version"])
                          for f in d["files"])
            return cls(d["commit"], d["key"], d["source"], ObjectVersion.from_dict(d["version"]), d["round"],
                       tuple(sorted(set(d["tables"]) | {f.dataset for f in files})), files)
        except (ValueError, KeyError, TypeError) as exc:
            if isinstance(exc, BadMessage):
                raise
            raise BadMessage(f"not a commit message: {type(exc).__name__}: {exc}: {str(body)[:200]!r}") from None

    def in_table(self, dataset: str) -> list[HandedFile]:
        return [f for f in self.files if f.dataset == dataset]

    @property
    def ref(self) -> SourceRef:
        return SourceRef(self.source, self.version.etag, 0, self.key, self.version)


@dataclass
class Result:
    """What became of one message: ``status`` over all its tables, and per table."""

    message: CommitMessage
    tables: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    permanent: bool = False
    snapshots: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        states = set(self.tables.values())
        for state in (FAILED, COMMITTED, SUPERSEDED):
            if state in states:
                return state
        return DUPLICATE if states else COMMITTED

    def fail(self, dataset: str, error: str, permanent: bool) -> None:
        self.tables[dataset] = FAILED
        self.error = self.error or error
        self.permanent = self.permanent or permanent


@dataclass
class _Held:
    versions: set[str] = field(default_factory=set)
    whole: list[DataFile] = field(default_factory=list)
    shared: list[DataFile] = field(default_factory=list)


class IcebergCommitter:
    """Commits batches of messages into the tables of ``warehouse``; ``silver`` (and
    ``quarantine``) are the stores of the object manifests and failure markers."""

    def __init__(self, warehouse: Warehouse, silver: Store, quarantine: Store | None = None, *,
                 attempts: int = ATTEMPTS, workers: int = 8):
        self.warehouse = warehouse
        self.silver = silver
        self.manifests = Committer(silver, quarantine)
        self.attempts = attempts
        self.workers = workers
        self._plans: dict[tuple[Any, int, str], tuple[Any, Any]] = {}

    def commit(self, messages: Iterable[CommitMessage]) -> list[Result]:
        unique: dict[str, CommitMessage] = {}
        for m in messages:
            unique.setdefault(m.commit, m)
        results = {c: Result(m) for c, m in unique.items()}
        by_table: dict[str, list[CommitMessage]] = defaultdict(list)
        for m in unique.values():
            for t in m.tables:
                by_table[t].append(m)
        for dataset in sorted(by_table):
            self._commit_table(dataset, by_table[dataset], results)
        return list(results.values())

    def mark_failed(self, message: CommitMessage, error: str, attempts: int | None = None) -> str | None:
        """The object version's failure marker (the transform's), for a message that will never commit."""
        return self.manifests.mark_failed(message.ref, error, stage="commit", attempts=attempts, datasets=message.tables,
                                          even_if_current=True)

    # -- one table -------------------------------------------------------------------------------

    def _commit_table(self, dataset: str, messages: list[CommitMessage], results: dict[str, Result]) -> None:
        error = "?"
        for attempt in range(self.attempts):
            table = self.warehouse.load(dataset)
            live = [m for m in messages if results[m.commit].tables.get(dataset) != FAILED]
            live = self._gate(live, dataset, results)
            if not live:
                return
            footers = self._footers([f for m in live for f in m.in_table(dataset)])
            for m in list(live):
                bad = [footers[f.key] for f in m.in_table(dataset) if isinstance(footers[f.key], Exception)]
                if bad:  # gone or not Parquet: never; anything else (a throttled read): the queue retries
                    permanent = isinstance(bad[0], (FileNotFoundError, pa.ArrowInvalid))
                    results[m.commit].fail(dataset, f"{m.source}: a staged silver file cannot be read: "
                                                    f"{type(bad[0]).__name__}: {bad[0]}", permanent)
                    live.remove(m)
            if not live:
                return
            if table is None:
                first = next((footers[f.key] for m in live for f in m.in_table(dataset)), None)
                if first is None:  # the table never held anything: nothing to remove
                    for m in live:
                        results[m.commit].tables[dataset] = COMMITTED
                    return
                try:
                    table = self.warehouse.create(dataset, *schemas.new_table(first[0].schema.to_arrow_schema()))
                except schemas.SchemaRefused as exc:
                    for m in live:
                        results[m.commit].fail(dataset, str(exc), True)
                    return
            tx = table.transaction()
            live = self._evolve(dataset, tx, live, footers, results)
            if not live:
                return
            writer: FileWriter | None = None
            try:
                plan = self._plan(dataset, tx, live, footers, results)
                if plan is None:
                    return
                changed, drops, adds, rewrites = plan
                if rewrites:  # shared files: replaced by copies without the replaced keys' rows
                    writer = FileWriter(self.warehouse, self.silver, tx, dataset)
                    adds += self._rewrite(tx, rewrites, writer)
                    drops += list(rewrites)
                with producer(ReplaceObjects, tx, {"elt.objects": str(len(changed)), "elt.committer": __version__}) as p:
                    p.conflict_filter = In(ELT_SOURCE, {m.key for m in changed})
                    for df in drops:
                        p.delete_data_file(df)
                    for df in adds:
                        p.append_data_file(df)
                tx.commit_transaction()
            except (CommitFailedException, ValidationException) as exc:
                if writer is not None:
                    writer.abort()  # the commit did not land: the rewritten files are nobody's
                error = f"{type(exc).__name__}: {exc}"
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
                continue
            snapshot = table.refresh().current_snapshot()
            for m in changed:
                r = results[m.commit]
                r.tables[dataset] = COMMITTED
                if snapshot is not None:
                    r.snapshots[dataset] = snapshot.snapshot_id
            return
        for m in messages:
            if results[m.commit].tables.get(dataset) is None:
                results[m.commit].fail(dataset, f"{dataset}: {self.attempts} commit attempts lost to concurrent "
                                                f"writers; last: {error}", False)

    def _gate(self, messages: list[CommitMessage], dataset: str, results: dict[str, Result]) -> list[CommitMessage]:
        """The messages whose round the object manifest names current (read after the table)."""
        with ThreadPoolExecutor(min(self.workers, max(1, len(messages)))) as pool:
            current = list(pool.map(lambda m: self.manifests.current(m.key), messages))
        live = []
        for m, cur in zip(messages, current):
            if cur and cur.get("round") == m.round and m.version.same_as(ObjectVersion.from_dict(cur["version"])):
                live.append(m)
            else:
                results[m.commit].tables[dataset] = SUPERSEDED
        return live

    def _footers(self, files: list[HandedFile]) -> dict[str, Any]:
        """Each file's (Parquet footer, size), or the exception reading it raised."""
        io = self.warehouse.catalog._load_file_io()  # noqa: SLF001 - the catalog's FileIO, as its tables get it

        def read(f: HandedFile) -> Any:
            try:
                stream = io.new_input(self.warehouse.uri(f.key))
                with stream.open() as fh:
                    return pq.read_metadata(fh), len(stream)
            except Exception as exc:  # noqa: BLE001 - reported per message
                return exc

        with ThreadPoolExecutor(min(self.workers, max(1, len(files)))) as pool:
            return dict(zip([f.key for f in files], pool.map(read, files)))

    def _evolve(self, dataset: str, tx: Transaction, live: list[CommitMessage], footers: dict[str, Any],
                results: dict[str, Result]) -> list[CommitMessage]:
        """Evolve the schema for the messages' files, in ``tx``; refuse the messages it cannot take."""
        kept = []
        verdicts: dict[str, str | None] = {}  # each distinct file schema is judged once
        for m in live:
            refused = None
            for f in m.in_table(dataset):
                arrow = footers[f.key][0].schema.to_arrow_schema()
                fingerprint = arrow.to_string(show_schema_metadata=False)
                if fingerprint not in verdicts:
                    verdicts[fingerprint] = None
                    schema = tx.table_metadata.schema()
                    if schemas.differs(schema, arrow):
                        try:
                            with tx.update_schema() as update:
                                schemas.evolve(dataset, update, schema, arrow)
                        except schemas.SchemaRefused as exc:
                            verdicts[fingerprint] = str(exc)
                refused = refused or verdicts[fingerprint]
            if refused:
                results[m.commit].fail(dataset, refused, True)
            else:
                kept.append(m)
        return kept

    def _plan(self, dataset: str, tx: Transaction, live: list[CommitMessage], footers: dict[str, Any],
              results: dict[str, Result]) -> tuple[list[CommitMessage], list[DataFile], list[DataFile],
                                                   dict[DataFile, set[str]]] | None:
        metadata = tx.table_metadata  # computed from the transaction's updates on every access: once
        held = self._holdings(metadata, tx._table.io, {m.key for m in live})  # noqa: SLF001
        changed, drops, adds = [], [], []
        rewrites: dict[DataFile, set[str]] = defaultdict(set)
        for m in live:
            mine = {f.elt_version for f in m.in_table(dataset)}
            h = held.get(m.key, _Held())
            if h.versions == mine:
                results[m.commit].tables[dataset] = DUPLICATE
                continue
            changed.append(m)
            drops += h.whole
            for df in h.shared:
                rewrites[df].add(m.key)
            adds += [self._data_file(metadata, f, footers[f.key]) for f in m.in_table(dataset)]
        if not changed:
            return None
        return changed, drops, adds, rewrites

    def _holdings(self, metadata: Any, io: Any, keys: set[str]) -> dict[str, _Held]:
        schema = metadata.schema()
        src, ver = schema.find_field(ELT_SOURCE).field_id, schema.find_field(ELT_VERSION).field_id
        held: dict[str, _Held] = defaultdict(_Held)
        shared: list[DataFile] = []
        for task in DataScan(table_metadata=metadata, io=io, row_filter=In(ELT_SOURCE, keys)).plan_files():
            df = task.file
            lo, hi = (df.lower_bounds or {}).get(src), (df.upper_bounds or {}).get(src)
            vlo, vhi = (df.lower_bounds or {}).get(ver), (df.upper_bounds or {}).get(ver)
            if lo is not None and lo == hi and vlo is not None and vlo == vhi and not task.delete_files:
                key = lo.decode()
                if key in keys:
                    held[key].whole.append(df)
                    held[key].versions.add(vlo.decode())
            else:
                shared.append(df)

        def columns(df: DataFile) -> pa.Table:
            with io.new_input(df.file_path).open() as fh:
                return pq.read_table(fh, columns=[ELT_SOURCE, ELT_VERSION])

        with ThreadPoolExecutor(min(self.workers, max(1, len(shared)))) as pool:
            for df, cols in zip(shared, pool.map(columns, shared)):
                pairs = set(zip(cols.column(ELT_SOURCE).to_pylist(), cols.column(ELT_VERSION).to_pylist()))
                for key in {s for s, _ in pairs} & keys:
                    held[key].shared.append(df)
                    held[key].versions |= {v for s, v in pairs if s == key}
        return held

    def _data_file(self, metadata: Any, f: HandedFile, footer: tuple[pq.FileMetaData, int]) -> DataFile:
        from pyiceberg.io.pyarrow import (_check_pyarrow_schema_compatible, compute_statistics_plan,
                                          data_file_statistics_from_parquet_metadata, parquet_path_to_id_mapping)
        from pyiceberg.manifest import DataFileContent, FileFormat

        meta, size = footer
        schema = metadata.schema()
        arrow = meta.schema.to_arrow_schema()
        key = (metadata.table_uuid, metadata.current_schema_id, arrow.to_string(show_schema_metadata=False))
        plan = self._plans.get(key)
        if plan is None:  # once per distinct file schema and table schema
            _check_pyarrow_schema_compatible(schema, arrow, format_version=metadata.format_version)
            plan = self._plans[key] = (compute_statistics_plan(schema, metadata.properties),
                                       parquet_path_to_id_mapping(schema))
        stats = data_file_statistics_from_parquet_metadata(parquet_metadata=meta, stats_columns=plan[0],
                                                           parquet_column_mapping=plan[1])
        return DataFile.from_args(content=DataFileContent.DATA, file_path=self.warehouse.uri(f.key),
                                  file_format=FileFormat.PARQUET, partition=stats.partition(metadata.spec(), schema),
                                  file_size_in_bytes=size, sort_order_id=None, spec_id=metadata.default_spec_id,
                                  equality_ids=None, key_metadata=None, **stats.to_serialized_dict())

    def _rewrite(self, tx: Transaction, rewrites: dict[DataFile, set[str]], writer: FileWriter) -> list[DataFile]:
        """Shared files without the rows of the keys being replaced (they are dropped by the caller)."""
        metadata = tx.table_metadata
        for df, keys in rewrites.items():
            rows = ArrowScan(table_metadata=metadata, io=tx._table.io, projected_schema=metadata.schema(),  # noqa: SLF001
                             row_filter=AlwaysTrue()).to_table([FileScanTask(df)])
            keep = k.invert(k.is_in(rows.column(ELT_SOURCE), pa.array(sorted(keys), pa.string())))
            writer.write(day_of(df), rows.filter(keep))
        return writer.close()
