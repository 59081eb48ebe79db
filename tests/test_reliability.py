"""Exact silver under hostile input and faults (issue #10's six ways it broke, each its own test):
no record fails its object, objects land whole, new versions supersede old ones, memory stays
bounded. Read back with pyarrow; the S3 cases run on moto's server over HTTP."""
from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import time

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from elt_sdk.aws import handlers
from elt_sdk.cli import main
from elt_sdk.local.esm import EventSourceMapping, LambdaContext, queue_depth
from elt_sdk.pipeline import Transformer
from elt_sdk.source import LocalSource
from elt_sdk.store import LocalStore
from elt_sdk.testing import transform_lines

from conftest import notifications


def record(i: int, **changes) -> dict:
    return {"record_type": "shipments", "event_time": f"2025-06-{1 + i % 3:02d}T12:00:00Z", "shipment_id": f"S{i}",
            "origin": "Oslo", "destination": "Rome", "carrier": "DHL", "weight_kg": 1.5 + i, **changes}


def jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def silver_ids(out) -> list[str]:
    folder = out / "silver" / "shipments"
    if not folder.exists():
        return []
    return sorted(pads.dataset(folder, partitioning="hive").to_table().column("shipment_id").to_pylist())


# -- 1. a timestamp outside years 1-9999 (UTC) fails its record, not its object ----------------------

@pytest.mark.parametrize("stamp", ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_event_time_outside_years_1_to_9999_is_quarantined_and_its_neighbours_written(registry, stamp):
    ds = registry.dataset("shipments")
    lines = [json.dumps(record(1)).encode(), json.dumps(record(2, event_time=stamp)).encode(),
             json.dumps(record(3)).encode()]
    result = transform_lines(registry, ds, lines)
    assert sorted(result.silver.column("shipment_id").to_pylist()) == ["S1", "S3"]
    [q] = result.quarantine
    assert q["line"] == 2 and any("event_time" in e["path"] + e["message"] for e in q["errors"]), q


# -- 2. inside a JSON array, a record nested 10,000 deep or holding a lone surrogate ----------------

def test_deep_nesting_and_lone_surrogates_inside_a_json_array_fail_only_their_record(registry):
    ds = registry.dataset("shipments")
    deep = b'{"shipment_id": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    surrogate = json.dumps(record(2, origin="\ud800")).encode()  # json escapes it: "\\ud800"
    elements = [json.dumps(record(1)).encode(), deep, surrogate, json.dumps(record(4)).encode()]
    result = transform_lines(registry, ds, elements, fmt="json")
    assert sorted(result.silver.column("shipment_id").to_pylist()) == ["S1", "S4"]
    assert [q["line"] for q in result.quarantine] == [2, 3]
    as_lines = transform_lines(registry, ds, elements)  # the same records as JSONL: the same verdicts
    assert [q["line"] for q in as_lines.quarantine] == [2, 3]
    assert [q["errors"] for q in as_lines.quarantine] == [q["errors"] for q in result.quarantine]


# -- 3. a decompression bomb is refused in seconds, in bounded memory; its neighbours land ----------

def zero_bomb(path, decompressed: int) -> None:
    with gzip.open(path, "wb", compresslevel=9) as fh:
        block = b"\0" * (8 << 20)
        for _ in range(decompressed // len(block)):
            fh.write(block)


def test_a_gzip_bomb_is_refused_with_a_reason_and_its_neighbours_written(tmp_path):
    bronze = tmp_path / "bronze" / "shipments"
    bronze.mkdir(parents=True)
    zero_bomb(bronze / "bomb.jsonl.gz", 256 << 20)  # 256 MiB of zeros, no newline: ~250 KB compressed
    (bronze / "good.jsonl").write_bytes(jsonl(record(i) for i in range(5)))
    started = time.perf_counter()
    result = cli("transform", str(tmp_path / "bronze"), "--out", str(tmp_path / "out"), "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    [failed] = summary["failed"]
    assert failed["source"].endswith("bomb.jsonl.gz") and "max_expansion_ratio" in failed["error"]
    assert silver_ids(tmp_path / "out") == [f"S{i}" for i in range(5)]
    [marker] = (tmp_path / "out" / "quarantine" / "_failed").glob("*.json")
    assert "decompression bomb" in json.loads(marker.read_text())["error"]
    assert time.perf_counter() - started < 120  # not a timing assertion of speed: a guard against the old 347 s hang


BOMB_WORKER = """
import sys
from pathlib import Path
from elt_sdk import memory
from elt_sdk.bench import peak_rss_mib
from elt_sdk.errors import ObjectRefused
from elt_sdk.pipeline import Transformer
from elt_sdk.plugins import load_registry
from elt_sdk.source import LocalSource
from elt_sdk.store import LocalStore
memory.use_transform_pool()
try:
    Transformer(load_registry()).transform_object(LocalSource.from_path(sys.argv[1], key="bronze/shipments/b.gz"),
                                                  LocalStore(Path(sys.argv[2])), dataset="shipments")
    print("accepted")
except ObjectRefused as exc:
    print("refused", int(peak_rss_mib()))
"""


@pytest.mark.slow
def test_a_gzip_bomb_is_refused_in_bounded_memory(tmp_path):
    zero_bomb(tmp_path / "bomb.gz", 1 << 30)  # the case: 1 GiB of zeros in ~1 MiB
    proc = subprocess.run([sys.executable, "-c", BOMB_WORKER, str(tmp_path / "bomb.gz"), str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    verdict, peak = proc.stdout.split()
    assert verdict == "refused" and int(peak) < 300, proc.stdout  # was 15.8 GB


# -- 4. an object that fails leaves none of its rows, even rows already written aside ---------------

def test_a_truncated_gzip_leaves_no_rows_and_its_fixed_upload_lands_exactly(registry, tmp_path):
    ds = registry.dataset("shipments")
    body = gzip.compress(jsonl(record(i) for i in range(30_000)))
    src = tmp_path / "bronze" / "shipments" / "big.jsonl.gz"
    src.parent.mkdir(parents=True)
    src.write_bytes(body[: len(body) * 3 // 4])  # truncated: the stream ends mid-way
    out = LocalStore(tmp_path / "out")
    transformer = Transformer(registry, max_rows_per_file=1000)  # part files are finished (and staged) early
    with pytest.raises(Exception, match="not a readable gzip stream"):
        transformer.transform_object(LocalSource.from_path(src, key="bronze/shipments/big.jsonl.gz"), out, dataset=ds.name)
    assert silver_ids(tmp_path / "out") == []
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]  # staged files discarded too
    src.write_bytes(body)  # the fixed upload
    os.utime(src, ns=(time.time_ns() + 10**9,) * 2)
    report = transformer.transform_object(LocalSource.from_path(src, key="bronze/shipments/big.jsonl.gz"), out,
                                          dataset=ds.name)
    assert report.totals().written == 30_000 and len(silver_ids(tmp_path / "out")) == 30_000


# -- 5. a new version of a key replaces the old version's rows (and a late old one changes nothing) --

def test_transform_twice_on_an_edited_file_keeps_only_the_new_rows(tmp_path):
    src = tmp_path / "bronze" / "shipments" / "a.jsonl"
    src.parent.mkdir(parents=True)
    src.write_bytes(jsonl([record(1), record(2), {"bad": True}]))
    assert cli("transform", str(src), "--out", str(tmp_path / "out")).exit_code == 0
    assert silver_ids(tmp_path / "out") == ["S1", "S2"]
    src.write_bytes(jsonl([record(7), record(8), record(9)]))
    os.utime(src, ns=(time.time_ns() + 10**9,) * 2)
    assert cli("transform", str(src), "--out", str(tmp_path / "out")).exit_code == 0
    assert silver_ids(tmp_path / "out") == ["S7", "S8", "S9"]
    assert not list((tmp_path / "out" / "quarantine").rglob("*.jsonl"))  # the old version's reject left too


def drain(endpoint, settings, res) -> None:
    esm = EventSourceMapping(endpoint.client("sqs"), res.queue_url, handlers.transform_handler, function_name="t",
                             timeout_s=60, batch_size=10, region=settings.region)
    for _ in range(100):
        if esm.poll_once() == 0 and queue_depth(endpoint.client("sqs"), res.queue_url) == 0:
            return


def s3_ids(endpoint, bucket) -> list[str]:
    s3, ids = endpoint.client("s3"), []
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="silver/").get("Contents", []):
        table = pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()))
        ids += table.column("shipment_id").to_pylist()
    return sorted(ids)


def test_an_overwritten_s3_object_replaces_its_rows_and_a_late_old_event_resurrects_nothing(endpoint, stack):
    settings, res = stack
    s3 = endpoint.client("s3")
    key = "bronze/shipments/over.jsonl"
    ctx = LambdaContext("ingest", 30)
    s3.put_object(Bucket=res.bronze_bucket, Key=key, Body=jsonl(record(i) for i in range(3)))
    [old_event] = notifications(endpoint, res)
    handlers.ingest_handler(old_event, ctx)
    drain(endpoint, settings, res)
    assert s3_ids(endpoint, res.silver_bucket) == ["S0", "S1", "S2"]
    time.sleep(0.01)  # the new version's event time is later, as S3's would be
    s3.put_object(Bucket=res.bronze_bucket, Key=key, Body=jsonl(record(i) for i in range(10, 14)))
    [new_event] = notifications(endpoint, res)
    handlers.ingest_handler(new_event, ctx)
    drain(endpoint, settings, res)
    assert s3_ids(endpoint, res.silver_bucket) == ["S10", "S11", "S12", "S13"]
    # the old version's event delivered again, late: it cannot read the old bytes (gone) and,
    # were they readable, its version is older: silver keeps the new version's rows
    handlers.ingest_handler(old_event, ctx)
    drain(endpoint, settings, res)
    assert s3_ids(endpoint, res.silver_bucket) == ["S10", "S11", "S12", "S13"]
    assert queue_depth(endpoint.client("sqs"), res.dlq_url) == 0


def test_a_late_older_version_is_superseded_even_when_its_bytes_are_readable(endpoint, stack):
    """Versions are ordered by the S3 sequencer, not by arrival: an older version that arrives
    after a newer one changes nothing, a newer one replaces whatever is there."""
    from elt_sdk.aws.messages import ObjectPointer

    settings, res = stack
    s3 = endpoint.client("s3")
    bodies = {"v1": jsonl(record(i) for i in range(2)), "v2": jsonl(record(i) for i in range(20, 25))}
    keys = {name: f"bronze/shipments/{name}.jsonl" for name in bodies}
    etags = {name: s3.put_object(Bucket=res.bronze_bucket, Key=keys[name], Body=b)["ETag"].strip('"')
             for name, b in bodies.items()}
    # both versions "of" one key: pointers with the key as origin and injected sequencers
    def pointer(name, seq):
        return ObjectPointer(res.bronze_bucket, keys[name], etags[name], len(bodies[name]), "shipments",
                             sequencer=seq, origin="bronze/shipments/one.jsonl", origin_etag=etags[name])
    for name, seq in (("v2", "0062A1B2C3D4E5F602"), ("v1", "0062A1B2C3D4E5F601")):  # the newer first
        handlers.transform_handler({"Records": [{"messageId": name, "body": pointer(name, seq).to_json()}]},
                                   LambdaContext("t", 60))
    assert s3_ids(endpoint, res.silver_bucket) == [f"S{i}" for i in range(20, 25)]


# -- 6. a JSON array streams like JSONL: memory does not grow with it -------------------------------

MEMORY_WORKER = """
import sys
from pathlib import Path
from elt_sdk import memory
from elt_sdk.bench import peak_rss_mib
from elt_sdk.pipeline import Transformer
from elt_sdk.plugins import load_registry
from elt_sdk.source import LocalSource
from elt_sdk.store import LocalStore
memory.use_transform_pool()
path = Path(sys.argv[1])
report = Transformer(load_registry()).transform_object(LocalSource.from_path(path, key="bronze/shipments/x.json"),
                                                       LocalStore(Path(sys.argv[2])), dataset="shipments")
print(report.totals().written, int(peak_rss_mib()))
"""


@pytest.mark.slow
def test_a_json_array_streams_in_bounded_memory(tmp_path):
    one = json.dumps(record(1)).encode()
    rss = {}
    for name, n in (("small", 200_000), ("large", 600_000)):  # ~45 MB and ~135 MB arrays
        path = tmp_path / f"{name}.json"
        with path.open("wb") as fh:
            fh.write(b"[")
            for i in range(n):
                fh.write((b"," if i else b"") + one)
            fh.write(b"]")
        proc = subprocess.run([sys.executable, "-c", MEMORY_WORKER, str(path), str(tmp_path / name)],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        written, peak = map(int, proc.stdout.split())
        assert written == n
        rss[name] = peak
    assert rss["large"] < rss["small"] + 30, rss  # 3x the data, (almost) the same memory (was 1.12 GB for 1M)
