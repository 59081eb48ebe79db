"""Silver as Iceberg tables (``silver_format = iceberg``): the handoff, the committer, schema
evolution, reading — on a local folder with its sqlite catalog, read back through pyiceberg and
DuckDB. The pipeline on the embedded endpoint runs in ``test_fault_injection.py`` and
``test_iceberg_pipeline.py``."""
from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

pytest.importorskip("pyiceberg", reason="the iceberg extra")

from elt_sdk.cli import main  # noqa: E402
from elt_sdk.commit import ELT_SOURCE, ELT_VERSION, EVENT_TIME_META, SILVER, Attempt, IcebergHandoff, OutputFile  # noqa: E402
from elt_sdk.iceberg.catalog import local_warehouse  # noqa: E402
from elt_sdk.iceberg.committer import (COMMITTED, DUPLICATE, FAILED, SUPERSEDED, CommitMessage,  # noqa: E402
                                       IcebergCommitter)
from elt_sdk.pipeline import Transformer  # noqa: E402
from elt_sdk.source import LocalSource, ObjectVersion, SourceRef  # noqa: E402
from elt_sdk.store import LocalStore  # noqa: E402

NS = "elt_sdk_silver"


def record(sid: str, day: str = "2025-06-01", hour: int = 1, **extra) -> dict:
    return {"record_type": "shipments", "event_time": f"{day}T{hour:02d}:00:00Z", "shipment_id": sid,
            "origin": "Oslo", "destination": "Rome", "carrier": "DHL", "weight_kg": 1.5, **extra}


def write_jsonl(path: Path, records: list[dict], bad: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "{broken\n" * bad)
    return path


class Rig:
    """A local output folder with Iceberg silver: transforms hand off, ``commit`` commits."""

    def __init__(self, root: Path, registry):
        self.root = root
        self.store = LocalStore(root)
        self.handed: list[dict] = []
        self.handoff = IcebergHandoff(self.store, send=self.handed.append)
        self.transformer = Transformer(registry)
        self.warehouse = local_warehouse(root, NS)
        self.committer = IcebergCommitter(self.warehouse, self.store)

    def transform(self, path: Path, key: str):
        return self.transformer.transform_object(LocalSource.from_path(path, key=key), self.handoff)

    def take(self) -> list[CommitMessage]:
        out, self.handed[:] = [CommitMessage.parse(m) for m in self.handed], []
        return out

    def commit(self, messages=None):
        return self.committer.commit(self.take() if messages is None else messages)

    def table(self):
        return self.warehouse.load("shipments")

    def rows(self, snapshot_id=None) -> dict[str, list[str]]:
        t = self.table().refresh()
        data = t.scan(snapshot_id=snapshot_id).to_arrow()
        out: dict[str, list[str]] = {}
        for src, sid in zip(data.column(ELT_SOURCE).to_pylist(), data.column("shipment_id").to_pylist()):
            out.setdefault(src, []).append(sid)
        return {k: sorted(v) for k, v in out.items()}


@pytest.fixture
def rig(tmp_path, registry) -> Rig:
    return Rig(tmp_path / "out", registry)


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_transform_twice_on_an_edited_file_leaves_the_new_version_in_one_new_snapshot(tmp_path):
    bronze = tmp_path / "bronze" / "shipments"
    a = write_jsonl(bronze / "a.jsonl", [record(f"a1-{i}", day=f"2025-06-0{1 + i % 3}") for i in range(30)], bad=2)
    write_jsonl(bronze / "b.jsonl", [record(f"b1-{i}") for i in range(5)])
    out = tmp_path / "out"
    res = run("transform", str(tmp_path / "bronze"), "--out", str(out), "--silver-format", "iceberg", "--json")
    assert res.exit_code == 0, res.output
    first = json.loads(res.stdout)
    assert first["written"] == 35 and first["quarantined"] == 2 and first["silver_format"] == "iceberg"
    assert (out / "iceberg.db").is_file() and (out / "silver" / "shipments" / "metadata").is_dir()

    write_jsonl(a, [record(f"a2-{i}", day="2025-06-04") for i in range(7)])  # edited: fewer rows, another day
    res = run("transform", str(a), "--out", str(out), "--silver-format", "iceberg", "--json")
    assert res.exit_code == 0, res.output
    second = json.loads(res.stdout)

    table = local_warehouse(out, NS).load("shipments")
    snapshots = table.snapshots()
    assert len(snapshots) == 2  # one per run: the edit is one new snapshot
    assert snapshots[-1].snapshot_id == second["snapshots"]["shipments"] == table.current_snapshot().snapshot_id
    assert snapshots[-1].parent_snapshot_id == first["snapshots"]["shipments"]
    data = table.scan().to_arrow()
    ids = sorted(data.column("shipment_id").to_pylist())
    assert ids == sorted([f"a2-{i}" for i in range(7)] + [f"b1-{i}" for i in range(5)])
    # the first snapshot still reads as it was (time travel), whole
    before = table.scan(snapshot_id=first["snapshots"]["shipments"]).to_arrow()
    assert before.num_rows == 35
    # quarantine follows the newest version too: the old version's two broken lines are gone
    assert not list((out / "quarantine" / "shipments").glob("*.jsonl"))

    res = run("query", "--silver", str(out), "--json",
              "SELECT count(*) AS n, count(DISTINCT _elt_source) AS objects, min(dt) AS first_day FROM shipments")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == [{"n": 12, "objects": 2, "first_day": "2025-06-01"}]
    res = run("query", "--silver", str(out), "--json", "SELECT dt, count(*) AS n FROM elt_sdk_silver.shipments "
              "WHERE _elt_source = 'bronze/shipments/a.jsonl' GROUP BY dt")
    assert json.loads(res.stdout) == [{"dt": "2025-06-04", "n": 7}]


def test_one_folder_holds_one_silver_format(tmp_path):
    src = write_jsonl(tmp_path / "bronze" / "shipments" / "a.jsonl", [record("x")])
    plain, ice = tmp_path / "plain", tmp_path / "ice"
    assert run("transform", str(src), "--out", str(plain)).exit_code == 0
    res = run("transform", str(src), "--out", str(plain), "--silver-format", "iceberg")
    assert res.exit_code == 2 and "plain Parquet" in res.output
    assert run("transform", str(src), "--out", str(ice), "--silver-format", "iceberg").exit_code == 0
    res = run("transform", str(src), "--out", str(ice))
    assert res.exit_code == 2 and "Iceberg tables" in res.output


def test_a_redelivered_commit_message_changes_nothing(rig, tmp_path):
    rig.transform(write_jsonl(tmp_path / "a.jsonl", [record(f"a-{i}") for i in range(4)]), "bronze/shipments/a.jsonl")
    messages = rig.take()
    assert [r.status for r in rig.commit(messages)] == [COMMITTED]
    before = rig.table().current_snapshot().snapshot_id
    again = rig.commit(messages + messages)
    assert [r.status for r in again] == [DUPLICATE]
    assert rig.table().refresh().current_snapshot().snapshot_id == before
    assert rig.rows() == {"bronze/shipments/a.jsonl": [f"a-{i}" for i in range(4)]}


def test_an_older_round_never_replaces_a_newer_one(rig, tmp_path):
    key = "bronze/shipments/k.jsonl"
    path = tmp_path / "k.jsonl"
    rig.transform(write_jsonl(path, [record("v1-0"), record("v1-1")]), key)
    old = rig.take()
    rig.transform(write_jsonl(path, [record("v2-0")]), key)
    new = rig.take()
    assert [r.status for r in rig.commit(new)] == [COMMITTED]
    late = rig.commit(old)  # the older version's message arrives last
    assert [r.status for r in late] == [SUPERSEDED]
    assert rig.rows() == {key: ["v2-0"]}
    # both in one batch, in either order: the newer round wins
    rig.transform(write_jsonl(path, [record("v3-0")]), key)
    v3 = rig.take()
    rig.transform(write_jsonl(path, [record("v4-0"), record("v4-1")]), key)
    v4 = rig.take()
    statuses = {r.message.commit: r.status for r in rig.commit(v4 + v3)}
    assert statuses == {v4[0].commit: COMMITTED, v3[0].commit: SUPERSEDED}
    assert rig.rows() == {key: ["v4-0", "v4-1"]}


def test_a_version_without_valid_rows_removes_the_older_rows(rig, tmp_path):
    key = "bronze/shipments/k.jsonl"
    path = tmp_path / "k.jsonl"
    rig.transform(write_jsonl(path, [record("v1-0")]), key)
    rig.commit()
    rig.transform(write_jsonl(path, [], bad=3), key)
    [message] = rig.take()
    assert message.files == () and message.tables == ("shipments",)
    assert [r.status for r in rig.commit([message])] == [COMMITTED]
    assert rig.rows() == {}
    assert len(list((rig.root / "quarantine" / "shipments").glob("*.jsonl"))) == 1


def test_a_failed_commit_leaves_its_object_invisible_and_marked(rig, tmp_path):
    good, bad = "bronze/shipments/good.jsonl", "bronze/shipments/bad.jsonl"
    rig.transform(write_jsonl(tmp_path / "g.jsonl", [record("g-0")]), good)
    rig.transform(write_jsonl(tmp_path / "b.jsonl", [record("b-0"), record("b-1", day="2025-06-02")]), bad)
    messages = rig.take()
    victim = next(m for m in messages if m.key == bad)
    (rig.root / victim.files[0].key).unlink()  # a staged file lost (say, removed as an orphan too early)
    results = {r.message.key: r for r in rig.commit(messages)}
    assert results[good].status == COMMITTED
    assert results[bad].status == FAILED and results[bad].permanent and victim.files[0].key in results[bad].error
    assert rig.rows() == {good: ["g-0"]}  # nothing of the failed object, not even its other day
    rig.committer.mark_failed(victim, results[bad].error)
    marker = json.loads(next((rig.root / "quarantine" / "_failed").glob("*.json")).read_text())
    assert marker["key"] == bad and marker["stage"] == "commit"


def test_the_transform_marks_no_version_it_handed_off(rig, tmp_path):
    """From the handoff on, whether a version reaches its table is the committer's to say."""
    key = "bronze/shipments/h.jsonl"
    rig.transform(write_jsonl(tmp_path / "h.jsonl", [record("h-0")]), key)
    [message] = rig.take()
    assert rig.handoff.mark_failed(message.ref, "boom") is None
    assert not (rig.root / "quarantine" / "_failed").exists()
    assert rig.committer.mark_failed(message, "the table refused it") is not None


def test_a_transform_redelivered_after_its_handoff_is_skipped(rig, tmp_path, registry):
    path = write_jsonl(tmp_path / "a.jsonl", [record("a-0")])
    source = LocalSource.from_path(path, key="bronze/shipments/a.jsonl")
    first = rig.transformer.transform_object(source, rig.handoff, force=False)
    second = rig.transformer.transform_object(source, rig.handoff, force=False)
    assert first.outcome == COMMITTED and second.outcome == DUPLICATE
    assert len(rig.handed) == 1
    # delivered again as if new (no read before the transform): the commit finds it handed off
    third = rig.transformer.transform_object(source, rig.handoff, force=False, first_delivery=True)
    assert third.outcome == DUPLICATE and len(rig.handed) == 1


def _handoff_file(rig: Rig, key: str, schema: pa.Schema, rows: dict, attempt: str = "") -> list[CommitMessage]:
    """Hand off one silver file of ``schema`` (as a plugin release that changed its schema writes it)."""
    attempt = attempt or uuid.uuid4().hex[:10]
    ref = SourceRef(f"file:///{key}", "e" + attempt, 0, key, ObjectVersion("e" + attempt, "", int(attempt, 16) % 10**9))
    cols = rig.handoff.file_columns(ref, attempt)
    n = len(next(iter(rows.values())))
    table = pa.table({**rows, **{c: [v] * n for c, v in cols.items()}})
    full = schema.append(pa.field(ELT_SOURCE, pa.string(), False)).append(pa.field(ELT_VERSION, pa.string(), False))
    full = full.with_metadata({EVENT_TIME_META: b"event_time"})
    local = rig.root.parent / f"{attempt}.parquet"
    pq.write_table(table.cast(full), local)
    f = rig.handoff.stage(OutputFile(SILVER, "shipments", "2025-06-01", 0, n, local=local), ref, attempt)
    rig.handoff.commit(Attempt(ref, [f], {}, {}, 1, attempt))
    return rig.take()


BASE = pa.schema([pa.field("event_time", pa.timestamp("us", tz="UTC"), False), pa.field("shipment_id", pa.string(), False),
                  pa.field("weight_kg", pa.float64(), False)])
TS = [pa.scalar(1748739600000000, pa.timestamp("us", tz="UTC")).as_py()]


def test_a_new_nullable_field_evolves_the_table_at_the_next_commit(rig):
    assert [r.status for r in rig.commit(_handoff_file(rig, "bronze/shipments/a", BASE,
                                                       {"event_time": TS, "shipment_id": ["a"], "weight_kg": [1.0]}))] == [COMMITTED]
    wider = BASE.append(pa.field("customs_code", pa.string(), True))
    results = rig.commit(_handoff_file(rig, "bronze/shipments/b", wider, {"event_time": TS, "shipment_id": ["b"],
                                                                            "weight_kg": [2.0], "customs_code": ["HS1"]}))
    assert [r.status for r in results] == [COMMITTED]
    table = rig.table().refresh()
    assert not table.schema().find_field("customs_code").required
    rows = {r["shipment_id"]: r["customs_code"] for r in table.scan().to_arrow().to_pylist()}
    assert rows == {"a": None, "b": "HS1"}
    assert "customs_code" in table.properties["schema.name-mapping.default"]  # files without ids still resolve


@pytest.mark.parametrize("change, field, words", [
    ("type", "weight_kg", "wider one"),
    ("dropped", "weight_kg", "no longer has it"),
])
def test_an_incompatible_schema_change_is_refused_naming_the_field(rig, change, field, words):
    rig.commit(_handoff_file(rig, "bronze/shipments/a", BASE, {"event_time": TS, "shipment_id": ["a"], "weight_kg": [1.0]}))
    if change == "type":
        schema = pa.schema([BASE.field("event_time"), BASE.field("shipment_id"), pa.field("weight_kg", pa.string(), False)])
        rows = {"event_time": TS, "shipment_id": ["b"], "weight_kg": ["heavy"]}
    else:
        schema = pa.schema([BASE.field("event_time"), BASE.field("shipment_id")])
        rows = {"event_time": TS, "shipment_id": ["b"]}
    before = rig.table().current_snapshot().snapshot_id
    [result] = rig.commit(_handoff_file(rig, "bronze/shipments/b", schema, rows))
    assert result.status == FAILED and result.permanent
    assert repr(field) in result.error and words in result.error and "Way forward" in result.error
    table = rig.table().refresh()
    assert table.current_snapshot().snapshot_id == before and table.schema().find_field("weight_kg").field_type.is_primitive
    assert str(table.schema().find_field("weight_kg").field_type) == "double"


def test_concurrent_committers_lose_and_duplicate_nothing(rig, tmp_path):
    """Committers racing on one table (the function has reserved concurrency 1, but a redelivery
    may still meet a running one): conflicts are planned again, every object lands exactly once."""
    keys = [f"bronze/shipments/k{i}.jsonl" for i in range(12)]
    for i, key in enumerate(keys):
        rig.transform(write_jsonl(tmp_path / f"k{i}.jsonl", [record(f"k{i}-{j}", day=f"2025-06-0{1 + j % 2}")
                                                               for j in range(3)]), key)
    messages = rig.take()
    batches = [messages[i::4] + messages[(i + 1) % 4::4][:1] for i in range(4)]  # overlapping batches
    results: list = []

    def go(batch):
        committer = IcebergCommitter(local_warehouse(rig.root, NS), rig.store)
        results.extend(committer.commit(batch))

    threads = [threading.Thread(target=go, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not [r for r in results if r.status == FAILED], [r.error for r in results if r.status == FAILED]
    assert rig.rows() == {key: sorted(f"k{i}-{j}" for j in range(3)) for i, key in enumerate(keys)}


def test_compacted_days_still_let_a_new_version_replace_its_rows(rig, tmp_path):
    from elt_sdk.iceberg import maintenance

    keys = [f"bronze/shipments/k{i}.jsonl" for i in range(5)]
    for i, key in enumerate(keys):
        rig.transform(write_jsonl(tmp_path / f"k{i}.jsonl", [record(f"k{i}-v1-{j}", day=f"2025-06-0{1 + j % 2}")
                                                              for j in range(4)]), key)
        rig.commit()  # one commit each: ten small files over two days
    assert len(list(rig.table().scan().plan_files())) == 10
    report = maintenance.compact_day(rig.warehouse, rig.store, "shipments", "2025-06-01")
    assert (report.files_before, report.files_after, report.rows) == (5, 1, 10)
    table = rig.table().refresh()
    assert table.current_snapshot().summary["elt.maintenance"] == "compact"
    assert rig.rows() == {key: sorted(f"k{i}-v1-{j}" for j in range(4)) for i, key in enumerate(keys)}
    # a new version of k2: its rows leave the compacted file (rewritten without them), the others stay
    rig.transform(write_jsonl(tmp_path / "k2.jsonl", [record("k2-v2-0", day="2025-06-03")]), keys[2])
    assert [r.status for r in rig.commit()] == [COMMITTED]
    expected = {key: sorted(f"k{i}-v1-{j}" for j in range(4)) for i, key in enumerate(keys)}
    expected[keys[2]] = ["k2-v2-0"]
    assert rig.rows() == expected
    # and every snapshot ever committed held whole objects
    for snapshot in rig.table().snapshots():
        for key, ids in rig.rows(snapshot.snapshot_id).items():
            versions = {sid.split("-")[1] for sid in ids}
            assert len(versions) == 1 and len(ids) == (1 if versions == {"v2"} else 4), (snapshot.snapshot_id, key, ids)


def test_compaction_racing_a_replacement_gives_up_and_keeps_the_table(rig, tmp_path, monkeypatch):
    from elt_sdk.iceberg import maintenance, producers

    for i in range(3):
        rig.transform(write_jsonl(tmp_path / f"k{i}.jsonl", [record(f"k{i}-v1")]), f"bronze/shipments/k{i}.jsonl")
        rig.commit()
    rig.transform(write_jsonl(tmp_path / "k0.jsonl", [record("k0-v2")]), "bronze/shipments/k0.jsonl")
    racing = rig.take()
    real_close = producers.FileWriter.close

    def close_then_race(self):  # the committer replaces k0 while compaction writes its output
        out = real_close(self)
        if self.prefix == "compact":
            assert [r.status for r in rig.commit(racing)] == [COMMITTED]
        return out

    monkeypatch.setattr(producers.FileWriter, "close", close_then_race)
    with pytest.raises(maintenance.MaintenanceConflict):
        maintenance.compact_day(rig.warehouse, rig.store, "shipments", "2025-06-01")
    assert rig.rows() == {"bronze/shipments/k0.jsonl": ["k0-v2"], "bronze/shipments/k1.jsonl": ["k1-v1"],
                          "bronze/shipments/k2.jsonl": ["k2-v1"]}
    assert not list((rig.root / "silver" / "shipments" / "data").rglob("compact-*"))  # its outputs removed


def test_expiry_and_orphan_removal_keep_what_live_snapshots_need(rig, tmp_path):
    from elt_sdk.iceberg import maintenance

    key, path = "bronze/shipments/k.jsonl", tmp_path / "k.jsonl"
    for v in range(3):
        rig.transform(write_jsonl(path, [record(f"v{v}-{j}") for j in range(2)]), key)
        rig.commit()
    rig.transform(write_jsonl(path, [record("never-committed")]), key)
    stranded = rig.take()[0].files[0].key  # a handoff whose message was lost: nobody will add it
    data = rig.root / "silver" / "shipments" / "data"
    assert len(list(data.rglob("*.parquet"))) == 4
    young = maintenance.orphans(rig.warehouse, rig.store, "shipments", older_than_days=1)
    assert young.removed == []  # too young: it could be a commit still in the queue
    report = maintenance.orphans(rig.warehouse, rig.store, "shipments", older_than_days=0)
    assert report.removed == [stranded]  # older snapshots still use the replaced files
    assert maintenance.expire(rig.warehouse, "shipments", older_than_days=0).files_after == 1
    report = maintenance.orphans(rig.warehouse, rig.store, "shipments", older_than_days=0)
    # v0's file goes; v1's is still named by the current snapshot (as the file it replaced)
    assert len([k for k in report.removed if k.endswith(".parquet") and "/data/" in k]) == 1
    assert any("/metadata/" in k for k in report.removed)  # manifests of the expired snapshots
    assert len(list(data.rglob("*.parquet"))) == 2
    assert rig.rows() == {key: ["v2-0", "v2-1"]}  # the table still reads, whole
    rig.transform(write_jsonl(path, [record("v4-0")]), key)
    rig.commit()
    maintenance.expire(rig.warehouse, "shipments", older_than_days=0)
    maintenance.orphans(rig.warehouse, rig.store, "shipments", older_than_days=0)
    assert len(list(data.rglob("*.parquet"))) == 2  # v2's (named by the current snapshot) and v4's
    assert rig.rows() == {key: ["v4-0"]}


def test_an_object_split_into_chunks_is_handed_off_once_and_lands_whole(rig, tmp_path):
    from elt_sdk.formats import plan_chunks

    path = write_jsonl(tmp_path / "big.jsonl", [record(f"c-{i}", day=f"2025-06-0{1 + i % 3}") for i in range(90)], bad=1)
    source = LocalSource.from_path(path, key="bronze/shipments/big.jsonl")
    chunks = plan_chunks(source.size, 2048)
    assert len(chunks) >= 3
    outcomes = [rig.transformer.transform_object(source, rig.handoff, chunk=c, chunk_count=len(chunks)).outcome
                for c in reversed(chunks)]
    assert outcomes[-1] == COMMITTED and set(outcomes[:-1]) == {"waiting for other chunks"}
    [message] = rig.take()  # one commit message, naming every chunk attempt's files
    assert len({f.elt_version for f in message.files}) == len(chunks)
    assert [r.status for r in rig.commit([message])] == [COMMITTED]
    assert rig.rows() == {"bronze/shipments/big.jsonl": sorted(f"c-{i}" for i in range(90))}
    assert [r.status for r in rig.commit([message])] == [DUPLICATE]  # every chunk's version is there
