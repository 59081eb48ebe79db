"""Operating a stack from the command line, end to end, on the embedded endpoint: every step is
an ``elt-sdk`` command run as a user runs it (a subprocess in the stack's folder)."""
from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

from elt_sdk import faults


class Ran:
    """What a command did: exit code, stdout, stderr (as ``subprocess.CompletedProcess`` has them)."""

    def __init__(self, returncode: int, stdout: str, stderr: str, error: BaseException | None = None):
        self.returncode, self.stdout, self.stderr, self.error = returncode, stdout, stderr, error


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, stdin: str | None = None,
        process: bool = False) -> Ran:
    """Run ``elt-sdk ARGS`` in folder ``cwd``: in this process through click's runner (fast), or
    as its own process (``process``: when it must be able to die)."""
    if process:
        p = subprocess.run([sys.executable, "-m", "elt_sdk.cli", *args], cwd=cwd, capture_output=True, text=True,
                           timeout=timeout, env={**os.environ, **(env or {})}, input=stdin)
        return Ran(p.returncode, p.stdout, p.stderr)
    from click.testing import CliRunner

    from elt_sdk.cli import main

    with contextlib.chdir(cwd):
        result = CliRunner().invoke(main, list(args), input=stdin, env=env)
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    return Ran(result.exit_code, result.stdout, result.stderr, error)


def ok(proc: Ran) -> Ran:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}\n" \
                                 + "".join(traceback.format_exception(proc.error) if proc.error else [])
    return proc


def js(proc: Ran):  # noqa: ANN201
    return json.loads(ok(proc).stdout)


def gen(folder: Path, dataset: str, name: str, count: int, seed: int, invalid_rate: float = 0.02) -> dict:
    path = folder / "bronze" / dataset / name
    path.parent.mkdir(parents=True, exist_ok=True)
    proc = ok(cli("gen", dataset, "--count", str(count), "--seed", str(seed), "--invalid-rate", str(invalid_rate),
                  "--out", str(path), cwd=folder))
    return json.loads(proc.stderr.strip().splitlines()[-1])


def shipment(i: int, day: str, shipment_id: str | None = None) -> str:
    return json.dumps({"record_type": "shipments", "event_time": f"{day}T10:{i % 60:02d}:00Z",
                       "shipment_id": shipment_id or f"SHP-{i:08d}", "origin": "Oslo", "destination": "Rome",
                       "carrier": "DHL", "weight_kg": 1.0 + i}) + "\n"


@pytest.fixture
def stack(tmp_path):
    """A local stack running in ``tmp_path`` (detached), stopped at the end whatever happens."""
    up = js(cli("local", "up", "--detach", "--json", cwd=tmp_path))
    try:
        yield tmp_path, up
    finally:
        if (tmp_path / ".elt-local" / "state.json").exists():
            cli("local", "down", cwd=tmp_path)
        try:  # never leave the process behind (it is ours: its pid is in the state we were given)
            os.kill(up["pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


def drained(folder: Path, timeout: int = 120) -> dict:
    status = js(cli("status", "--wait", str(timeout), "--json", cwd=folder))
    for key in ("queue_depth", "in_flight", "dlq_depth"):
        assert isinstance(status[key], int)
    assert status["drained"] and status["queue_depth"] == 0 and status["in_flight"] == 0
    return status


def count(folder: Path, sql: str) -> int:
    [row] = js(cli("query", "--json", sql, cwd=folder))
    return next(iter(row.values()))


@pytest.mark.slow
def test_operate_a_local_stack_from_the_command_line(stack):
    folder, up = stack
    state = json.loads((folder / ".elt-local" / "state.json").read_text())
    assert state["pid"] == up["pid"] and state["endpoint_url"].startswith("http://127.0.0.1:")
    assert js(cli("local", "status", "--json", cwd=folder))["running"] is True
    again = cli("local", "up", cwd=folder)
    assert again.returncode == 2 and "already running" in again.stderr

    # put -> status drains -> query counts exact
    data = folder / "data"
    stats = [gen(data, "shipments", f"s{i}.jsonl", n, seed=i) for i, n in enumerate((400, 300, 250))]
    tracking = gen(data, "tracking_events", "t.jsonl", 200, seed=9)
    put = js(cli("put", "data", "--json", cwd=folder))
    assert sorted(u["key"] for u in put["uploaded"]) == ["bronze/shipments/s0.jsonl", "bronze/shipments/s1.jsonl",
                                                        "bronze/shipments/s2.jsonl", "bronze/tracking_events/t.jsonl"]
    status = drained(folder)
    valid = sum(s["valid"] for s in stats)
    bad = sum(s["malformed"] + s["schema_invalid"] for s in stats)
    assert status["datasets"]["shipments"]["written"] == valid
    assert status["datasets"]["shipments"]["quarantined"] == bad
    assert status["datasets"]["tracking_events"]["written"] == tracking["valid"]
    assert status["objects"]["transformed"] == 4 and status["objects"]["ingested"]["completed"] == 4
    assert status["datasets"]["shipments"]["quarantine_ratio"] == round(bad / (valid + bad), 4)
    assert count(folder, "SELECT count(*) FROM shipments") == valid
    assert count(folder, "SELECT count(DISTINCT shipment_id) FROM shipments") == valid  # no row twice
    assert count(folder, "SELECT count(*) FROM tracking_events") == tracking["valid"]
    again = js(cli("put", "--dataset", "tracking_events", "data/bronze/tracking_events/t.jsonl", "--json", cwd=folder))
    assert [u["key"] for u in again["uploaded"]] == ["bronze/tracking_events/t.jsonl"]  # the same object, uploaded again
    drained(folder)
    assert count(folder, "SELECT count(*) FROM tracking_events") == tracking["valid"]
    # the reference's three Athena queries, as written but for the table
    from elt_sdk.query import REFERENCE_QUERIES
    results = [js(cli("query", "--json", sql.format(table='"elt_sdk_silver".shipments'), cwd=folder))
               for _, sql in REFERENCE_QUERIES]
    assert len(results[0]) == 20 and set(results[0][0]) == {"dt", "shipment_id", "origin", "destination", "carrier",
                                                            "weight_kg", "event_time"}
    assert sum(r["rows"] for r in results[1]) == valid
    assert [r["dt"] for r in results[2]] == [r["dt"] for r in results[1]]
    csv_out = ok(cli("query", "--csv", "SELECT dt, count(*) AS n FROM shipments GROUP BY dt ORDER BY dt", cwd=folder)).stdout
    assert csv_out.splitlines()[0] == "dt,n" and sum(int(line.split(",")[1]) for line in csv_out.splitlines()[1:]) == valid
    snapshot = js(cli("query", "--json", "SELECT * FROM shipments ORDER BY ALL", cwd=folder))

    # replay, both ways: the same rows, not one more
    dry = js(cli("replay", "--dataset", "shipments", "--last", "1h", "--dry-run", "--json", cwd=folder))
    assert dry["objects"] == 3 and all(i["committed"] for i in dry["items"])
    copied = js(cli("replay", "--dataset", "shipments", "--last", "1h", "--json", cwd=folder))
    assert copied["copied"] == 3 and copied["dest_prefix"].startswith("bronze/replay/")
    drained(folder)
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    sent = js(cli("replay", "--dataset", "shipments", "--since", since, "--mode", "sqs", "--json", cwd=folder))
    assert sent["sent"] == 3 and sent["messages"] == 3
    status = drained(folder)
    assert js(cli("query", "--json", "SELECT * FROM shipments ORDER BY ALL", cwd=folder)) == snapshot
    assert status["datasets"]["shipments"]["written"] == valid

    # a poison object lands in the DLQ; redrive moves every message back, none lost
    poison = folder / "poison" / "bronze" / "shipments"
    poison.mkdir(parents=True)
    for name in ("p1.jsonl.gz", "p2.jsonl.gz"):
        (poison / name).write_bytes(b"\x1f\x8b\x08\x00 this is not gzip")
    ok(cli("put", "poison", cwd=folder))
    status = drained(folder)
    assert status["dlq_depth"] == 2
    assert any("gzip" in (e["error"] or "") for e in status["errors"])
    listed = js(cli("dlq", "list", "--json", cwd=folder))
    assert sorted(m["key"] for m in listed) == ["bronze/shipments/p1.jsonl.gz", "bronze/shipments/p2.jsonl.gz"]
    assert all("gzip" in m["error"] for m in listed)
    shown = js(cli("dlq", "show", listed[0]["message_id"][:12], cwd=folder))
    assert shown["body"]["key"] == listed[0]["key"] and shown["message_attributes"]["elt_error"] == listed[0]["error"]
    moved = js(cli("dlq", "redrive", "--json", cwd=folder))
    assert (moved["moved"], moved["dlq_before"], moved["failed"]) == (2, 2, 0)
    drained(folder)  # the poison fails again at once: back in the DLQ, both, and nothing else
    again = js(cli("dlq", "list", "--json", cwd=folder))
    assert sorted(m["key"] for m in again) == sorted(m["key"] for m in listed)
    assert not {m["message_id"] for m in again} & {m["message_id"] for m in listed}
    assert count(folder, "SELECT count(*) FROM shipments") == valid

    # invoke a handler on an event file, as Lambda would
    event = ok(cli("event", "s3-put", "--key", "bronze/shipments/s0.jsonl", cwd=folder)).stdout
    assert json.loads(event)["Records"][0]["s3"]["object"]["eTag"]
    first = js(cli("invoke", "ingest", "--event", "-", cwd=folder, stdin=event))
    second = js(cli("invoke", "ingest", "--event", "-", cwd=folder, stdin=event))
    assert (first["enqueued"], second["skipped"]) == (1, 1)  # the same event twice: ingested once
    drained(folder)
    sqs_event = folder / "sqs.json"
    sqs_event.write_text(ok(cli("event", "sqs", "--key", "bronze/shipments/s1.jsonl", "--force", cwd=folder)).stdout)
    assert js(cli("invoke", "transform", "--event", str(sqs_event), cwd=folder)) == {"batchItemFailures": []}
    assert count(folder, "SELECT count(*) FROM shipments") == valid

    # compaction in place: fewer files, the same rows; interrupted, then finished by a re-run
    days = js(cli("query", "--json", "SELECT dt, count(*) AS n FROM shipments GROUP BY dt ORDER BY n DESC", cwd=folder))
    day, day_rows = days[0]["dt"], days[0]["n"]
    rows_of_day = f"SELECT * FROM shipments WHERE dt = DATE '{day}' ORDER BY ALL"
    before = js(cli("query", "--json", rows_of_day, cwd=folder))
    out_of_place = js(cli("compact", "--dataset", "shipments", "--dt", day, "--json", cwd=folder))
    assert out_of_place["rows"] == day_rows and out_of_place["keys"][0].startswith(f"silver_compacted/shipments/dt={day}/")
    crashed = cli("compact", "--dataset", "shipments", "--dt", day, "--in-place", cwd=folder,
                  env={faults.ENV: "compact:promoted"}, process=True)
    assert crashed.returncode == faults.EXIT_CODE
    finished = js(cli("compact", "--dataset", "shipments", "--dt", day, "--in-place", "--json", cwd=folder))
    assert finished["recovered"].startswith("finished run")
    assert finished["files_before"] > finished["files_after"] == 1
    assert js(cli("query", "--json", rows_of_day, cwd=folder)) == before
    assert js(cli("compact", "--dataset", "shipments", "--dt", day, "--in-place", "--json", cwd=folder))["nothing_to_do"]
    # an object whose rows are in the compacted file gets a new version: its old rows leave
    fresh = gen(data, "shipments", "s0.jsonl", 120, seed=100)
    ok(cli("put", "data/bronze/shipments/s0.jsonl", cwd=folder))
    drained(folder)
    valid_now = valid - stats[0]["valid"] + fresh["valid"]
    assert count(folder, "SELECT count(*) FROM shipments") == valid_now
    assert count(folder, "SELECT count(DISTINCT shipment_id) FROM shipments") == valid_now

    # the quality gate: passes on good data, fails on a partition with a duplicate shipment_id
    good = cli("dq", "check", "--dataset", "shipments", "--dt", day, cwd=folder)
    assert ok(good).stdout.strip().splitlines()[-1].startswith(f"shipments dt={day}: ")
    dup = folder / "dup" / "bronze" / "shipments"
    dup.mkdir(parents=True)
    (dup / "dup.jsonl").write_text("".join(shipment(i, "2031-01-01", "SHP-DUPLICATE") for i in range(5)))
    ok(cli("put", "dup", cwd=folder))
    drained(folder)
    failed = cli("dq", "check", "--dataset", "shipments", "--dt", "2031-01-01", cwd=folder)
    assert failed.returncode == 1
    assert "quality gate failed for shipments dt=2031-01-01: unique(shipment_id): 4 duplicate(s)" in failed.stderr
    verdict = cli("dq", "check", "--dataset", "shipments", "--dt", "2031-01-01", "--json", cwd=folder)
    assert verdict.returncode == 1 and json.loads(verdict.stdout)["failed"][0].startswith("unique(shipment_id)")

    # the checklist on this stack: the DLQ's hint names commands that exist
    checks = {c["step"]: c for c in js(cli("verify", "--step", "2", "--step", "5", "--json", cwd=folder))["checks"]}
    assert checks[2]["status"] == "OK" and state["endpoint_url"] in js(cli("verify", "--step", "0", "--json",
                                                                          cwd=folder))["checks"][0]["detail"]
    assert checks[5]["status"] == "WARN" and "dlq=2" in checks[5]["detail"] and "'elt-sdk dlq list'" in checks[5]["detail"]

    # down: stopped, state removed, nothing left to target
    assert ok(cli("local", "down", cwd=folder)).stdout.startswith("local stack stopped")
    assert not (folder / ".elt-local" / "state.json").exists()
    gone = cli("status", "--json", cwd=folder)
    assert gone.returncode == 2 and "no stack to act on" in json.loads(gone.stdout)["error"]


def test_a_stale_state_file_is_reported_and_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state_dir = tmp_path / ".elt-local"
    state_dir.mkdir()
    (state_dir / "state.json").write_text(json.dumps({
        "pid": dead.pid, "endpoint_url": "http://127.0.0.1:1", "region": "us-east-2", "settings": {},
        "resources": {}, "started_at": 0, "workers": 2, "folder": str(tmp_path), "logs": ""}))
    status = cli("local", "status", cwd=tmp_path)
    assert status.returncode == 1 and f"pid {dead.pid} is not running" in status.stderr
    target = cli("dlq", "list", cwd=tmp_path)
    assert target.returncode == 2 and "stale" in target.stderr
    down = cli("local", "down", cwd=tmp_path)
    assert down.returncode == 0 and "removed stale state" in down.stderr
    assert not (state_dir / "state.json").exists()


def test_local_up_in_the_foreground_stops_cleanly_on_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "elt_sdk.cli", "local", "up", "--port", "0"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (tmp_path / ".elt-local" / "state.json").exists():
            assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
            time.sleep(0.1)
        port = json.loads((tmp_path / ".elt-local" / "state.json").read_text())["endpoint_url"].rsplit(":", 1)[1]
        busy = cli("local", "up", "--port", port, cwd=tmp_path / ".elt-local")  # another folder, the same port
        assert busy.returncode == 2 and f"127.0.0.1:{port}" in busy.stderr
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.startswith("local stack up at http://127.0.0.1:")
    assert not (tmp_path / ".elt-local" / "state.json").exists()


def test_json_errors_config_show_and_unknown_plugins(tmp_path):
    bad = cli("replay", "--dataset", "nope", "--last", "1h", "--json", cwd=tmp_path)
    assert bad.returncode == 2
    assert json.loads(bad.stdout) == {"error": json.loads(bad.stdout)["error"], "exit_code": 2}
    assert "unknown dataset 'nope'" in json.loads(bad.stdout)["error"]
    window = cli("replay", "--dataset", "shipments", "--json", cwd=tmp_path)
    assert window.returncode == 2 and "--last" in json.loads(window.stdout)["error"]
    (tmp_path / "elt-sdk.toml").write_text("[pipeline]\nbatch_size = 7\n")
    shown = js(cli("config", "show", "--json", cwd=tmp_path, env={"ELT_MAX_RECEIVE_COUNT": "3"}))
    assert shown["config_file"] == "elt-sdk.toml"
    assert shown["settings"]["batch_size"] == {**shown["settings"]["batch_size"], "value": 7, "origin": "elt-sdk.toml"}
    assert shown["settings"]["max_receive_count"]["origin"] == "env ELT_MAX_RECEIVE_COUNT"
    assert shown["settings"]["max_receive_count"]["value"] == 3
    assert shown["settings"]["chunk_bytes"]["origin"] == "default"
    table = ok(cli("config", "show", cwd=tmp_path)).stdout
    assert any(line.split()[:3] == ["batch_size", "7", "elt-sdk.toml"] for line in table.splitlines())
    warned = cli("--disable-plugin", "shipmnts", "plugins", cwd=tmp_path)
    assert "no installed plugin is called 'shipmnts'" in warned.stderr
    assert "shipments" in warned.stdout  # and the typo disabled nothing


def test_query_reads_a_local_output_folder(tmp_path):
    src = tmp_path / "in" / "bronze" / "shipments"
    src.mkdir(parents=True)
    (src / "a.jsonl").write_text("".join(shipment(i, "2025-06-0" + str(1 + i % 3)) for i in range(30)))
    ok(cli("transform", "in", "--out", "out", cwd=tmp_path))
    rows = js(cli("query", "--silver", "out", "--json",
                  "SELECT dt, typeof(dt) AS t, count(*) AS n, approx_distinct(shipment_id) AS d FROM shipments "
                  "GROUP BY ALL ORDER BY dt", cwd=tmp_path))
    assert rows == [{"dt": f"2025-06-0{d}", "t": "DATE", "n": 10, "d": 10} for d in (1, 2, 3)]
    assert count_rows(cli("query", "--silver", "out/silver", "--json", "SELECT 1 AS x FROM tracking_events", cwd=tmp_path)) == 0
    summary = ok(cli("query", "--silver", "out", cwd=tmp_path)).stdout
    assert "== shipments: 30 rows" in summary
    shown = subprocess.run([sys.executable, str(Path(__file__).resolve().parent.parent / "tools" / "show_silver.py"), "out"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0 and "== shipments: 30 rows" in shown.stdout
    wrong = cli("query", "--silver", "out", "SELECT nope FROM shipments", cwd=tmp_path)
    assert wrong.returncode == 2 and "query failed" in wrong.stderr


def count_rows(proc: Ran) -> int:
    return len(js(proc))


def test_dq_and_compact_on_a_local_output_folder(tmp_path):
    src = tmp_path / "in" / "bronze" / "shipments"
    src.mkdir(parents=True)
    for n in range(4):
        (src / f"f{n}.jsonl").write_text("".join(shipment(10 * n + i, "2025-06-01") for i in range(10)))
    with gzip.open(src / "g.jsonl.gz", "wt") as fh:
        fh.write("".join(shipment(100 + i, "2025-06-01") for i in range(5)))
    ok(cli("transform", "in", "--out", "out", cwd=tmp_path))
    report = js(cli("compact", "--silver", "out", "--dataset", "shipments", "--dt", "2025-06-01", "--in-place",
                    "--json", cwd=tmp_path))
    assert (report["files_before"], report["files_after"], report["rows"]) == (5, 1, 45)
    check = js(cli("dq", "check", "--silver", "out", "--dataset", "shipments", "--dt", "2025-06-01", "--json",
                   cwd=tmp_path))
    assert check["passed"] and check["rows"] == 45
    assert (tmp_path / "out" / check["result_key"]).is_file()
    # a file edited and transformed again: its rows in the compacted file are replaced
    (src / "f1.jsonl").write_text("".join(shipment(500 + i, "2025-06-01") for i in range(3)))
    ok(cli("transform", "in/bronze/shipments/f1.jsonl", "--out", "out", cwd=tmp_path))
    ids = js(cli("query", "--silver", "out", "--json", "SELECT shipment_id FROM shipments ORDER BY 1", cwd=tmp_path))
    expected = sorted([f"SHP-{i:08d}" for i in range(40) if not 10 <= i < 20]
                      + [f"SHP-{i:08d}" for i in (*range(100, 105), *range(500, 503))])
    assert [r["shipment_id"] for r in ids] == expected
    usage = cli("compact", "--silver", "out", "--dataset", "shipments", "--dt", "June", cwd=tmp_path)
    assert usage.returncode == 2 and "not a date" in usage.stderr
