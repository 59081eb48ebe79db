"""The columnar hot path's edges: fields the schema does not name, invalid UTF-8 spread over a
block, lines longer than pyarrow's read block, objects spanning days, the writer and parse
threads, and the transform path's promise not to import ``pyarrow.compute``."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from elt_sdk import kernels as k
from elt_sdk.batch import RawBlock, SourceRef
from elt_sdk.defaults import columnar
from elt_sdk.pipeline import Transformer, ahead
from elt_sdk.store import LocalStore
from elt_sdk.source import LocalSource
from elt_sdk.testing import reference_verdict, transform_lines

BASE = {"record_type": "shipments", "event_time": "2025-03-05T10:00:00Z", "shipment_id": "S", "origin": "A",
        "destination": "B", "carrier": "UPS", "weight_kg": 1.5}


def line(**changes) -> bytes:
    return json.dumps({**BASE, **changes}, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture
def shipments(registry):
    ds = registry.dataset("shipments")
    assert columnar.plan_for(ds) is not None
    return ds  # each Transformer keeps its own plans: every test starts with nothing learnt


def expect_verdicts(ds, lines, result) -> None:
    bad = [i + 1 for i, ln in enumerate(lines) if not reference_verdict(ds, ln)]
    assert [q["line"] for q in result.quarantine] == bad
    assert result.silver.num_rows == len(lines) - len(bad)


def test_fields_the_schema_does_not_name_are_ignored_but_hide_no_nan(registry, shipments):
    lines = [line(shipment_id=f"S{i}", note="free text", extra={"n": 1}) for i in range(200)]
    lines[57] = lines[57][:-1] + b',"score":NaN}'  # strict JSON refuses it; pyarrow would not
    lines[120] = lines[120][:-1] + b',"score":-Infinity}'
    first = Transformer(registry)
    result = transform_lines(registry, shipments, lines, transformer=first)
    expect_verdicts(shipments, lines, result)
    assert [q["line"] for q in result.quarantine] == [58, 121]
    assert all(q["stage"] == "parse" for q in result.quarantine)
    [plan] = first.plans.values()
    assert plan.extra_fields  # learnt from pyarrow's "unexpected field", by this Transformer only
    assert not columnar.plan_for(shipments).extra_fields
    # learnt in the middle of screening a block (a truncated line sends it there first)
    lines[10] = lines[10][:25]
    second = Transformer(registry)
    result = transform_lines(registry, shipments, lines, transformer=second)
    expect_verdicts(shipments, lines, result)
    assert [q["line"] for q in result.quarantine] == [11, 58, 121]
    assert [p.extra_fields for p in second.plans.values()] == [True]


def test_nan_or_infinity_in_an_unnamed_field_of_a_large_block(registry, shipments):
    """Blocks from LITERAL_SEARCH_MIN on look for NaN/Infinity with RE2, not ``in``."""
    lines = [line(shipment_id=f"S{i}", note="Nairobi \u00e9 Ice", extra={"n": i}) for i in range(3000)]
    assert sum(len(x) + 1 for x in lines) > 4 * columnar.LITERAL_SEARCH_MIN
    lines[1500] = lines[1500][:-1] + b',"score":NaN}'
    lines[-1] = lines[-1][:-1] + b',"score":Infinity}'
    transformer = Transformer(registry)
    transform_lines(registry, shipments, lines[:10], transformer=transformer)  # learns the unnamed fields
    result = transform_lines(registry, shipments, lines, transformer=transformer)
    expect_verdicts(shipments, lines, result)
    assert [q["line"] for q in result.quarantine] == [1501, 3000]


@pytest.mark.parametrize("size", [columnar.LITERAL_SEARCH_MIN - 1, columnar.LITERAL_SEARCH_MIN, 1 << 20])
def test_literal_search_agrees_with_in(size):
    filler = (b'{"city":"Nairobi","n":"Nan","i":"Infinit\xff\xfe"}\n' * (size // 40 + 1))[:size]
    for literal in ("NaN", "Infinity", "null"):
        assert not columnar._contains(filler, literal)
        for at in (0, size // 2, size - len(literal)):
            data = filler[:at] + literal.encode() + filler[at + len(literal):]
            assert len(data) == size and columnar._contains(data, literal), (literal, at)


def test_invalid_utf8_anywhere_in_a_large_block(registry, shipments):
    lines = [line(shipment_id=f"S{i}", origin="São Paulo") for i in range(3000)]  # > 64 KiB: several windows
    for i in (0, 411, 412, 1999, 2999):
        lines[i] = lines[i].replace(b"S\xc3\xa3o", b"S\xe3o")  # latin-1 bytes: not UTF-8
    result = transform_lines(registry, shipments, lines)
    expect_verdicts(shipments, lines, result)
    assert [q["line"] for q in result.quarantine] == [1, 412, 413, 2000, 3000]
    assert {q["raw_encoding"] for q in result.quarantine} == {"latin-1"}


def test_a_line_longer_than_a_read_block(registry, shipments):
    long = line(shipment_id="LONG", origin="x" * (columnar.MIN_READ_BLOCK * 3))
    lines = [line(shipment_id=f"S{i}") for i in range(50)] + [long] + [line(shipment_id=f"T{i}") for i in range(50)]
    result = transform_lines(registry, shipments, lines)
    assert result.quarantine == []
    assert result.silver.num_rows == 101
    assert max(len(v) for v in result.silver.column("origin").to_pylist()) == columnar.MIN_READ_BLOCK * 3


def test_an_object_over_many_days_keeps_row_order_within_each_day(registry, shipments, tmp_path):
    days = ["2025-03-07", "2025-03-05", "2025-03-06", "2025-03-05", "2025-03-07"]
    lines = [line(shipment_id=f"S{i:04d}", event_time=f"{days[i % 5]}T{i % 24:02d}:00:00Z") for i in range(500)]
    lines[3] = b'{"truncated'  # the screened path too
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    Transformer(registry, block_bytes=4096).transform_object(
        LocalSource.from_path(src, key="bronze/shipments/in.jsonl"), LocalStore(tmp_path / "out"), dataset="shipments")
    for day in sorted(set(days)):
        files = sorted((tmp_path / "out" / "silver" / "shipments" / f"dt={day}").glob("*.parquet"))
        assert len(files) == 1
        ids = pq.read_table(files[0]).column("shipment_id").to_pylist()
        want = [f"S{i:04d}" for i in range(500) if days[i % 5] == day and i != 3]
        assert ids == want


class FailingStore(LocalStore):
    def move_file(self, key: str, path: Path) -> None:
        raise OSError(f"disk full writing {key}")

    put_file = move_file


def test_a_failure_on_the_writer_thread_fails_the_object(registry, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(line(shipment_id=f"S{i}") for i in range(100)) + b"\n")
    transformer = Transformer(registry, max_rows_per_file=10)  # stages part files from the writer thread mid-object
    with pytest.raises(OSError, match="disk full writing _elt/staging/"):
        transformer.transform_object(LocalSource.from_path(src, key="bronze/shipments/in.jsonl"),
                                     FailingStore(tmp_path / "out"), dataset="shipments")
    assert not (tmp_path / "out" / "silver").exists()


def test_ahead_yields_in_order_and_stops_its_source_when_the_caller_fails():
    closed = []

    def source():
        try:
            yield from range(100)
        finally:
            closed.append(True)

    assert [r for _, r in ahead(lambda x: x * 2, range(5))] == [0, 2, 4, 6, 8]
    with pytest.raises(KeyError):
        for item, _ in ahead(lambda x: x, source()):
            if item == 3:
                raise KeyError(item)
    assert closed == [True]
    with pytest.raises(ZeroDivisionError):  # an error computing the next item reaches the caller
        list(ahead(lambda x: 1 // (x - 2), range(5)))


def test_positions_of_a_mask_without_chunks_are_none():
    """A table of no rows can have chunkless columns; pyarrow 17's indices_nonzero crashed the
    process on the mask the checks make of them (make test-lowest found it)."""
    assert k.indices(pa.chunked_array([], pa.bool_())) == []
    assert k.indices(pa.chunked_array([[False, True], [True]], pa.bool_())) == [1, 2]


def test_block_lines_locate_every_line():
    data = b'{"a":1}\r\n\n  {"b":2}\n{"c":3}'
    block = RawBlock(SourceRef("mem://x", "e"), data, first_lineno=10, first_offset=100)
    assert block.line_count == 4
    assert [block.line(i) for i in range(4)] == [b'{"a":1}', b"", b'  {"b":2}', b'{"c":3}'] == block.lines
    assert [block.offset(i) for i in range(4)] == [100, 109, 110, 120]
    assert block.line_array().to_pylist() == [b'{"a":1}\r\n', b"\n", b'  {"b":2}\n', b'{"c":3}\n']
    assert block.size == len(data) and len(block.data) == len(data) + 1  # a newline closes the last line


def test_bytes_read_is_the_object_size(registry, tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(line(shipment_id=f"S{i}") for i in range(300)))  # no newline at the end
    report = Transformer(registry, block_bytes=4096).transform_object(
        LocalSource.from_path(src, key="bronze/shipments/in.jsonl"), LocalStore(tmp_path / "out"), dataset="shipments")
    assert report.bytes_read == src.stat().st_size and report.totals().written == 300


def test_the_transform_path_never_imports_pyarrow_compute(tmp_path):
    """``import pyarrow.compute`` costs ~20 ms of every cold start; the transform path calls the
    kernels by name instead (``elt_sdk.kernels``)."""
    clean = [line(shipment_id=f"S{i}", event_time=f"2025-03-0{1 + i % 3}T10:00:00Z") for i in range(300)]
    dirty = clean[:100] + [b'{"trunc', line(weight_kg="12.5"), line(weight_kg=-1), b"\xff"] + clean[100:]
    for name, lines in (("clean", clean), ("dirty", dirty)):
        (tmp_path / f"{name}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    code = f"""
import sys
from pathlib import Path
from elt_sdk.aws import handlers
from elt_sdk.pipeline import Transformer
from elt_sdk.plugins import load_registry
from elt_sdk.store import LocalStore
from elt_sdk.source import LocalSource
t = Transformer(load_registry())
for name in ("clean", "dirty"):
    src = LocalSource.from_path(Path({str(tmp_path)!r}) / (name + ".jsonl"), key="bronze/shipments/x.jsonl")
    r = t.transform_object(src, LocalStore(Path({str(tmp_path)!r}) / "out" / name))
    print(name, r.totals().written, r.totals().quarantined)
print("pyarrow.compute" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[:3] == ["clean 300 0", "dirty 300 4", "False"]


def test_a_plugin_validator_sees_a_settled_batch(registry, shipments):
    """A columnar batch leaves its set-aside lines to settle(); the dict-based API settles first."""
    lines = [line(shipment_id="A"), b'{"truncated', line(shipment_id="B", weight_kg="heavy"), line(shipment_id="C")]
    block = RawBlock(SourceRef("mem://x", "e"), b"\n".join(lines))
    parsed = registry.hooks(shipments).elt_parse(dataset=shipments, block=block)
    assert parsed._pending is not None and parsed._table is not None
    assert [r["shipment_id"] for r in parsed.records] == ["A", "B", "C"]  # settles, then decodes
    assert [r.line for r in parsed.rejects] == [2] and parsed._pending is None
    assert parsed.table is None  # not every row was parsed columnar: plugins use records
    assert parsed.reject(1, [], "validate").line == 3 and len(parsed) == 3


def test_the_dt_of_a_utc_timestamp_is_its_utc_date_at_the_edges():
    """write_silver takes the day of a UTC timestamp through a time-zone-naive view (10x cheaper
    than converting through the zone): the same date as Python's, before 1970, on leap days, at
    the ends of years 1-9999 and for offsets that cross midnight."""
    import datetime as dt

    import pyarrow as pa

    from elt_sdk import kernels as k
    from elt_sdk.output import _wall_clock_if_utc

    stamps = ["1969-12-31T23:59:59.999999+00:00", "1970-01-01T00:00:00+00:00", "0001-01-01T00:00:00+00:00",
              "9999-12-31T23:59:59.999999+00:00", "1600-02-29T12:00:00+00:00", "1900-03-01T00:00:00+00:00",
              "2025-06-01T23:30:00-05:00", "2025-06-02T00:30:00+05:00"]
    column = pa.chunked_array([pa.array([dt.datetime.fromisoformat(s) for s in stamps[:4]], pa.timestamp("us", "UTC")),
                               pa.array([dt.datetime.fromisoformat(s) for s in stamps[4:]], pa.timestamp("us", "UTC"))])
    days = k.cast(_wall_clock_if_utc(column), pa.date32()).to_pylist()
    assert days == [dt.datetime.fromisoformat(s).astimezone(dt.timezone.utc).date() for s in stamps]
    assert _wall_clock_if_utc(column).type == pa.timestamp("us")
    other = pa.chunked_array([pa.array([0], pa.timestamp("us", "Europe/Oslo"))])
    assert _wall_clock_if_utc(other) is other  # another zone's wall clock is not the UTC date


def test_silver_files_keep_dictionaries_only_for_columns_that_repeat(registry, tmp_path):
    """A column of mostly distinct values (an id, a precise time) is written plain, one that
    repeats keeps its dictionary, and nested columns keep theirs: judged on a file's first rows."""
    import pyarrow as pa

    from elt_sdk import parquet_encoding

    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(line(shipment_id=f"S{i}", carrier=["DHL", "UPS"][i % 2], weight_kg=1 + i % 7)
                               for i in range(2000)) + b"\n")
    Transformer(registry).transform_object(LocalSource.from_path(src, key="bronze/shipments/in.jsonl"),
                                           LocalStore(tmp_path / "out"), dataset="shipments")
    [path] = (tmp_path / "out" / "silver" / "shipments").rglob("*.parquet")
    group = pq.ParquetFile(path).metadata.row_group(0)
    dictionary = {group.column(i).path_in_schema: "RLE_DICTIONARY" in group.column(i).encodings
                  for i in range(group.num_columns)}
    assert dictionary == {"record_type": True, "event_time": True, "shipment_id": False, "origin": True,
                          "destination": True, "carrier": True, "weight_kg": True}

    nested = pa.schema([("id", pa.string()), ("tag", pa.string()), ("s", pa.struct([("name", pa.string())])),
                        ("items", pa.list_(pa.struct([("code", pa.string())])))])
    rows = pa.table({"id": [f"x{i}" for i in range(1000)], "tag": ["a", "b"] * 500,
                     "s": [{"name": f"n{i}"} for i in range(1000)], "items": [[{"code": f"c{i}"}] for i in range(1000)]},
                    schema=nested)
    assert parquet_encoding.dictionary_columns(nested, rows) == ["tag", "s.name", "items.list.element.code"]
    dotted = pa.schema([("a", pa.string()), ("a.b", pa.string())])  # a leaf is its own field's, dots or not
    assert parquet_encoding.dictionary_columns(dotted, pa.table({"a": ["x"] * 1000, "a.b": [f"{i}" for i in range(1000)]},
                                                                schema=dotted)) == ["a"]
    assert parquet_encoding.dictionary_columns(dotted, pa.table({"a": [f"{i}" for i in range(1000)], "a.b": ["x"] * 1000},
                                                                schema=dotted)) == ["a.b"]
    assert parquet_encoding.dictionary_columns(nested, rows.slice(0, 100)) is True  # too few rows to judge


def test_crlf_lines_and_trailing_white_space_take_the_fast_path_blank_lines_the_screens(registry):
    """One object per line is proved without counting ``}\\n{``: CRLF line ends and white space
    after a record keep a block on pyarrow's direct read; a blank line sends it to the screens."""
    from elt_sdk.defaults.parse import decode_rows

    ds = registry.dataset("shipments")
    records = [line(shipment_id=f"S{i}") for i in range(50)]
    for body, direct in ((b"\r\n".join(records) + b"\r\n", True), (b" \n".join(records) + b"\n", True),
                         (b"\n".join(records) + b"\n", True), (b"\n\n".join(records) + b"\n", False)):
        plan = columnar.ColumnarPlan(ds, columnar._build(ds))  # a fresh plan: no hint from the case before
        parsed = plan.parse(RawBlock(SourceRef("mem://x", "e"), body), decode_rows)
        assert (parsed._pending is None) == direct, body[:200]
        parsed._settle()
        assert len(parsed.rows) == 50 and parsed._table.num_rows == 50
