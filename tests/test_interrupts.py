"""SIGTERM and Ctrl-C: the command stops, removes its temporary folders, leaves outputs as they
were (nothing half-committed, no partial local-run folder) and exits 130."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


def start(args: list[str], cwd: Path, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmp)}
    # Ctrl-C as a terminal delivers it, whatever started the test run: a shell's background job
    # (`cmd &`, nohup) starts its children with SIGINT ignored, and Python then installs no handler
    return subprocess.Popen([sys.executable, "-m", "elt_sdk.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if time.time() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def big_input(folder: Path, records: int) -> Path:
    src = folder / "bronze" / "shipments" / "big.jsonl"
    src.parent.mkdir(parents=True)
    line = json.dumps({"record_type": "shipments", "event_time": "2025-06-01T12:00:00Z", "shipment_id": "S",
                       "origin": "A", "destination": "B", "carrier": "C", "weight_kg": 1.5}).encode() + b"\n"
    src.write_bytes(line * records)
    return src


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_transform_interrupted_exits_130_and_leaves_no_temporary_folder_and_no_rows(tmp_path, sig):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    src = big_input(tmp_path, 3_000_000)  # a few seconds of work
    proc = start(["transform", str(src), "--out", str(tmp_path / "out")], tmp_path, tmp)
    started = time.monotonic()
    wait_for(lambda: any(tmp.glob("elt-out-*")))  # it is writing
    signalled = time.monotonic() - started
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    # what it did instead, should it not stop: this failed twice in CI runs out of many (exit 0)
    seen = (f"signalled at {signalled:.2f} s, exited at {time.monotonic() - started:.2f} s; "
            f"stdout: {out[-500:]!r}; stderr: {err!r}")
    assert proc.returncode == 130, seen
    assert "interrupted" in err
    assert not list(tmp.iterdir())  # elt-out-* gone
    assert not (tmp_path / "out" / "silver").exists()


def test_local_run_interrupted_leaves_the_previous_output_untouched(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / ".elt-local-run.json").write_text('{"complete": true}')  # a previous run's output
    (out / "silver").mkdir()
    (out / "silver" / "kept.txt").write_text("from the previous run")
    proc = start(["local", "run", "--records", "20000", "--out", str(out)], tmp_path, tmp)
    wait_for(lambda: any(tmp_path.glob(".out.partial-*")) and any(tmp.glob("elt-demo-*")))
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert (out / "silver" / "kept.txt").read_text() == "from the previous run"
    assert not list(tmp_path.glob(".out.partial-*")) and not list(tmp.glob("elt-demo-*"))


def test_local_run_refuses_an_output_folder_it_did_not_write(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "local", "run", "--records", "5", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "was not written by 'elt-sdk local run'" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert (out / "notes.txt").read_text() == "mine" and sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_the_endpoint_process_ends_with_the_pipeline_even_when_it_is_killed():
    code = ("from elt_sdk.local.endpoint import EmbeddedEndpoint; import time; "
            "e = EmbeddedEndpoint(own_process=True).start(); print(e._server.proc.pid, flush=True); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)  # no cleanup can run
    parent.wait()

    def gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{child}/status") as fh:  # exited but not yet reaped counts as gone
            return "\nState:\tZ" in fh.read()

    wait_for(gone, timeout=10)


def test_pyarrows_first_conversions_import_nothing_once_the_transform_path_is_loaded():
    """pyarrow swallows any exception raised while it lazily imports a module on its first
    Python-to-Arrow conversion, KeyboardInterrupt included: an interrupt landing there was lost
    (the command above then ran to the end). Loading the transform path imports those modules
    up front, where an interrupt propagates."""
    code = ("import sys, datetime; import elt_sdk.pipeline, elt_sdk.output; import pyarrow as pa\n"
            "before = set(sys.modules)\n"
            "pa.scalar(10); pa.scalar(1.5); pa.scalar('x'); pa.array([1, None]); pa.array([datetime.date(2020, 1, 1)])\n"
            "pa.array([datetime.datetime(2020, 1, 1)]); pa.scalar(True)\n"
            "print(sorted(set(sys.modules) - before))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_stop_that_was_swallowed_is_raised_again_before_anything_is_committed(registry, tmp_path):
    """The command line's signal handler records the stop before raising: should the exception be
    dropped on its way (by C++ code calling back into Python), the transform raises it again at
    its next block or before its commit, and nothing reaches silver."""
    from elt_sdk import interrupts
    from elt_sdk.pipeline import Transformer
    from elt_sdk.source import LocalSource
    from elt_sdk.store import LocalStore

    src = big_input(tmp_path, 1000)
    interrupts.request()
    try:
        with pytest.raises(KeyboardInterrupt):
            Transformer(registry).transform_object(LocalSource.from_path(src, key="bronze/shipments/big.jsonl"),
                                                   LocalStore(tmp_path / "out"), dataset="shipments")
    finally:
        interrupts.clear()
    assert not (tmp_path / "out" / "silver").exists()
    report = Transformer(registry).transform_object(LocalSource.from_path(src, key="bronze/shipments/big.jsonl"),
                                                    LocalStore(tmp_path / "out"), dataset="shipments")
    assert report.totals().written == 1000  # once cleared, the next run goes through
