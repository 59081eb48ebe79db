"""gen + transform through the CLI, read back with pyarrow: silver gets exactly the valid
records, quarantine exactly the invalid ones, and a second run rewrites the same files."""
from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner, Result

from elt_sdk.cli import main
from conftest import read_jsonl


def run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result


def gen(tmp_path: Path, dataset: str, count: int, rate: float, fmt: str = "jsonl", seed: int = 1, name=None) -> tuple[Path, dict]:
    out = tmp_path / (name or f"{dataset}.{'jsonl' if fmt == 'jsonl' else 'json'}")
    res = run("gen", dataset, "--count", str(count), "--invalid-rate", str(rate), "--seed", str(seed),
              "--format", fmt, "--out", str(out))
    assert res.exit_code == 0, res.output
    stats = json.loads(res.stderr.strip().splitlines()[-1])
    return out, stats


def silver(out: Path, dataset: str) -> pa.Table:
    return pads.dataset(out / "silver" / dataset, format="parquet", partitioning="hive").to_table()


def test_100k_shipments_with_2pct_invalid(tmp_path):
    src, stats = gen(tmp_path, "shipments", 100_000, 0.02, seed=42)
    assert stats["records"] == 100_000 and stats["malformed"] > 0 and stats["schema_invalid"] > 0
    out = tmp_path / "out"
    res = run("transform", str(src), "--out", str(out), "--dataset", "shipments", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    counts = summary["datasets"]["shipments"]
    assert counts == {"objects": 1, "records_in": 100_000, "written": stats["valid"],
                      "quarantined": stats["malformed"] + stats["schema_invalid"]}

    table = silver(out, "shipments")
    assert table.num_rows == stats["valid"]
    schema = table.schema
    assert schema.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert schema.field("weight_kg").type == pa.float64()
    assert schema.field("shipment_id").type == pa.string()
    # dt is the UTC date of event_time, for every row
    days = {d.strftime("%Y-%m-%d") for d in table.column("event_time").to_pylist()}
    parts = {p.name for p in (out / "silver" / "shipments").iterdir()}
    assert parts == {f"dt={d}" for d in days} and len(parts) >= 2
    for row in table.slice(0, 500).to_pylist():
        assert row["dt"] == row["event_time"].strftime("%Y-%m-%d")

    qfiles = list((out / "quarantine" / "shipments").glob("*.jsonl"))
    rejected = [r for f in qfiles for r in read_jsonl(f)]
    assert len(rejected) == stats["malformed"] + stats["schema_invalid"]
    stages = Counter(r["stage"] for r in rejected)
    assert stages == {"parse": stats["malformed"], "validate": stats["schema_invalid"]}
    for r in rejected:
        assert r["errors"] and all(e["path"].startswith("$") and e["message"] for e in r["errors"])
        assert r["source"].endswith("shipments.jsonl") and r["line"] >= 1
        assert r["plugin"] == "shipments" and r["plugin_version"] == "1.0.0"
        assert list(r) == ["dataset", "plugin", "plugin_version", "source", "etag", "chunk", "line", "byte_offset",
                           "stage", "errors", "raw", "raw_encoding"]  # the envelope, in this order
    # the line numbers and byte offsets point at the actual bad lines of the source file
    body = src.read_bytes()
    lines = body.split(b"\n")
    for r in rejected[:50]:
        raw = r["raw"].encode(r["raw_encoding"])
        assert lines[r["line"] - 1].decode("utf-8", "replace") == raw.decode("utf-8", "replace")
        assert body[r["byte_offset"]:].startswith(raw)

    # a second run replaces the file's rows with the same bytes: no row added, nothing left behind
    def outputs():
        found = sorted(p for p in out.rglob("*") if p.is_file() and "_elt" not in p.parts)
        return {re.sub(r"-[0-9a-f]{8}-c", "-c", p.relative_to(out).as_posix()): p.read_bytes() for p in found}

    before = outputs()
    res = run("transform", str(src), "--out", str(out), "--dataset", "shipments", "--json")
    assert outputs() == before
    assert pads.dataset(out / "silver" / "shipments", partitioning="hive").count_rows() == 100_000 - len(rejected)
    assert not list((out / "_elt").glob("staging/**/*.*"))  # no attempt's staged file left


def test_wrong_types_are_rejected_never_coerced(tmp_path):
    good_ship = {"record_type": "shipments", "event_time": "2025-03-01T10:00:00Z", "shipment_id": "S1",
                 "origin": "A", "destination": "B", "carrier": "UPS", "weight_kg": 12.5}
    good_inv = {"record_type": "invoice_lines", "event_time": "2025-03-01T10:00:00+02:00", "invoice_id": "I1",
                "sku": "K", "quantity": 2, "unit_price": 1.5, "line_total": 3.0}
    lines = [
        good_ship,
        {**good_ship, "weight_kg": "12.5"},
        good_inv,
        {**good_inv, "quantity": 2.5},
        {**good_inv, "quantity": 3.0},  # JSON Schema: 3.0 is an integer
        {**good_inv, "quantity": True},
        {**good_ship, "event_time": "yesterday"},
        {**good_ship, "event_time": "2025-02-30T10:00:00Z"},  # passes the vector regex, no such day
        {**good_ship, "event_time": "2016-12-31T23:59:60Z"},  # a leap second: stored as 23:59:59.999999
        {**good_ship, "event_time": "0000-01-01T00:00:00Z"},  # valid RFC 3339, outside years 1-9999
    ]
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = tmp_path / "out"
    res = run("transform", str(src), "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    ship = silver(out, "shipments").to_pylist()
    inv = silver(out, "invoice_lines").to_pylist()
    assert [r["weight_kg"] for r in ship] == [12.5, 12.5]
    assert sorted(r["event_time"].isoformat() for r in ship) == ["2016-12-31T23:59:59.999999+00:00",
                                                                 "2025-03-01T10:00:00+00:00"]
    assert sorted(r["quantity"] for r in inv) == [2, 3]
    # +02:00 is stored in UTC, and dt follows the UTC date
    assert {r["event_time"].isoformat() for r in inv} == {"2025-03-01T08:00:00+00:00"}
    rejected = {(r["line"], e["path"]): e["message"]
                for f in (out / "quarantine").rglob("*.jsonl") for r in read_jsonl(f) for e in r["errors"]}
    assert rejected[(2, "$.weight_kg")] == "$.weight_kg must be number"
    assert rejected[(4, "$.quantity")] == "$.quantity must be integer"
    assert rejected[(6, "$.quantity")] == "$.quantity must be integer"
    assert "date-time" in rejected[(7, "$.event_time")]
    assert "date-time" in rejected[(8, "$.event_time")]
    assert rejected[(10, "$.event_time")] == ("$.event_time: '0000-01-01T00:00:00Z' is outside the years 1-9999 "
                                              "(in UTC) that silver timestamps hold")


def test_every_error_of_a_record_is_listed(tmp_path):
    src = tmp_path / "bronze" / "shipments" / "x.jsonl"
    src.parent.mkdir(parents=True)
    src.write_text(json.dumps({"record_type": "shipments", "event_time": "2025-03-01T10:00:00Z",
                               "origin": 1, "destination": "B", "carrier": "", "weight_kg": -1}) + "\n")
    out = tmp_path / "out"
    assert run("transform", str(src), "--out", str(out)).exit_code == 0
    [rec] = read_jsonl(next((out / "quarantine" / "shipments").glob("*.jsonl")))
    paths = {e["path"] for e in rec["errors"]}
    assert paths == {"$.shipment_id", "$.origin", "$.carrier", "$.weight_kg"}


def test_formats_json_array_gzip_and_crlf_give_the_same_rows(tmp_path):
    jsonl, _ = gen(tmp_path, "tracking_events", 300, 0.0, seed=3)
    array, _ = gen(tmp_path, "tracking_events", 300, 0.0, fmt="json", seed=3)
    gz = tmp_path / "t.jsonl.gz"
    gz.write_bytes(gzip.compress(jsonl.read_bytes()))
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(b"\xef\xbb\xbf" + jsonl.read_bytes().replace(b"\n", b"\r\n\r\n"))
    tables = []
    for i, f in enumerate([jsonl, array, gz, crlf]):
        out = tmp_path / f"o{i}"
        assert run("transform", str(f), "--out", str(out), "--dataset", "tracking_events").exit_code == 0
        tables.append(silver(out, "tracking_events").sort_by([("event_time", "ascending"), ("shipment_id", "ascending")]))
    assert tables[0].num_rows == 300
    assert all(t.equals(tables[0]) for t in tables[1:])


def test_bronze_folder_routes_the_dataset(tmp_path):
    src = tmp_path / "bronze" / "invoice_lines" / "2025" / "a.jsonl"
    src.parent.mkdir(parents=True)
    gen_file, stats = gen(tmp_path, "invoice_lines", 50, 0.2, seed=9)
    src.write_bytes(gen_file.read_bytes())
    out = tmp_path / "out"
    res = run("transform", str(tmp_path / "bronze"), "--out", str(out), "--json")
    counts = json.loads(res.stdout)["datasets"]
    assert set(counts) == {"invoice_lines"}, counts  # malformed lines stay with their dataset
    assert counts["invoice_lines"]["quarantined"] == stats["malformed"] + stats["schema_invalid"]


@pytest.mark.parametrize("linked", ["file", "folder", "alias", "cwd"])
def test_a_file_linked_into_a_bronze_folder_belongs_to_that_folder(tmp_path, linked, monkeypatch):
    """The link's place decides, not its target's (which has no bronze/<dataset>/ folder): else
    the file is routed record by record, and its malformed lines, naming no dataset, are unrouted."""
    gen_file, stats = gen(tmp_path, "invoice_lines", 50, 0.2, seed=9)
    elsewhere = tmp_path / "elsewhere" / "a.jsonl"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(gen_file.read_bytes())
    folder = tmp_path / "bronze" / "invoice_lines"
    folder.parent.mkdir(parents=True)
    if linked == "file":
        folder.mkdir()
        (folder / "a.jsonl").symlink_to(elsewhere)
    elif linked in ("folder", "cwd"):
        folder.symlink_to(elsewhere.parent, target_is_directory=True)
        (elsewhere.parent / "back").symlink_to(tmp_path / "bronze", target_is_directory=True)  # no loop
    else:  # a real dataset folder and a link to it (named to come first): the real one keys the file
        folder.mkdir()
        (folder / "a.jsonl").write_bytes(elsewhere.read_bytes())
        (folder.parent / "aaa_alias").symlink_to(folder, target_is_directory=True)
    if linked == "cwd":  # cd bronze/invoice_lines (the link) && elt-sdk transform .
        monkeypatch.chdir(folder)
        monkeypatch.setenv("PWD", str(folder))
        res = run("transform", ".", "--out", str(tmp_path / "out"), "--json")
    else:
        res = run("transform", str(tmp_path / "bronze"), "--out", str(tmp_path / "out"), "--json")
    assert json.loads(res.stdout)["objects"] == 1
    counts = json.loads(res.stdout)["datasets"]
    assert set(counts) == {"invoice_lines"}, counts
    assert counts["invoice_lines"]["quarantined"] == stats["malformed"] + stats["schema_invalid"]


@pytest.mark.parametrize("args, message", [
    (["transform", "/no/such/file.jsonl", "--out", "x"], "no such file or folder: /no/such/file.jsonl"),
    (["transform", ".", "--out", "x", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["gen", "nope"], "unknown dataset 'nope'; installed datasets: invoice_lines, shipments, tracking_events"),
])
def test_cli_errors_are_one_line_with_exit_2(args, message):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_unreadable_file_is_one_line_and_exit_1(tmp_path):
    # root reads any file it may open, but not this one: reading it fails with EIO
    res = CliRunner().invoke(main, ["transform", "/proc/self/mem", "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert lines == ["Error: /proc/self/mem: cannot read: Input/output error"]


def test_a_bad_file_never_blocks_its_neighbours(tmp_path):
    good, _ = gen(tmp_path, "shipments", 20, 0.0)
    bad = tmp_path / "bad.json.gz"
    bad.write_bytes(b"\x1f\x8b not really gzip")
    res = CliRunner().invoke(main, ["transform", str(bad), str(good), "--out", str(tmp_path / "o"), "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stdout)["datasets"]["shipments"]["written"] == 20
    assert "1 of 2 file(s) failed" in res.stderr and "bad.json.gz" in res.stderr


def test_columnar_path_hands_what_arrow_refuses_to_the_record_path(registry):
    from elt_sdk.defaults import columnar
    from elt_sdk.testing import transform_lines

    ds = registry.dataset("shipments")
    assert columnar.plan_for(ds) is not None  # these lines take the pyarrow path
    base = {"record_type": "shipments", "shipment_id": "S", "origin": "A", "destination": "B", "carrier": "UPS",
            "weight_kg": 1.5}
    times = ["2025-03-05T10:00:00Z", "2025-02-30T10:00:00Z", "2025-03-01T10:00:00.123456789Z",
             "2016-12-31T23:59:60Z", "2025-03-03T10:00:00+01:00"]
    lines = [json.dumps({**base, "event_time": t}).encode() for t in times]
    result = transform_lines(registry, ds, lines)
    assert [q["line"] for q in result.quarantine] == [2]
    assert "date-time" in result.quarantine[0]["errors"][0]["message"]
    # the row the record path accepted (9 fraction digits) is merged back in line order
    from elt_sdk.batch import RawBlock, SourceRef
    block = RawBlock(SourceRef("mem://x", "e"), b"\n".join(lines) + b"\n")
    parsed = registry.hooks(ds).elt_parse(dataset=ds, block=block)
    assert parsed.table is not None
    validated = registry.hooks(ds).elt_validate(dataset=ds, batch=parsed)
    assert [t.isoformat() for t in validated.table.column("event_time").to_pylist()] == [
        "2025-03-05T10:00:00+00:00", "2025-03-01T10:00:00.123456+00:00", "2016-12-31T23:59:59.999999+00:00",
        "2025-03-03T09:00:00+00:00"]
