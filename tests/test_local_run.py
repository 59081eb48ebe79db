"""``elt-sdk local run``: the whole pipeline on the embedded endpoint, through the CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from elt_sdk.settings import Settings, SettingsError


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "elt_sdk.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def test_local_run_on_generated_events_matches_the_input(tmp_path):
    proc = cli("local", "run", "--records", "400", "--workers", "3", "--out", "out", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    summary = json.loads(proc.stdout)
    assert summary["matches_expected"] is True
    assert summary["datasets"] == summary["expected"]
    assert set(summary["datasets"]) == {"shipments", "tracking_events", "invoice_lines"}
    assert summary["skipped"] == 1  # the duplicate S3 event
    assert summary["dlq"] == 1  # the poison object
    assert summary["objects"] == 11 and summary["ingest"]["enqueued"] == 11
    out = tmp_path / "out"
    dlq = [json.loads(line) for line in (out / "dlq" / "messages.jsonl").read_text().splitlines()]
    assert "poison" in json.loads(dlq[0]["body"])["key"]
    # DuckDB reads the copied silver folders with hive partitioning: dt is a DATE
    con = duckdb.connect()
    total = 0
    for name, expected in summary["expected"].items():
        rel = f"read_parquet('{out}/silver/{name}/*/*.parquet', hive_partitioning = 1)"
        n, bad_dt = con.execute(f"SELECT count(*), count(*) FILTER (WHERE dt <> CAST(timezone('UTC', event_time) AS DATE)) FROM {rel}").fetchone()
        assert n == expected["written"] and bad_dt == 0
        total += n
    assert total == summary["written"]
    assert (out / "logs" / "pipeline.jsonl").stat().st_size > 0


def test_local_run_on_given_files_and_bad_path(tmp_path):
    folder = tmp_path / "data" / "bronze" / "tracking_events"
    folder.mkdir(parents=True)
    gen = cli("gen", "tracking_events", "--count", "250", "--seed", "3", "--out", str(folder / "t.jsonl"), cwd=tmp_path)
    assert gen.returncode == 0, gen.stderr
    proc = cli("local", "run", "data", "--out", "o", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["datasets"] == {"tracking_events": {"records_in": 250, "written": 250, "quarantined": 0}}
    # what the run asked of AWS, as the endpoint counted it: one object's claim and completion,
    # its upload, the transform's read of it, and at least its pending manifest, file and commit
    requests = summary["requests"]["by_operation"]
    assert requests["dynamodb PutItem"] == 2 and requests["s3 GET object"] >= 1 and requests["s3 PUT object"] >= 4
    assert summary["requests"]["total"] == sum(requests.values())
    # the plain ones took the endpoint's fast path: the claim, the completion, the upload, the read
    fast = summary["requests"]["fast_path"]
    assert fast["dynamodb PutItem"] == 2 and fast["s3 GET object"] >= 1 and fast["s3 PUT object"] >= 4
    assert summary["cpu_s"]["pipeline"] > 0 and summary["cpu_s"]["endpoint"] > 0
    bad = cli("local", "run", "nowhere", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == "Error: no such file or folder: nowhere"


def test_compact_and_repair_work_on_what_local_run_wrote(tmp_path):
    folder = tmp_path / "data" / "bronze" / "shipments"
    folder.mkdir(parents=True)
    for n in range(3):  # three objects, one day: three small files
        lines = [json.dumps({"record_type": "shipments", "event_time": "2025-06-01T12:00:00Z",
                             "shipment_id": f"S{n}-{i}", "origin": "A", "destination": "B", "carrier": "C",
                             "weight_kg": 1.5}) for i in range(20)]
        (folder / f"f{n}.jsonl").write_text("\n".join(lines) + "\n")
    assert cli("local", "run", "data", "--out", "o", cwd=tmp_path).returncode == 0
    compact = cli("compact", "--silver", "o", "--dataset", "shipments", "--dt", "2025-06-01", "--in-place", "--json",
                  cwd=tmp_path)
    assert compact.returncode == 0, compact.stderr
    report = json.loads(compact.stdout)
    assert (report["files_before"], report["files_after"], report["rows"]) == (3, 1, 60)
    repair = cli("repair", "--silver", "o", "--json", cwd=tmp_path)
    assert repair.returncode == 0 and json.loads(repair.stdout)["manifests"] == 0


def test_settings_precedence_file_env_flags(tmp_path):
    cfg = tmp_path / "elt-sdk.toml"
    cfg.write_text('[pipeline]\nbatch_size = 7\nmax_receive_count = 3\ntransform_timeout_s = 100\n')
    s = Settings.load(cfg, env={"ELT_MAX_RECEIVE_COUNT": "4"}, batch_size=None)
    assert (s.batch_size, s.max_receive_count, s.visibility_timeout_s) == (7, 4, 600)
    s = Settings.load(cfg, env={"ELT_MAX_RECEIVE_COUNT": "4"}, max_receive_count=9)
    assert s.max_receive_count == 9
    assert Settings.load(cfg, env={"ELT_GLUE_ENABLED": "yes"}).glue_enabled is True
    with pytest.raises(SettingsError, match=r"setting batch_size = 'ten' \(from environment ELT_BATCH_SIZE\): expected int from 1 to 10"):
        Settings.load(cfg, env={"ELT_BATCH_SIZE": "ten"})
    cfg.write_text('[pipeline]\nbach_size = 7\n')
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.load(cfg, env={})


def test_bad_config_file_is_one_line_exit_2(tmp_path):
    (tmp_path / "elt-sdk.toml").write_text("[pipeline]\nbatch_size = \n")
    proc = cli("local", "run", "--records", "5", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("Error: elt-sdk.toml: not valid TOML")


def test_local_run_progress_counts_objects_not_s3_test_events(tmp_path):
    """S3 sends a test event when the notification is set up: ingest handles it, but it names no
    object, so progress never shows more objects ingested than uploaded (13/12)."""
    import io

    from elt_sdk.local.runtime import LocalRuntime

    files = []
    for n in range(2):
        f = tmp_path / f"s{n}.jsonl"
        f.write_text(json.dumps({"record_type": "shipments", "event_time": "2025-06-01T00:00:00Z", "shipment_id": f"S{n}",
                                 "origin": "Oslo", "destination": "Rome", "carrier": "DHL", "weight_kg": 1.0}) + "\n")
        files.append(f)
    seen = []
    with LocalRuntime(Settings(name_prefix="progress"), log_stream=io.StringIO()) as rt:
        for f in files:
            rt.upload(f, f"bronze/shipments/{f.name}")
        rt.wait(120, seen.append)
        assert rt.ingest.stats.invocations == 3  # the test event, and one per object
    assert seen[-1]["ingested"] == seen[-1]["objects"] == 2
    assert all(p["ingested"] <= p["objects"] for p in seen)


@pytest.mark.slow
def test_the_readmes_demo_summary_is_what_make_demo_prints(tmp_path):
    """``make demo`` is ``local run --out elt-out`` then ``query --silver elt-out``: the summary
    the README shows must be the one a new user sees (all but the run's duration)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("It prints:\n\n```\n", 1)[1].split("```", 1)[0].splitlines()
    run = cli("local", "run", "--out", "elt-out", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    shown = cli("query", "--silver", "elt-out", cwd=tmp_path)
    printed = run.stderr.splitlines()[:1] + run.stdout.splitlines() + shown.stdout.splitlines()
    expected = [line for line in block if line != "..."]
    strip = lambda line: line.rsplit(" in ", 1)[0] if line.startswith("output:") else line  # noqa: E731
    assert [strip(x) for x in printed[:len(expected)]] == [strip(x) for x in expected]


def test_results_are_copied_out_by_gets_when_the_endpoint_cannot_stream_them(tmp_path, monkeypatch):
    """The archive stream cut short (or not served): local run falls back to one GET per object
    and its output is the same."""
    from elt_sdk.local.endpoint import EmbeddedEndpoint
    from elt_sdk.local.runtime import LocalPipeline, Upload

    def broken(self, bucket, prefixes, dest):
        raise OSError("the archive of the bucket ended early: unexpected end of data")

    monkeypatch.setattr(EmbeddedEndpoint, "download", broken)
    uploads = []
    for i in range(3):
        path = tmp_path / f"in-{i}.jsonl"
        path.write_text("".join(json.dumps({
            "record_type": "shipments", "event_time": f"2025-06-0{1 + n % 2}T10:00:00Z", "shipment_id": f"S{i}-{n}",
            "origin": "Oslo", "destination": "Rome", "carrier": "DHL", "weight_kg": 1.5}) + "\n" for n in range(4)))
        uploads.append(Upload(path, f"bronze/shipments/in-{i}.jsonl"))
    result = LocalPipeline(Settings(name_prefix="fallback"), out=tmp_path / "out").run(uploads)
    assert result.datasets["shipments"] == {"records_in": 12, "written": 12, "quarantined": 0}
    out = tmp_path / "out"
    assert {p.parent.name for p in (out / "silver" / "shipments").rglob("*.parquet")} == {"dt=2025-06-01", "dt=2025-06-02"}
    assert len(list((out / "_elt" / "objects").glob("*.json"))) == 3  # the commit records too


def test_each_function_runs_in_processes_of_its_own_and_reports_to_the_runtime(tmp_path):
    """Ingest in one process, transform in two sharing the pollers, as Lambda runs each function
    apart from the caller: their counts, results and logs reach the runtime, and stopping ends
    every one of them."""
    import io
    import os

    from elt_sdk.local.runtime import LocalRuntime

    log = io.StringIO()
    with LocalRuntime(Settings(name_prefix="apart"), workers=3, log_stream=log) as rt:
        for n in range(4):
            f = tmp_path / f"s{n}.jsonl"
            f.write_text(json.dumps({"record_type": "shipments", "event_time": "2025-06-01T00:00:00Z",
                                     "shipment_id": f"S{n}", "origin": "Oslo", "destination": "Rome", "carrier": "DHL",
                                     "weight_kg": 1.0}) + "\n")
            rt.upload(f, f"bronze/shipments/{f.name}")
        rt.wait(120)
        procs = rt.ingest.procs + rt.esm.procs
        assert len(rt.ingest.procs) == 1 and len(rt.esm.procs) == 2
        assert os.getpid() not in {p.pid for p in procs} and all(p.poll() is None for p in procs)
        rt.stop_functions()
        assert rt.esm.stats.succeeded == 4 and rt.esm.stats.errors == []
        assert sum(r.get("objects", 0) for r in rt.ingest.stats.results) == 4
        assert set(rt.ingest.delivered) == {f"bronze/shipments/s{n}.jsonl" for n in range(4)}
        assert rt.esm.cpu_s > 0 and rt.ingest.cpu_s > 0
    assert all(p.poll() is not None for p in procs)
    messages = [json.loads(line).get("message") for line in log.getvalue().splitlines()]
    assert "object enqueued" in messages, messages[:20]


CRASHY = """
import os

from elt_sdk import Dataset, hookimpl

DATASET = Dataset(name="crashy", json_schema={
    "type": "object", "required": ["event_time", "n"],
    "properties": {"event_time": {"type": "string", "format": "date-time"}, "n": {"type": "integer"}}})


@hookimpl
def elt_datasets():
    return [DATASET]


@hookimpl
def elt_parse(dataset, block):
    if b"POISON" in bytes(block.data):
        os.abort()  # a native library's crash: no exception, the process is gone
"""


def test_a_function_process_that_dies_is_replaced_and_the_object_that_kills_it_ends_in_the_dlq(tmp_path, monkeypatch,
                                                                                              fake_dist):
    """A plugin whose parse crashes the process on one object (as a native library's bug does):
    like Lambda, the local runtime fails that invocation and goes on in a new process; the
    object's message comes back until SQS moves it to the DLQ, and its neighbours land."""
    import io

    from elt_sdk.local.esm import queue_depth
    from elt_sdk.local.runtime import LocalRuntime

    make, site = fake_dist
    make("fake_crashy", CRASHY)
    monkeypatch.setenv("PYTHONPATH", str(site))  # the function processes find the plugin as an installed one
    log = io.StringIO()
    settings = Settings(name_prefix="crashy", batch_size=1, max_receive_count=2)
    with LocalRuntime(settings, workers=2, log_stream=log) as rt:
        for name, note in (("a", "fine"), ("poison", "POISON"), ("b", "fine")):
            f = tmp_path / f"{name}.jsonl"
            f.write_text(json.dumps({"event_time": "2025-06-01T00:00:00Z", "n": 1, "note": note}) + "\n")
            rt.upload(f, f"bronze/crashy/{f.name}")
        rt.wait(180)
        sqs, s3 = rt.endpoint.client("sqs"), rt.endpoint.client("s3")
        assert rt.error is None
        assert queue_depth(sqs, rt.resources.dlq_url) == 1
        [dead] = sqs.receive_message(QueueUrl=rt.resources.dlq_url)["Messages"]
        assert json.loads(dead["Body"])["key"] == "bronze/crashy/poison.jsonl"
        silver = [o["Key"] for o in s3.list_objects_v2(Bucket=rt.resources.silver_bucket,
                                                          Prefix="silver/crashy/").get("Contents", [])]
        assert len(silver) == 2
        assert rt.esm.crashes == 2  # one per receive of the poison message
        rt.stop_functions()
        assert rt.esm.stats.succeeded == 2 and rt.esm.stats.failed == 2
    died = [json.loads(line) for line in log.getvalue().splitlines() if "process died" in line]
    assert len(died) == 2 and all(d["exit_code"] == -6 and "1 made visible again" in d["message"] for d in died)


def test_a_function_whose_pollers_fail_is_the_runtimes_error():
    from elt_sdk.local.endpoint import EmbeddedEndpoint
    from elt_sdk.local.function import TRANSFORM, FunctionProcesses, FunctionSpec

    with EmbeddedEndpoint(own_process=True) as ep:
        fn = FunctionProcesses(FunctionSpec(TRANSFORM, f"{ep.url}/123456789012/no-such-queue", "t", 30, "us-east-2"))
        assert fn.join(60)
    assert isinstance(fn.error, RuntimeError) and "transform" in str(fn.error) and "QueueDoesNotExist" in str(fn.error)
