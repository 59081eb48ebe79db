"""The commit protocol: an object version's rows land whole, and replace the older version's.

A transform attempt writes its files aside (local temporary files, or staged keys under
``_elt/staging/`` of each store) and nothing under ``silver/`` or ``quarantine/``. Then
``Committer.commit`` makes them the object's rows, against the object's *manifest*
(``_elt/objects/<object id>.json`` in the silver store), which names the files of the version
that is current and is only ever changed by a conditional write (``Store.put_if``):

1. read the manifest; if it names a newer version, this attempt is superseded: drop its files
   (and if it names this very version, a duplicate delivery ends here, a replay goes on). An
   object most likely new (``assume_new``) skips the read: its step 2 writes only if there is
   no manifest, and a refusal starts again at 1, reading;
2. write the manifest with this attempt as ``pending`` (its final keys), and every file of
   another attempt's abandoned ``pending`` as garbage;
3. put the files at their final keys (upload, or copy from staging);
4. write the manifest with this attempt as ``current`` and the previous version's files as
   garbage; 5. delete the garbage, the staged files, a failure marker of this version or an
   earlier one (a newer version's stays, and the manifest keeps naming it).

A conditional write that loses means another attempt moved first: start again at 1. Final keys
carry a round id unique to the attempt's try, so garbage is never a key anyone writes again and
deleting it never takes a current file. An attempt whose step-4 write loses deletes its own
round's final keys before it starts again: another attempt may have collected them as garbage
before its copies landed (unless the write did land and only its answer was lost: the manifest
then names this round current, and the commit stands; step 5 then leaves the manifest alone if
anyone wrote it since). Own keys it could not delete go into its next round's garbage. A step 3
that fails removes what it put. What readers see: the previous version's rows until step 3, both
versions' during steps 3-5 (a few requests), the new version's after. A crash before step 4
leaves the previous version current; its staged files expire (lifecycle on ``_elt/staging/``)
and files it promoted are removed by the next commit of the same key (or ``elt-sdk repair``).
A crash or a failed delete in step 5 leaves the older version's files named as garbage and still
readable (and the failure marker it retires in place): the message is redelivered, and the
redelivery, finding its version current, finishes step 5 before it ends as a duplicate
(``committed``, ``skip_if_current``). That duplicate's outcome carries the partitions of the
commit it finished (the manifest's ``current.partitions``), for the transform to announce: they
are ready only then.

An object split into byte-range chunks commits once, by whichever chunk attempt finds every
chunk's record (``_elt/chunks/<object id>/<version>/``) present; chunks stage their files first.
The records are spent once step 4 lands, and deleted before step 5 (a replay of the version
writes its own).

Compaction in place (``compaction.py``) extends the manifest: once a version's silver file has
been merged into a compacted file, the file's key moves from ``current.files.silver`` to
``current.compacted`` (file key -> partition manifest), and the partition manifest
(``_elt/partitions/<dataset>/<dt>.json``) says which row range of which compacted file holds it.
When such a version is superseded or replaced, step 4 puts those keys in the garbage twice: under
``silver`` (the file itself, if compaction has not deleted it yet) and under ``segments``;
collecting ``segments`` takes the version's rows out of the compacted files (rewritten without
them, swapped in by ``put_if`` on the partition manifest: ``compaction.drop_segments``).
Everything else above is unchanged.

With ``silver_format = iceberg`` silver is one Iceberg table per dataset, and only one function
ever writes a table: the committer (``iceberg/committer.py``). ``IcebergHandoff`` is the
transform's side. Its silver files carry two more columns (``_elt_source``: the bronze key,
``_elt_version``: the version's token and the attempt's id) and are staged straight under the
table's data folder (``silver/<dataset>/data/``), where no snapshot references them yet, so no
reader sees them. The manifest protocol above runs unchanged for ordering and for quarantine
(step 3 promotes quarantine files only); the manifest's ``current`` names the version's staged
silver files, its ``handoff`` is ``pending`` until a *commit message* for that round has been
sent to the committer's queue, then ``sent``. Silver files that were handed off are never deleted
by a transform (the committer may be adding them at that moment); files no snapshot ever took are
removed by orphan removal (``iceberg/maintenance.py``), older than ``iceberg_orphan_age_days``.
The committer commits a round only while the manifest names it current, so ordering stays
``ObjectVersion``'s.
"""
from __future__ import annotations

import json
import time
import uuid
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from elt_sdk import layout
from elt_sdk.source import ObjectVersion, SourceRef, object_id
from elt_sdk.store import Conflict, LocalStore, Missing, Store

SILVER, QUARANTINE = "silver", "quarantine"
AREAS = (SILVER, QUARANTINE)
SEGMENTS = "segments"
"""Garbage that is not a file: row ranges of compacted files to take out (``compaction.py``)."""
MAX_ROUNDS = 50

COMMITTED = "committed"
SUPERSEDED = "superseded"
WAITING = "waiting for other chunks"
DUPLICATE = "already committed"


class CommitContention(RuntimeError):
    """Too many concurrent writers of one object: retry the message later."""


@dataclass
class OutputFile:
    """One file an attempt wrote: where it is now (a local path, or a staged key), what it holds,
    and what its final key will be (``final(round)``)."""

    area: str
    dataset: str
    dt: str | None
    part: int
    rows: int
    chunk: int = 0
    local: Path | None = None
    staged: str | None = None
    elt_version: str = ""
    """The ``_elt_version`` value of its rows (Iceberg handoff only)."""

    def final(self, source: SourceRef, round_id: str) -> str:
        if self.area == SILVER:
            return layout.silver_key(self.dataset, self.dt or "", source, self.part, round_id, chunk=self.chunk)
        return layout.quarantine_key(self.dataset, source, round_id, chunk=self.chunk)

    def to_dict(self) -> dict[str, Any]:
        return {"area": self.area, "dataset": self.dataset, "dt": self.dt, "part": self.part, "rows": self.rows,
                "chunk": self.chunk, "staged": self.staged, "elt_version": self.elt_version}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OutputFile":
        return cls(d["area"], d["dataset"], d.get("dt"), int(d["part"]), int(d["rows"]), int(d.get("chunk", 0)),
                   staged=d.get("staged"), elt_version=d.get("elt_version", ""))


@dataclass
class Attempt:
    """What one transform attempt of an object (or of one of its chunks) produced."""

    source: SourceRef
    files: list[OutputFile]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    fingerprint: dict[str, str] = field(default_factory=dict)
    chunk_count: int = 1
    attempt_id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    skip_if_current: bool = False
    """A round that finds this version current, by the same plugin versions, ends ``DUPLICATE``
    (its files dropped) instead of replacing it: a duplicate delivery, not a replay."""

    @property
    def version(self) -> ObjectVersion:
        return self.source.object_version


@dataclass
class Outcome:
    status: str
    partitions: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    """The silver files a commit made readable, by (dataset, dt): what ``silver_partition_ready``
    announces. A ``DUPLICATE`` has some only when it finished that commit's step 5."""
    quarantine_keys: dict[str, str] = field(default_factory=dict)
    rows: dict[tuple[str, str], int] = field(default_factory=dict)
    """Rows per partition of ``partitions`` (every chunk's, for an object in chunks)."""


def manifest_key(key: str) -> str:
    return f"{layout.META_PREFIX}objects/{object_id(key)}.json"


def failure_key(key: str) -> str:
    return f"{layout.QUARANTINE_PREFIX}{layout.FAILED}/{object_id(key)}.json"


class Committer:
    """The protocol above, over a silver store and a quarantine store (the same store locally)."""

    announces = True
    """Its commits' partitions are ready at step 5 (``Outcome.partitions``, kept in the manifest for a
    delivery that finishes a step 5 that failed)."""

    def __init__(self, silver: Store, quarantine: Store | None = None, *, clock: Callable[[], float] = time.time):
        self.stores = {SILVER: silver, QUARANTINE: quarantine or silver}
        self.silver = silver
        self.clock = clock
        self._read: dict[str, tuple[bytes, str] | None] = {}
        """The manifest each object's attempt read before transforming (``committed``), or
        None for an object assumed new (``assume_new``): its commit's first round starts from it
        instead of reading; a stale one only loses that round's conditional write."""

    # -- before an attempt ---------------------------------------------------------------------

    def current(self, key: str) -> dict[str, Any] | None:
        got = self.silver.get_bytes(manifest_key(key))
        return json.loads(got[0]).get("current") if got else None

    def committed(self, source: SourceRef, fingerprint: dict[str, str]) -> Outcome | None:
        """Is this version already current, written by the same plugin versions? Then the
        ``DUPLICATE`` outcome the delivery ends with; None: transform it. (A duplicate delivery
        need not be transformed again; a replay after a plugin upgrade is.) If the commit that
        made it current died before step 5 was done, this finishes it, and the outcome carries
        that commit's partitions: they are ready only now."""
        mkey = manifest_key(source.key)
        got = self.silver.get_bytes(mkey)
        self._remember(source.key, got)
        doc = json.loads(got[0]) if got else {}
        if not got or not self._names_current(doc, source, fingerprint):
            return None
        return self._duplicate(source.key, mkey, doc, got[1])

    def assume_new(self, source: SourceRef) -> None:
        """Let this object's commit start as if it had no manifest yet: the first round writes it
        only if none exists (``put_if`` with no version) instead of reading it first. That saves
        a request per object seen for the first time, the common case of a feed; an object that
        has a manifest costs one refused write more, and its rounds go on as usual. Use with
        ``Attempt.skip_if_current``, which stands in for the ``committed`` check not made."""
        self._remember(source.key, None)

    def _remember(self, key: str, got: tuple[bytes, str] | None) -> None:
        if len(self._read) > 10_000:  # attempts that failed before their commit left theirs
            self._read.clear()
        self._read[key] = got

    def _names_current(self, doc: dict[str, Any], source: SourceRef, fingerprint: dict[str, str]) -> bool:
        """Does a manifest name this version current, written by the same plugin versions?"""
        cur = doc.get("current")
        return bool(cur) and source.object_version.same_as(ObjectVersion.from_dict(cur["version"])) \
            and cur.get("fingerprint") == fingerprint

    def _in_silver(self, current: dict[str, Any], version: ObjectVersion) -> bool:
        """Are ``version``'s rows in silver, by the manifest's ``current`` entry?"""
        return version.same_as(ObjectVersion.from_dict(current["version"]))

    def is_superseded(self, source: SourceRef) -> bool:
        cur = self.current(source.key)
        version = source.object_version
        return bool(cur) and ObjectVersion.from_dict(cur["version"]).newer_than(version)

    def file_columns(self, source: SourceRef, attempt_id: str) -> dict[str, str]:
        """Constant columns every silver row of this attempt carries (none for plain Parquet)."""
        return {}

    # -- staging -------------------------------------------------------------------------------

    def staging_prefix(self, source: SourceRef, attempt_id: str) -> str:
        version = source.object_version
        return f"{layout.META_PREFIX}staging/{object_id(source.key)}/{version.token}/{attempt_id}/"

    def stage(self, file: OutputFile, source: SourceRef, attempt_id: str) -> OutputFile:
        """Move a finished local file into its store's staging area (frees local disk)."""
        if file.local is None:
            return file
        key = f"{self.staging_prefix(source, attempt_id)}{file.area}-{file.dataset}-{file.dt or 'q'}-c{file.chunk:04d}-p{file.part:04d}"
        return self._put_staged(file, key)

    def _put_staged(self, file: OutputFile, key: str) -> OutputFile:
        """Move ``file``'s local copy to ``key`` of its store (a rename in a local folder)."""
        store = self.stores[file.area]
        if isinstance(store, LocalStore):
            store.move_file(key, file.local)
        else:
            store.put_file(key, file.local)
            file.local.unlink(missing_ok=True)
        file.local, file.staged = None, key
        return file

    def discard(self, files: Iterable[OutputFile]) -> None:
        """Drop an attempt's files (staged keys; local files are the caller's temporary folder)."""
        by_area: dict[str, list[str]] = {}
        for f in files:
            if f.staged:
                by_area.setdefault(f.area, []).append(f.staged)
        for area, keys in by_area.items():
            self.stores[area].delete(keys)

    # -- commit --------------------------------------------------------------------------------

    def commit(self, attempt: Attempt) -> Outcome:
        if attempt.chunk_count > 1:
            return self._commit_chunk(attempt)
        try:
            return self._commit(attempt.source, attempt.files, attempt.counts, attempt.fingerprint,
                                skip_if_current=attempt.skip_if_current)
        finally:
            self.discard(attempt.files)

    def _commit_chunk(self, attempt: Attempt) -> Outcome:
        src = attempt.source
        for f in attempt.files:
            self.stage(f, src, attempt.attempt_id)
        version = attempt.version
        folder = f"{layout.META_PREFIX}chunks/{object_id(src.key)}/{version.token}/"
        record = {"attempt": attempt.attempt_id, "chunk": src.chunk, "files": [f.to_dict() for f in attempt.files],
                  "counts": attempt.counts, "fingerprint": attempt.fingerprint}
        self.silver.put_bytes(f"{folder}c{src.chunk:06d}.json", json.dumps(record).encode())
        keys = list(self.silver.list(folder))
        if len(keys) < attempt.chunk_count:
            return Outcome(WAITING)
        files: list[OutputFile] = []
        counts: dict[str, dict[str, int]] = {}
        for key in keys:
            got = self.silver.get_bytes(key)
            if got is None:  # another chunk attempt committed and cleaned up meanwhile
                return Outcome(DUPLICATE if not self.is_superseded(src) else SUPERSEDED)
            rec = json.loads(got[0])
            files += [OutputFile.from_dict(d) for d in rec["files"]]
            for ds, c in rec["counts"].items():
                acc = counts.setdefault(ds, {})
                for k, v in c.items():
                    acc[k] = acc.get(k, 0) + v
        whole = SourceRef(src.uri, src.etag, 0, src.key, src.version)
        outcome = self._commit(whole, files, counts, attempt.fingerprint, spent=keys)
        self.discard(files)
        self.silver.delete(keys)  # a key already gone is no error (a commit that landed deleted them)
        return outcome

    def _commit(self, source: SourceRef, files: list[OutputFile], counts: dict[str, dict[str, int]],
                fingerprint: dict[str, str], *, skip_if_current: bool = False, spent: Iterable[str] = ()) -> Outcome:
        """Steps 1-5 above, in rounds until one wins. What differs by silver format is in the
        methods below it calls (``_promoted``, ``_collectable``, ``_replaced``, ``_current``,
        ``_landed``). ``spent``: silver-store keys (chunk records) that step 4 uses up, deleted
        before step 5: a step 5 that fails must not leave them for a replay of this version to
        count as its own chunks."""
        mkey = manifest_key(source.key)
        version = source.object_version
        carry: dict[str, list[str]] = {}  # keys of a lost round this attempt could not delete itself
        for n in range(MAX_ROUNDS):
            got = self._read.pop(source.key, False) if n == 0 else False
            if got is False:
                got = self.silver.get_bytes(mkey)
            doc, token = (json.loads(got[0]), got[1]) if got else ({}, None)
            cur = doc.get("current")
            if cur and ObjectVersion.from_dict(cur["version"]).newer_than(version):
                self._delete_quietly(carry)
                return Outcome(SUPERSEDED)
            if skip_if_current and self._names_current(doc, source, fingerprint):
                self._delete_quietly(carry)
                return self._duplicate(source.key, mkey, doc, token)
            round_id = uuid.uuid4().hex[:8]
            finals = [(f, f.final(source, round_id)) for f in self._promoted(files)]
            mine = _by_area((f.area, key) for f, key in finals)
            garbage = _merge(doc.get("garbage"), self._collectable((doc.get("pending") or {}).get("files")), carry)
            base = {"key": source.key, "source": source.uri, "updated_at": self.clock()}
            try:
                token = self.silver.put_if(mkey, _dump({**base, "current": cur, "failed": doc.get("failed"),
                                                        "pending": {"version": version.to_dict(), "round": round_id,
                                                                    "files": mine, "started_at": self.clock()},
                                                        "garbage": garbage}), token)
            except Conflict:
                continue
            try:
                self._promote(finals)
            except Missing:  # a staged file is gone: another attempt of this version committed it
                now = self.current(source.key)
                if now and not version.newer_than(ObjectVersion.from_dict(now["version"])):
                    return Outcome(DUPLICATE if version.same_as(ObjectVersion.from_dict(now["version"])) else SUPERSEDED)
                raise
            garbage = _merge(garbage, self._collectable((cur or {}).get("files")), self._replaced(cur))
            partitions, rows = self._partitions(files, finals), _rows(files)
            current = self._current(source, version, round_id, mine, files, counts, fingerprint, cur)
            if self.announces and partitions and _step_5_work(garbage, doc.get("failed"), version):
                current["partitions"] = _partition_list(partitions, rows)  # for a delivery that finishes step 5
            written = {**base, "current": current, "pending": None, "failed": doc.get("failed"), "garbage": garbage}
            payload = _dump(written)
            try:
                token = self.silver.put_if(mkey, payload, token)
            except Conflict:
                won, token = self._won_anyway(mkey, round_id, payload)
                if not won:  # another attempt moved first and may have collected ours before they landed
                    carry = self._delete_quietly(mine)  # what stays goes into the next round's garbage
                    continue
                # won: with token None (the manifest changed after our write), step 5 reads it again
            self._delete_quietly({SILVER: list(spent)})  # left behind, a replay's chunks would commit with them
            self._landed(source, files, written, mkey, token)
            return Outcome(COMMITTED, partitions, {f.dataset: key for f, key in finals if f.area == QUARANTINE}, rows)
        self._delete_quietly(carry)
        raise CommitContention(f"{source.uri}: {MAX_ROUNDS} commit rounds lost to concurrent writers of this "
                               "object; the message is retried (many replays of one key at once?)")

    # what a silver format changes in a round

    def _promoted(self, files: list[OutputFile]) -> list[OutputFile]:
        """The files step 3 puts at final keys."""
        return files

    def _collectable(self, files: dict[str, list[str]] | None) -> dict[str, list[str]]:
        """Of a pending or replaced entry's files, those this attempt may delete."""
        return files or {}

    def _replaced(self, cur: dict[str, Any] | None) -> dict[str, list[str]]:
        """Garbage beyond the replaced version's files (its rows in compacted files)."""
        return _compacted(cur)

    def _current(self, source: SourceRef, version: ObjectVersion, round_id: str, mine: dict[str, list[str]],
                 files: list[OutputFile], counts: dict[str, dict[str, int]], fingerprint: dict[str, str],
                 cur: dict[str, Any] | None) -> dict[str, Any]:
        return {"version": version.to_dict(), "round": round_id, "files": mine, "counts": counts,
                "fingerprint": fingerprint, "committed_at": self.clock()}

    def _partitions(self, files: list[OutputFile], finals: list[tuple[OutputFile, str]]) -> dict[tuple[str, str], list[str]]:
        """The silver keys this round makes current, by (dataset, dt)."""
        out: dict[tuple[str, str], list[str]] = {}
        for f, key in finals:
            if f.area == SILVER and f.dt:
                out.setdefault((f.dataset, f.dt), []).append(key)
        return out

    def _landed(self, source: SourceRef, files: list[OutputFile], written: dict[str, Any], mkey: str,
                token: str | None) -> None:
        """Step 5, once the manifest names this round current (``written``: the manifest step 4 wrote)."""
        self._finish(source.key, mkey, written, token)

    def _clean_up(self, key: str, garbage: dict[str, list[str]], failed: dict[str, Any] | None,
                  version: ObjectVersion) -> dict[str, Any] | None:
        """Step 5's deletions: the garbage, and the failure marker ``version`` landing retires;
        the failure record it retired (None: a newer version's failure stays, or there was none)."""
        self._collect(garbage)
        if not _retired(failed, version):
            return None
        self.stores[QUARANTINE].delete([failure_key(key)])
        return failed

    def _step_5_done(self, mkey: str, doc: dict[str, Any], token: str | None, deleted: dict[str, list[str]],
                     retired: dict[str, Any] | None, **current: Any) -> None:
        """Write down that step 5 is done (``doc``: the manifest it read or wrote last): the garbage
        it deleted and the failure record it retired leave the manifest, with the partitions kept
        for announcing it (``current``: more changes to the current entry). Where the manifest
        changed meanwhile (a compaction's claim, another attempt's pending entry), it is read again
        for as long as it names the same round current: a later delivery must not find step 5
        undone, delete again and announce the partitions twice."""
        round_id = doc["current"]["round"]
        for _ in range(MAX_ROUNDS):
            entry = {k: v for k, v in doc["current"].items() if k != "partitions"}
            failed = None if retired is not None and doc.get("failed") == retired else doc.get("failed")
            try:
                self.silver.put_if(mkey, _dump({**doc, "current": {**entry, **current}, "failed": failed,
                                                "garbage": _without(doc.get("garbage"), deleted)}), token)
                return
            except Conflict:
                got = self.silver.get_bytes(mkey)
                if got is None:
                    return
                doc, token = json.loads(got[0]), got[1]
                if (doc.get("current") or {}).get("round") != round_id:
                    return  # another round is current: what is left is its step 5's

    def _duplicate(self, key: str, mkey: str, doc: dict[str, Any], token: str | None) -> Outcome:
        """How a delivery of the current version ends: ``DUPLICATE``, with the partitions of the
        commit it finished (``_finish``), which that commit could not announce."""
        if not self._finish(key, mkey, doc, token):
            return Outcome(DUPLICATE)
        partitions = doc["current"].get("partitions") or []  # none in a manifest an older release wrote
        return Outcome(DUPLICATE, {(d, dt): keys for d, dt, _, keys in partitions},
                       rows={(d, dt): rows for d, dt, rows, _ in partitions})

    def _finish(self, key: str, mkey: str, doc: dict[str, Any], token: str | None) -> bool:
        """Step 5 for a round that named its version current and died before it was done (a kill,
        a throttled delete): until then the replaced version's rows stay readable beside the
        current ones, and a failure marker it retires stays. A failed delete raises, so the
        message that found it comes back. True if there was something to finish."""
        garbage, failed = doc.get("garbage") or {}, doc.get("failed")
        version = ObjectVersion.from_dict(doc["current"]["version"])
        if not _step_5_work(garbage, failed, version):
            return False
        retired = self._clean_up(key, garbage, failed, version)
        self._step_5_done(mkey, doc, token, garbage, retired)
        return True

    def _won_anyway(self, mkey: str, round_id: str, payload: bytes) -> tuple[bool, str | None]:
        """After a step-4 write answered Conflict: did it land (a retry of the same request was
        refused)? ``(True, token)`` if the manifest is still exactly what it wrote; ``(True, None)``
        if it names this round current but changed since (another attempt's pending entry, a
        compaction's claim: step 5 reads it again rather than write over it); ``(False, None)`` if it
        did not land."""
        got = self.silver.get_bytes(mkey)
        if got and ((json.loads(got[0]).get("current") or {}).get("round")) == round_id:
            return True, got[1] if got[0] == payload else None
        return False, None

    def _delete_quietly(self, keys: dict[str, list[str]]) -> dict[str, list[str]]:
        """Delete this attempt's own keys, best effort; the keys that may remain (all of them if
        the delete failed), for the caller to record as garbage."""
        keys = {area: k for area, k in keys.items() if area != SEGMENTS and k}
        try:
            self._collect(keys)
        except Exception:  # noqa: BLE001 - best effort, see above
            return keys
        return {}

    def _promote(self, finals: list[tuple[OutputFile, str]]) -> None:
        """Step 3. If it fails part way, what it put goes again (nothing names those keys
        current; the pending entry names them for ``repair`` if even that fails)."""
        done: list[tuple[str, str]] = []
        try:
            for f, key in finals:
                store = self.stores[f.area]
                if f.local is not None:
                    store.put_file(key, f.local)
                elif f.staged is not None:
                    store.copy(f.staged, key)
                done.append((f.area, key))
        except BaseException:
            self._delete_quietly(_by_area(done))
            raise

    def _collect(self, garbage: dict[str, list[str]]) -> None:
        for area, keys in garbage.items():
            if not keys:
                continue
            if area == SEGMENTS:
                from elt_sdk.compaction import drop_segments  # only once some rows were compacted

                drop_segments(self.silver, keys, clock=self.clock)
            else:
                self.stores[area].delete(keys)

    # -- failures ------------------------------------------------------------------------------

    def mark_failed(self, source: SourceRef, error: str, *, stage: str = "object", attempts: int | None = None,
                    datasets: Iterable[str] = (), even_if_current: bool = False) -> str | None:
        """A marker in quarantine saying why this object version never reached silver (it leaves
        nothing there: its attempt's files are discarded). Removed when a later version lands;
        none is written (None) for a version a newer one has replaced, nor for one whose rows are
        in silver already (``_in_silver``: an attempt failed after its commit, as a step 5 whose
        delete keeps failing does, or a replay failed; the error is the caller's to report).
        ``even_if_current``: the Iceberg committer's, whose table never took a current version."""
        version = source.object_version
        cur = self.current(source.key)
        if cur and ObjectVersion.from_dict(cur["version"]).newer_than(version):
            return None
        if cur and not even_if_current and self._in_silver(cur, version):
            return None
        marker = {"source": source.uri, "key": source.key, "version": version.to_dict(), "stage": stage,
                  "error": error, "attempts": attempts, "datasets": sorted(datasets), "at": self.clock()}
        key = failure_key(source.key)
        self.stores[QUARANTINE].put_bytes(key, _dump(marker))
        mkey = manifest_key(source.key)
        for _ in range(MAX_ROUNDS):  # record it in the manifest, so the next commit removes the marker
            got = self.silver.get_bytes(mkey)
            doc, token = (json.loads(got[0]), got[1]) if got else ({"key": source.key, "source": source.uri}, None)
            cur = doc.get("current")
            if cur and ObjectVersion.from_dict(cur["version"]).newer_than(version):  # landed meanwhile
                self.stores[QUARANTINE].delete([key])
                return None
            doc["failed"] = {"version": version.to_dict(), "error": error, "at": self.clock()}
            try:
                self.silver.put_if(mkey, _dump(doc), token)
                break
            except Conflict:
                continue
        return key

    # -- repair --------------------------------------------------------------------------------

    def repair(self, older_than_s: float = 0.0) -> dict[str, int]:
        """Remove what crashed attempts left visible: files of a ``pending`` entry older than
        ``older_than_s`` seconds, and garbage a commit did not get to delete."""
        removed = manifests = 0
        for mkey in self.silver.list(f"{layout.META_PREFIX}objects/"):
            for _ in range(MAX_ROUNDS):
                got = self.silver.get_bytes(mkey)
                if got is None:
                    break
                doc, token = json.loads(got[0]), got[1]
                pending = doc.get("pending")
                stale = pending if pending and self.clock() - pending.get("started_at", 0) >= older_than_s else None
                garbage = _merge(doc.get("garbage"), (stale or {}).get("files"))
                if not any(garbage.values()):
                    break
                self._collect(garbage)
                try:
                    self.silver.put_if(mkey, _dump({**doc, "pending": None if stale else pending, "garbage": {}}), token)
                except Conflict:
                    continue
                manifests += 1
                removed += sum(len(v) for v in garbage.values())
                break
        return {"manifests": manifests, "files_removed": removed}


ELT_SOURCE = "_elt_source"
"""Iceberg silver: the bronze key a row came from (its object's identity)."""
ELT_VERSION = "_elt_version"
"""Iceberg silver: ``<version token>-<attempt id>``: which version of the object, written by which
transform attempt (a replay of the same version is a new attempt, and replaces the old one's rows)."""
EVENT_TIME_META = b"elt.event_time"
"""Parquet schema metadata naming the event-time column (the table's day partition source)."""
HANDOFF_VERSION = 1


class IcebergHandoff(Committer):
    """The transform's side of Iceberg silver: the commit protocol for ordering and quarantine,
    silver files staged under the table's data folder and handed to the committer's queue by a
    commit message (``send``), sent once the manifest names the round current (see above)."""

    announces = False
    """A partition is ready once the committer commits it (settings refuse partition events here)."""

    def __init__(self, silver: Store, quarantine: Store | None = None, *, send: Callable[[dict[str, Any]], None],
                 clock: Callable[[], float] = time.time):
        super().__init__(silver, quarantine, clock=clock)
        self.send = send
        self._sent: set[str] = set()
        self._lock = threading.Lock()

    def file_columns(self, source: SourceRef, attempt_id: str) -> dict[str, str]:
        version = source.object_version
        return {ELT_SOURCE: source.key, ELT_VERSION: f"{version.token}-{attempt_id}"}

    def _names_current(self, doc: dict[str, Any], source: SourceRef, fingerprint: dict[str, str]) -> bool:
        """Committed here means handed off: current, its commit message sent, and not marked failed."""
        cur, failed = doc.get("current"), doc.get("failed")
        version = source.object_version
        if not cur or cur.get("handoff") != "sent" or cur.get("fingerprint") != fingerprint:
            return False
        if failed and version.same_as(ObjectVersion.from_dict(failed["version"])):
            return False
        return version.same_as(ObjectVersion.from_dict(cur["version"]))

    def _in_silver(self, current: dict[str, Any], version: ObjectVersion) -> bool:
        """Handed off: from there on a failure is the committer's to mark."""
        return current.get("handoff") == "sent" and super()._in_silver(current, version)

    def stage(self, file: OutputFile, source: SourceRef, attempt_id: str) -> OutputFile:
        if file.area != SILVER or file.local is None:
            return super().stage(file, source, attempt_id)
        key = layout.iceberg_data_key(file.dataset, file.dt or "", source, file.part, attempt_id, chunk=file.chunk)
        self._put_staged(file, key)
        file.elt_version = self.file_columns(source, attempt_id)[ELT_VERSION]
        return file

    def commit(self, attempt: Attempt) -> Outcome:
        for f in attempt.files:  # the last part files are still local: into the table's data folder first
            if f.area == SILVER and f.local is not None:
                self.stage(f, attempt.source, attempt.attempt_id)
        return super().commit(attempt)

    def discard(self, files: Iterable[OutputFile]) -> None:
        """As ``Committer.discard``, but never a silver file that was handed off."""
        files = list(files)
        with self._lock:
            keep = {f.staged for f in files if f.area == SILVER and f.staged in self._sent}
            self._sent -= keep
        super().discard(f for f in files if f.staged not in keep)

    def _commit(self, source: SourceRef, files: list[OutputFile], counts: dict[str, dict[str, int]],
                fingerprint: dict[str, str], *, skip_if_current: bool = False, spent: Iterable[str] = ()) -> Outcome:
        if any(f.staged is None for f in files if f.area == SILVER):
            raise ValueError("Iceberg silver files must be staged before the handoff")
        return super()._commit(source, files, counts, fingerprint, skip_if_current=skip_if_current, spent=spent)

    def _promoted(self, files: list[OutputFile]) -> list[OutputFile]:
        return [f for f in files if f.area != SILVER]  # silver files stay where they were staged

    def _collectable(self, files: dict[str, list[str]] | None) -> dict[str, list[str]]:
        return _without_silver(files)  # the committer may be adding them: orphan removal's

    def _replaced(self, cur: dict[str, Any] | None) -> dict[str, list[str]]:
        return {}

    def _current(self, source: SourceRef, version: ObjectVersion, round_id: str, mine: dict[str, list[str]],
                 files: list[OutputFile], counts: dict[str, dict[str, int]], fingerprint: dict[str, str],
                 cur: dict[str, Any] | None) -> dict[str, Any]:
        silver = [f for f in files if f.area == SILVER]
        current = super()._current(source, version, round_id, mine, files, counts, fingerprint, cur)
        current["files"] = {**mine, **({SILVER: [f.staged for f in silver]} if silver else {})}
        current.update(handoff="pending", commit=f"{object_id(source.key)}-{version.token}-{round_id}",
                       tables=sorted(set((cur or {}).get("tables") or []) | {f.dataset for f in silver}))
        return current

    def _partitions(self, files: list[OutputFile], finals: list[tuple[OutputFile, str]]) -> dict[tuple[str, str], list[str]]:
        partitions: dict[tuple[str, str], list[str]] = {}
        for f in files:
            if f.area == SILVER:
                partitions.setdefault((f.dataset, f.dt or ""), []).append(f.staged or "")
        return partitions

    def _landed(self, source: SourceRef, files: list[OutputFile], written: dict[str, Any], mkey: str,
                token: str | None) -> None:
        version, current = source.object_version, written["current"]
        silver = [f for f in files if f.area == SILVER]
        with self._lock:
            self._sent.update(f.staged for f in silver if f.staged)
        self.send({"v": HANDOFF_VERSION, "commit": current["commit"], "key": source.key, "source": source.uri,
                   "version": version.to_dict(), "round": current["round"], "tables": current["tables"],
                   "files": [{"dataset": f.dataset, "dt": f.dt, "key": f.staged, "rows": f.rows,
                              "elt_version": f.elt_version} for f in silver]})
        retired = self._clean_up(source.key, written["garbage"], written["failed"], version)
        # a redelivery of this version is skipped only once this is written
        self._step_5_done(mkey, written, token, written["garbage"], retired, handoff="sent")


def committer_for(silver_format: str, silver: Store, quarantine: Store | None = None, *,
                  send: Callable[[dict[str, Any]], None] | None = None) -> Committer:
    """The transform's committer for a ``silver_format`` setting (``send``: the Iceberg handoff's
    way to the committer's queue)."""
    if silver_format == "iceberg":
        if send is None:
            raise ValueError("silver_format = iceberg needs a way to hand commits to the committer (its queue)")
        return IcebergHandoff(silver, quarantine, send=send)
    return Committer(silver, quarantine)


def _without_silver(files: dict[str, list[str]] | None) -> dict[str, list[str]]:
    """Files minus silver's: handed-off silver files are the committer's (and orphan removal's)."""
    return {area: keys for area, keys in (files or {}).items() if area != SILVER}


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _by_area(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for area, key in items:
        out.setdefault(area, []).append(key)
    return out


def _merge(*parts: dict[str, list[str]] | None) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in parts:
        for area, keys in (part or {}).items():
            bucket = out.setdefault(area, [])
            bucket.extend(k for k in keys if k not in bucket)
    return out


def _without(garbage: dict[str, list[str]] | None, deleted: dict[str, list[str]]) -> dict[str, list[str]]:
    """``garbage`` less the keys a step 5 deleted (what another attempt added since stays)."""
    gone = {area: set(keys) for area, keys in deleted.items()}
    out = {area: [k for k in keys if k not in gone.get(area, ())] for area, keys in (garbage or {}).items()}
    return {area: keys for area, keys in out.items() if keys}


def _step_5_work(garbage: dict[str, list[str]], failed: dict[str, Any] | None, version: ObjectVersion) -> bool:
    """Has step 5 anything to do once ``version`` is current: garbage, or a marker it retires?"""
    return any(garbage.values()) or _retired(failed, version)


def _retired(failed: dict[str, Any] | None, version: ObjectVersion) -> bool:
    """Does ``version`` landing retire this failure record (of that version or an older one)?"""
    return bool(failed) and not ObjectVersion.from_dict(failed["version"]).newer_than(version)  # type: ignore[index]


def _compacted(current: dict[str, Any] | None) -> dict[str, list[str]]:
    """A version's compacted files as garbage: the files (if still there) and their segments."""
    keys = sorted((current or {}).get("compacted") or {})
    return {SILVER: keys, SEGMENTS: keys} if keys else {}


def _rows(files: list[OutputFile]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for f in files:
        if f.area == SILVER:
            out[(f.dataset, f.dt or "")] = out.get((f.dataset, f.dt or ""), 0) + f.rows
    return out


def _partition_list(partitions: dict[tuple[str, str], list[str]], rows: dict[tuple[str, str], int]) -> list[list[Any]]:
    """``partitions`` as the manifest's ``current`` keeps them: ``[dataset, dt, rows, keys]``."""
    return [[d, dt, rows.get((d, dt), 0), keys] for (d, dt), keys in sorted(partitions.items())]
