"""Iceberg silver through the whole local pipeline (embedded endpoint): ingest -> transform ->
commit queue -> committer, with the tables on the endpoint's S3 and a sqlite catalog; and
``local run``'s copy of the tables into its output folder."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("pyiceberg", reason="the iceberg extra")

from elt_sdk.local.runtime import LocalRuntime  # noqa: E402
from elt_sdk.settings import Settings  # noqa: E402


def record(sid: str, day: str) -> dict:
    return {"record_type": "shipments", "event_time": f"{day}T10:00:00Z", "shipment_id": sid, "origin": "Oslo",
            "destination": "Rome", "carrier": "DHL", "weight_kg": 3.5}


def test_an_overwritten_object_is_replaced_in_one_snapshot_by_the_committer(tmp_path):
    from elt_sdk.aws import status
    from elt_sdk.iceberg.catalog import from_environment
    from elt_sdk.local.target import LocalTarget

    key = "bronze/shipments/orders.jsonl"
    path = tmp_path / "orders.jsonl"
    settings = Settings(name_prefix="ice", silver_format="iceberg")
    with LocalRuntime(settings, workers=2) as rt:
        path.write_text("".join(json.dumps(record(f"v1-{i}", f"2025-03-0{1 + i % 2}")) + "\n" for i in range(20)))
        rt.upload(path, key)
        rt.wait(120)
        path.write_text("".join(json.dumps(record(f"v2-{i}", "2025-03-05")) + "\n" for i in range(7)) + "{oops\n")
        rt.upload(path, key)
        rt.wait(120)
        state = status.queues(LocalTarget(rt))
        assert state["drained"] and state["commit_backlog"] == 0 and state["commit_dlq_depth"] == 0
        table = from_environment().load("shipments")
        ids = sorted(table.scan().to_arrow().column("shipment_id").to_pylist())
        assert ids == sorted(f"v2-{i}" for i in range(7))
        snapshots = table.snapshots()
        assert len(snapshots) == 2  # one per version: the second replaced the first in one commit
        first = sorted(table.scan(snapshot_id=snapshots[0].snapshot_id).to_arrow().column("shipment_id").to_pylist())
        assert first == sorted(f"v1-{i}" for i in range(20))
        assert snapshots[1].summary.operation.value == "overwrite"
        assert rt.committer is not None and rt.committer.stats.errors == []


def test_local_run_keeps_the_tables_in_its_output_folder(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "ELT_SILVER_FORMAT": "iceberg"}
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "local", "run", "--out", str(out), "--records", "300",
                           "--json"], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # (the deliberate poison object in the DLQ is expected)
    result = json.loads(proc.stdout)
    assert result["matches_expected"] is True and (out / "iceberg.db").is_file()
    written = {name: d["written"] for name, d in result["datasets"].items() if d["written"]}
    assert set(written) == {"shipments", "tracking_events", "invoice_lines"}
    query = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "query", "--silver", str(out), "--json",
                            "SELECT 'shipments' AS t, count(*) AS n FROM shipments UNION ALL "
                            "SELECT 'tracking_events', count(*) FROM tracking_events UNION ALL "
                            "SELECT 'invoice_lines', count(*) FROM invoice_lines"],
                           capture_output=True, text=True, timeout=120, env=env)
    assert query.returncode == 0, query.stderr
    assert {r["t"]: r["n"] for r in json.loads(query.stdout)} == written
    snaps = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "iceberg", "snapshots", "--silver", str(out), "--json"],
                           capture_output=True, text=True, timeout=120, env=env)
    rows = json.loads(snaps.stdout)["snapshots"]
    assert sorted(r["dataset"] for r in rows) == sorted(written)  # each table: one snapshot, the run's copy
    assert all(r["current"] and r["total_rows"] == written[r["dataset"]] for r in rows)
