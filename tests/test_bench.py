"""``elt-sdk bench`` as a smoke test: it runs every contender and reports what it measured.
Nothing here asserts a timing (benchmarks report; they never pass or fail on speed)."""
from __future__ import annotations

import json

from click.testing import CliRunner

from elt_sdk.cli import main


def test_bench_reports_every_contender_on_both_inputs():
    res = CliRunner().invoke(main, ["bench", "--records", "2000", "--repeat", "1", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    got = {(r["contender"], r["input"]): r for r in report["results"]}
    assert set(got) == {("elt-sdk", "clean"), ("pyarrow-native", "clean"), ("per-record-python", "clean"),
                        ("elt-sdk", "invalid"), ("per-record-python", "invalid")}  # pyarrow cannot read bad lines
    assert got[("pyarrow-native", "clean")]["vs_pyarrow_native"] == 1.0
    for r in got.values():
        assert r["records"] == 2000 and r["bytes"] > 2000 * 100
        assert len(r["seconds"]) == 1 and r["records_per_s"] > 0 and r["vs_pyarrow_native"] > 0
        assert r["peak_rss_mib"] > 50  # pyarrow alone is more than that: a real process was measured
    assert got[("elt-sdk", "invalid")]["bytes"] != got[("elt-sdk", "clean")]["bytes"]
    imp = report["import"]
    assert imp["handler_s"] > imp["pyarrow_parquet_s"] > 0  # the handler imports pyarrow.parquet and more
    assert report["invalid_rate"] == 0.02 and report["cpus"] >= 1


def test_bench_table_and_unknown_dataset():
    res = CliRunner().invoke(main, ["bench", "--records", "1000", "--repeat", "1", "--invalid-rate", "0"])
    assert res.exit_code == 0, res.output
    assert "vs pyarrow-native" in res.stdout and "cold import: transform handler" in res.stdout
    rows = [line.split() for line in res.stdout.split("cold import")[0].splitlines()[2:] if line.strip()]
    assert sorted(row[:2] for row in rows) == [["elt-sdk", "clean"], ["per-record-python", "clean"],
                                               ["pyarrow-native", "clean"]]  # no bad-line input was asked for
    res = CliRunner().invoke(main, ["bench", "--dataset", "nope"])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1 and "nope" in res.stderr


def test_bench_peers_run_on_the_clean_input_pinned_to_one_core():
    from elt_sdk import bench

    res = CliRunner().invoke(main, ["bench", "--records", "1000", "--repeat", "1", "--peers", "--cpus", "1",
                                    "--invalid-rate", "0.02", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    peers = bench.available_peers()
    assert "duckdb" in peers  # the local extra brings it
    got = {(r["contender"], r["input"]) for r in report["results"]}
    assert {(p, "clean") for p in peers} <= got and not {(p, "invalid") for p in peers} & got
    assert report["cpus"] == 1


def test_bench_many_objects_reports_the_local_runs_own_account():
    res = CliRunner().invoke(main, ["bench", "--objects", "3", "--records", "10", "--repeat", "1", "--json"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    many = json.loads(res.stdout)
    assert many["objects"] == 3 and many["transform_s"] > 0 and many["local_run_s"] > 0
    assert many["local_run_requests"]["dynamodb PutItem"] == 6  # each object claimed and completed once
    assert many["local_run_requests_per_object"] >= 8  # an upload, 3 for ingest, 4 for the transform
    cpu = many["local_run_cpu_s"]
    assert set(cpu) == {"pipeline", "endpoint"} and all(v > 0 for v in cpu.values())
    assert abs(many["cpu_bound_s"] - sum(cpu.values()) / many["cpus"]) < 0.01
