"""A corpus of hostile bronze input, each case with the outcome a user expects: which records
reach silver, which are quarantined (and at which stage), which objects are refused whole (and
why). Every case runs through ``elt-sdk transform`` as a user would run it."""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner

from elt_sdk.cli import main
from elt_sdk.plugins import load_registry
from elt_sdk.testing import reference_verdict

OK = {"record_type": "shipments", "event_time": "2025-06-01T12:00:00Z", "shipment_id": "S1", "origin": "Oslo",
      "destination": "Rome", "carrier": "DHL", "weight_kg": 1.5}


def rec(sid: str = "S1", **changes) -> dict:
    return {**OK, "shipment_id": sid, **changes}


def line(sid: str = "S1", **changes) -> bytes:
    return json.dumps(rec(sid, **changes)).encode()


def lines(*ids: str) -> bytes:
    return b"".join(line(i) + b"\n" for i in ids)


@dataclass
class Case:
    name: str
    body: bytes
    written: list[str] = field(default_factory=list)  # shipment ids in silver
    quarantined: int = 0
    stages: set[str] = field(default_factory=set)  # stages of the quarantine entries
    message: str = ""  # in some quarantine error message
    refused: str = ""  # the object fails whole, with this in its reason
    filename: str = "in.jsonl"
    folder: str = "bronze/shipments"
    dt: set[str] = field(default_factory=set)


def member(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


CASES = [
    # containers and framing
    Case("empty file", b""),
    Case("blank file", b"\n  \n\t\n"),
    Case("byte-order mark", b"\xef\xbb\xbf" + lines("S1", "S2"), ["S1", "S2"]),
    Case("CRLF line ends", lines("S1", "S2").replace(b"\n", b"\r\n"), ["S1", "S2"]),
    Case("CR-only line ends", lines("S1", "S2").replace(b"\n", b"\r"), ["S1", "S2"]),
    Case("no final newline", lines("S1") + line("S2"), ["S1", "S2"]),
    Case("blank lines between records", b"\n" + line("S1") + b"\n\n\n" + line("S2") + b"\n\n", ["S1", "S2"]),
    Case("gzip with two members", member(lines("S1")) + member(lines("S2")), ["S1", "S2"], filename="in.jsonl.gz"),
    Case("gzip inside gzip", member(member(lines("S1"))), refused="gzip inside gzip", filename="in.jsonl.gz"),
    Case("truncated gzip", member(lines(*[f"S{i}" for i in range(200)]))[:-30], refused="not a readable gzip",
         filename="in.jsonl.gz"),
    Case("gzip of a JSON array", member(b"[" + line("S1") + b"," + line("S2") + b"]"), ["S1", "S2"],
         filename="in.json.gz"),
    Case("lying extension: .json holding JSONL", lines("S1", "S2"), ["S1", "S2"], filename="in.json"),
    Case("lying extension: .jsonl holding gzip", member(lines("S1")), ["S1"], filename="in.jsonl"),
    Case("lying extension: .gz holding plain JSONL", lines("S1"), ["S1"], filename="in.jsonl.gz"),
    Case("UTF-16 with a byte-order mark", lines("S1").decode().encode("utf-16"), refused="UTF-16"),
    Case("a first line of garbage that starts like a UTF-16 BOM", b"\xff\xfe garbage\n" + lines("S2"), ["S2"], 1,
         {"parse"}),
    Case("UTF-16 without a byte-order mark", lines("S1").decode().encode("utf-16-le"), refused="UTF-16"),
    Case("pretty-printed single object", json.dumps(rec("S1"), indent=2).encode() + b"\n", ["S1"],
         filename="in.json"),
    Case("stream of pretty-printed objects, one malformed",
         json.dumps(rec("S1"), indent=2).encode() + b"\n{\n  \"shipment_id\": oops\n}\n"
         + json.dumps(rec("S3"), indent=2).encode() + b"\n", ["S1", "S3"], 1, {"parse"}, filename="in.json"),
    Case("JSON array with a malformed element", b"[" + line("S1") + b', {"shipment_id": tru}, ' + line("S3") + b"]",
         ["S1", "S3"], 1, {"parse"}, filename="in.json"),
    Case("truncated JSON array", b"[" + line("S1") + b"," + line("S2")[:-20], ["S1"], 1, {"parse"},
         message="input ends inside this element", filename="in.json"),
    Case("garbage after a JSON array", b"[" + line("S1") + b"] trailing", ["S1"], 1, {"parse"},
         message="after the end of the JSON array", filename="in.json"),
    Case("empty JSON array", b"[]", filename="in.json"),
    Case("array of scalars and arrays", b'[1, "x", [2], null]', quarantined=4, stages={"validate"},
         message="must be a JSON object", filename="in.json"),
    Case("two objects on one line", line("S1") + line("S2") + b"\n", quarantined=1, stages={"parse"}),
    # pyarrow reads newlines as white space: each of these has as many values as lines, not one per line
    Case("an object with a null after it, then one across two lines",
         line("S1") + b" null\n" + line("S2")[:-1] + b', "note":\n{"k": 1}}\n', quarantined=3, stages={"parse"}),
    Case("two objects on one line, then one across two lines",
         line("S1") + b"\t" + line("S2") + b"\n" + line("S3")[:-1] + b', "note":\n{"k": 1}}\n' + lines("S4"),
         ["S4"], 3, {"parse"}),
    Case("an object across two lines, the second starting with a brace",
         lines("S1") + line("S2")[:-1] + b', "note":\n{"k": 1}}\n' + lines("S3"), ["S1", "S3"], 2, {"parse"}),
    Case("a line starting with null, then an object across two lines",
         lines("S1") + b"null " + line("S2")[:-1] + b', "note":\n{"k": 1}}\n', ["S1"], 2, {"parse"}),
    Case("white space after a record", line("S1") + b" \t\n" + line("S2") + b" \r\n", ["S1", "S2"]),
    Case("braces inside a string", lines("S1") + line("S2", origin="a} {b}\t{") + b"\n", ["S1", "S2"]),
    # values
    Case("a JSON scalar", b"42\n", quarantined=1, stages={"validate"}, message="must be a JSON object"),
    Case("an empty object", b"{}\n", quarantined=1, stages={"validate"}, message="required"),
    Case("duplicate keys", b'{"shipment_id": "S1", "shipment_id": "S2", "record_type": "shipments", "event_time": '
         b'"2025-06-01T12:00:00Z", "origin": "A", "destination": "B", "carrier": "C", "weight_kg": 1}\n',
         quarantined=1, stages={"validate"}, message="$.shipment_id: a key that appears twice"),
    Case("a duplicate key silver drops", line("S1")[:-1] + b', "note": 1, "note": 2}\n', ["S1"]),
    Case("a kept key repeated at the end of the record", line("S1")[:-1] + b', "record_type": "shipments"}\n',
         quarantined=1, stages={"validate"}, message="$.record_type"),
    Case("NaN", line("S1")[:-1] + b', "score": NaN}\n' + lines("S2"), ["S2"], 1, {"parse"}),
    Case("Infinity", line("S1").replace(b"1.5", b"Infinity") + b"\n" + lines("S2"), ["S2"], 1, {"parse"}),
    Case("negative zero", line("S1", weight_kg=-0.0) + b"\n", quarantined=1, stages={"validate"}),  # exclusiveMinimum 0
    Case("integer beyond 64 bits where a string belongs", line("S1", origin=2**70) + b"\n", quarantined=1,
         stages={"validate"}),
    Case("NUL byte in a line", line("S1")[:10] + b"\x00" + line("S1")[10:] + b"\n" + lines("S2"), ["S2"], 1, {"parse"}),
    Case("raw control character in a string", line("S1").replace(b"Oslo", b"Os\x01lo") + b"\n", quarantined=1,
         stages={"parse"}),
    Case("escaped NUL in a string", line("S1", origin="Os\u0000lo") + b"\n", ["S1"]),
    Case("overlong UTF-8", line("S1").replace(b"Oslo", b"Os\xc0\xaflo") + b"\n" + lines("S2"), ["S2"], 1, {"parse"},
         message="UTF-8"),
    Case("invalid UTF-8", line("S1").replace(b"Oslo", b"Os\xfflo") + b"\n" + lines("S2"), ["S2"], 1, {"parse"}),
    Case("unicode text", line("S1", origin="Zürich 東京 🚚") + b"\n", ["S1"]),
    Case("extra fields of every JSON type", line("S1")[:-1] + b', "x": {"y": [1, null, true]}, "z": "s"}\n', ["S1"]),
    # time
    Case("+14:00 offset crossing the date line", line("S1", event_time="2025-06-02T05:00:00+14:00") + b"\n", ["S1"],
         dt={"2025-06-01"}),
    Case("-12:00 offset crossing the date line", line("S1", event_time="2025-06-01T20:00:00-12:00") + b"\n", ["S1"],
         dt={"2025-06-02"}),
    Case("nine-digit fraction", line("S1", event_time="2025-06-01T12:00:00.123456789Z") + b"\n", ["S1"]),
    Case("a date that does not exist", line("S1", event_time="2025-02-30T12:00:00Z") + b"\n", quarantined=1,
         stages={"validate"}),
    Case("event time in year 0", line("S1", event_time="0000-06-01T12:00:00Z") + b"\n" + lines("S2"), ["S2"], 1,
         message="event_time"),
    # keys (a file's bronze key is its path from the bronze/ folder)
    Case("a key with spaces", lines("S1"), ["S1"], filename="my file.jsonl"),
    Case("a key with unicode", lines("S1"), ["S1"], filename="ünïcødé 東京.jsonl"),
    Case("a key with +", lines("S1"), ["S1"], filename="a+b.jsonl"),
    Case("a key with %2F", lines("S1"), ["S1"], filename="a%2Fb.jsonl"),
    Case("a key with ..", lines("S1"), ["S1"], filename="..hidden...jsonl"),
    # routing
    Case("a record no dataset claims", b'{"record_type": "nobody", "x": 1}\n', quarantined=1, stages={"route"},
         folder="bronze/elsewhere"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_corpus(tmp_path: Path, case: Case) -> None:
    src = tmp_path / case.folder / case.filename
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_bytes(case.body)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["transform", str(src), "--out", str(out), "--json"])
    summary = json.loads(result.stdout)
    if case.refused:
        assert result.exit_code == 1, result.output
        [failed] = summary["failed"]
        assert case.refused in failed["error"], failed
        assert not (out / "silver").exists()  # nothing of a refused object lands
        [marker] = (out / "quarantine" / "_failed").glob("*.json")
        assert case.refused in json.loads(marker.read_text())["error"]
        return
    assert result.exit_code == 0, result.output
    silver = out / "silver" / "shipments"
    table = pads.dataset(silver, partitioning="hive").to_table() if silver.exists() else None
    ids = sorted(table.column("shipment_id").to_pylist()) if table is not None else []
    assert ids == sorted(case.written)
    if case.dt:
        assert {str(d) for d in table.column("dt").to_pylist()} == case.dt
    entries = [json.loads(x) for f in (out / "quarantine").rglob("*.jsonl") for x in f.read_text().splitlines()] \
        if (out / "quarantine").exists() else []
    assert len(entries) == case.quarantined, entries
    if case.stages:
        assert {e["stage"] for e in entries} == case.stages, entries
    if case.message:
        assert any(case.message in e["message"] or case.message in e["path"] for q in entries for e in q["errors"]), entries
    assert summary["records_in"] == len(case.written) + case.quarantined


def test_a_line_over_the_size_limit_is_one_reject_with_its_size_and_a_bounded_sample(tmp_path, monkeypatch):
    monkeypatch.setenv("ELT_MAX_LINE_BYTES", str(1 << 20))
    src = tmp_path / "bronze" / "shipments" / "in.jsonl"
    src.parent.mkdir(parents=True)
    garbage = b"x" * (3 << 20)  # a 3 MiB line: 3x the limit (the was 52 MB)
    src.write_bytes(lines("S1") + garbage + b"\n" + lines("S2"))
    result = CliRunner().invoke(main, ["transform", str(src), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    [entry] = [json.loads(x) for f in (tmp_path / "out" / "quarantine").rglob("*.jsonl") for x in f.read_text().splitlines()]
    assert entry["size"] == len(garbage) and entry["raw_truncated"] is True and len(entry["raw"]) <= 4096
    assert entry["line"] == 2 and entry["byte_offset"] == len(lines("S1"))
    assert "longer than max_line_bytes (1048576)" in entry["errors"][0]["message"]
    ids = pads.dataset(tmp_path / "out" / "silver" / "shipments", partitioning="hive").to_table().column("shipment_id")
    assert sorted(ids.to_pylist()) == ["S1", "S2"]


@pytest.mark.parametrize("stamp", ["2016-12-31T23:59:60Z", "1998-12-31T23:59:60+01:00"])
def test_a_leap_second_event_time_gets_the_reference_verdict(tmp_path, stamp):
    """RFC 3339 allows second 60; the pipeline and the SDK's reference verdict must agree on it."""
    ds = load_registry().dataset("shipments")
    body = line("S1", event_time=stamp)
    src = tmp_path / "bronze" / "shipments" / "in.jsonl"
    src.parent.mkdir(parents=True)
    src.write_bytes(body + b"\n")
    result = CliRunner().invoke(main, ["transform", str(src), "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["written"] == (1 if reference_verdict(ds, body) else 0)
    assert summary["written"] + summary["quarantined"] == 1
