"""Compaction in place under the commit protocol, on a local store (the S3 path runs in
test_pipeline_aws.py and test_ops_cli.py): rows kept exactly, later versions still replace
theirs, interrupted runs finished by the next one, memory flat."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elt_sdk import compaction, faults
from elt_sdk.commit import Committer
from elt_sdk.pipeline import Transformer
from elt_sdk.source import LocalSource
from elt_sdk.store import LocalStore

DAY = "2025-06-01"
POINTS = ("compact:staged", "compact:pending", "compact:claimed-one", "compact:claimed", "compact:promoted",
          "compact:finalized")


def records(ids, day: str = DAY, carrier: str = "DHL") -> str:
    return "".join(json.dumps({"record_type": "shipments", "event_time": f"{day}T{i % 24:02d}:00:00Z",
                               "shipment_id": f"S{i}", "origin": "Oslo", "destination": "Rome", "carrier": carrier,
                               "weight_kg": 1.0 + i % 1000}) + "\n" for i in ids)


def small_target(silver: "Silver") -> int:
    """About two and a half of the partition's files: outputs that hold several inputs, and
    segments that run across outputs, whatever size this pyarrow writes a small file at."""
    sizes = [p.stat().st_size for p in silver.files()]
    return int(2.5 * sum(sizes) / len(sizes))


class Silver:
    """A local silver folder fed by the transform, objects named bronze/shipments/<name>.jsonl."""

    def __init__(self, root: Path, registry):
        self.bronze = root / "bronze" / "shipments"
        self.bronze.mkdir(parents=True)
        self.out = root / "out"
        self.store = LocalStore(self.out)
        self.transformer = Transformer(registry)
        self.objects: dict[str, list[int]] = {}

    def put(self, name: str, ids, *, force: bool = True) -> None:
        path = self.bronze / f"{name}.jsonl"
        path.write_text(records(ids))
        time.sleep(0.002)  # a later write time: a later version
        self.transformer.transform_object(LocalSource.from_path(path, key=f"bronze/shipments/{name}.jsonl"),
                                          Committer(self.store), force=force)
        self.objects[name] = list(ids)

    def files(self) -> list[Path]:
        return sorted((self.out / "silver" / "shipments" / f"dt={DAY}").glob("*.parquet"))

    def rows(self) -> list[dict]:
        return sorted((r for f in self.files() for r in pq.read_table(f).to_pylist()), key=lambda r: r["shipment_id"])

    def expected(self) -> list[str]:
        return sorted(f"S{i}" for ids in self.objects.values() for i in ids)

    def ids(self) -> list[str]:
        return [r["shipment_id"] for r in self.rows()]

    def partition(self) -> dict:
        return json.loads((self.out / compaction.partition_key("shipments", DAY)).read_text())

    def compact(self, **kw) -> compaction.Report:
        schema = self.transformer.registry.dataset("shipments").arrow_schema
        return compaction.compact(self.store, "shipments", DAY, in_place=True, schema=schema, **kw)


@pytest.fixture
def silver(tmp_path, registry) -> Silver:
    s = Silver(tmp_path, registry)
    for n in range(6):
        s.put(f"o{n}", range(10 * n, 10 * n + 10))
    return s


def test_in_place_keeps_every_row_and_later_versions_still_replace_theirs(silver):
    before = silver.rows()
    report = silver.compact(target_bytes=small_target(silver))  # small outputs: segments run across files
    assert report.rows == 60 and report.files_before == 6 and 1 < report.files_after < 6
    assert silver.rows() == before
    part = silver.partition()
    assert part["pending"] is None and part["garbage"] == [] and sorted(part["files"]) == report.keys
    segments = [s for e in part["files"].values() for s in e["segments"]]
    assert sum(s["rows"] for s in segments) == 60
    assert {s["object"] for s in segments} == {f"bronze/shipments/o{n}.jsonl" for n in range(6)}
    for key, entry in part["files"].items():  # each segment is exactly its object's rows, where it says
        table = pq.read_table(silver.out / key).to_pylist()
        for s in entry["segments"]:
            n = int(s["object"].rsplit("/o", 1)[1].split(".")[0])
            assert {r["shipment_id"] for r in table[s["start"]:s["start"] + s["rows"]]} <= {f"S{i}" for i in range(10 * n, 10 * n + 10)}
    manifest = json.loads(next((silver.out / "_elt" / "objects").glob("*.json")).read_text())
    assert manifest["current"]["files"]["silver"] == [] and list(manifest["current"]["compacted"].values()) == \
        [compaction.partition_key("shipments", DAY)]

    silver.put("o2", [200, 201])  # a new version: o2's old rows leave the compacted files
    silver.put("o4", range(40, 50))  # the same content again (a replay): replaced, not doubled
    assert silver.ids() == silver.expected()
    again = silver.compact(target_bytes=1 << 20)  # the compacted files and the new files: one file
    assert silver.ids() == silver.expected() and again.files_after == 1
    silver.put("o0", [7])
    assert silver.ids() == silver.expected()
    assert silver.compact().nothing_to_do is False and silver.compact().nothing_to_do is True


def test_an_object_whose_commit_has_not_finished_step_5_is_left_to_a_later_run(silver):
    """Its replaced version's files may still be readable, and the delivery that finishes step 5
    announces the current files by key: compaction must not merge them away meanwhile."""
    mkey = next(iter(sorted((silver.out / "_elt" / "objects").glob("*.json"))))
    doc = json.loads(mkey.read_text())
    mine = doc["current"]["files"]["silver"]
    doc["garbage"] = {"silver": ["silver/shipments/dt=2025-06-01/an-older-version.parquet"]}
    mkey.write_text(json.dumps(doc))
    report = silver.compact(target_bytes=1 << 20)
    assert (report.input_files, report.rows, report.files_after) == (5, 50, 2)  # five merged, one left
    assert all((silver.out / k).exists() for k in mine) and silver.ids() == silver.expected()
    assert json.loads(mkey.read_text())["current"]["files"]["silver"] == mine


def test_out_of_place_writes_a_verified_copy_and_leaves_silver_alone(silver):
    files = silver.files()
    report = compaction.compact(silver.store, "shipments", DAY, output_prefix="silver_compacted/")
    assert (report.rows, report.output_files, report.input_files) == (60, 1, 6)
    assert silver.files() == files
    copy = pq.read_table(silver.out / report.keys[0]).to_pylist()
    assert sorted(r["shipment_id"] for r in copy) == silver.expected()
    with pytest.raises(compaction.CompactionError, match="must not be silver/"):
        compaction.compact(silver.store, "shipments", DAY, output_prefix="silver")


def test_rows_that_differ_are_caught_before_anything_is_removed(silver, monkeypatch):
    files, rows = silver.files(), silver.rows()
    flush = compaction._Writer._flush

    def lossy(self):  # a writer bug: the last row of each row group vanishes
        self.buffer = [t.slice(0, t.num_rows - 1) if i == len(self.buffer) - 1 else t for i, t in enumerate(self.buffer)]
        flush(self)

    monkeypatch.setattr(compaction._Writer, "_flush", lossy)
    with pytest.raises(compaction.CompactionError, match="nothing was changed"):
        silver.compact()
    assert silver.files() == files and silver.rows() == rows
    assert not list((silver.out / "_elt").glob("staging/compaction/**/*.parquet"))
    assert not (silver.out / compaction.partition_key("shipments", DAY)).exists()
    with pytest.raises(compaction.CompactionError, match="nothing was changed"):
        compaction.compact(silver.store, "shipments", DAY)  # out of place: no unverified copy is left
    assert not list((silver.out / "silver_compacted").rglob("*.parquet"))


CRASH = """
import sys
from elt_sdk import compaction
from elt_sdk.store import LocalStore
compaction.compact(LocalStore(sys.argv[1]), "shipments", sys.argv[2], in_place=True, target_bytes=int(sys.argv[3]))
"""


def crash_at(silver: Silver, point: str) -> None:
    proc = subprocess.run([sys.executable, "-c", CRASH, str(silver.out), DAY, str(small_target(silver))],
                          capture_output=True, text=True,
                          env={**__import__("os").environ, faults.ENV: point}, timeout=120)
    assert proc.returncode == faults.EXIT_CODE, proc.stderr


@pytest.mark.parametrize("point", POINTS)
def test_an_interrupted_run_is_finished_by_the_next_one(silver, point):
    target = small_target(silver)
    crash_at(silver, point)
    report = silver.compact(target_bytes=target)
    assert silver.ids() == silver.expected()  # never a row lost or doubled once it is finished
    part = silver.partition()
    assert part["pending"] is None and part["garbage"] == [] and part["dropped"] == []
    assert 1 < len(silver.files()) < 6
    assert not list((silver.out / "_elt").glob("staging/compaction/**/*.parquet"))
    if point not in ("compact:staged", "compact:finalized"):
        assert report.recovered.startswith("finished run")


@pytest.mark.parametrize("point", ("compact:pending", "compact:claimed", "compact:promoted"))
def test_a_version_superseded_while_a_dead_run_holds_its_rows_is_taken_out(silver, point):
    target = small_target(silver)
    crash_at(silver, point)
    silver.put("o3", [300])  # o3's old rows are in the dead run's outputs
    if point != "compact:pending":  # claimed: the new version's commit could only tombstone them
        assert silver.partition()["dropped"]
    silver.compact(target_bytes=target)
    assert silver.ids() == silver.expected()
    assert silver.partition()["dropped"] == []


def test_files_of_another_schema_are_left_apart(silver):
    [odd] = [f for f in silver.files()][:1]
    table = pq.read_table(odd)
    pq.write_table(table.append_column("extra", pa.array([1] * table.num_rows)), odd)
    report = silver.compact()
    assert report.skipped == [odd.relative_to(silver.out).as_posix()] and report.input_files == 5
    assert odd in silver.files() and report.files_after == 2


WORKER = """
import sys
from elt_sdk import compaction
from elt_sdk.bench import peak_rss_mib
from elt_sdk.store import LocalStore
report = compaction.compact(LocalStore(sys.argv[1]), "shipments", sys.argv[2], in_place=True)
print(report.rows, int(peak_rss_mib()))
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_partition(tmp_path, registry):
    """Rows stream a row group at a time: four times the partition, (almost) the same memory.
    (Holding the large partition's 1.2M rows would take over 100 MiB more; runs vary by ~20 MiB.)"""
    rss = {}
    for name, objects in (("small", 3), ("large", 12)):
        s = Silver(tmp_path / name, registry)
        for n in range(objects):
            s.put(f"o{n}", range(100_000 * n, 100_000 * (n + 1)))
        proc = subprocess.run([sys.executable, "-c", WORKER, str(s.out), DAY], capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        rows, rss[name] = map(int, proc.stdout.split())
        assert rows == 100_000 * objects
    assert rss["large"] < rss["small"] + 40, rss
