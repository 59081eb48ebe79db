"""The built Lambda assets, run the way Lambda loads them (``lambda_like.py``), against the
embedded endpoint: ingest from the light asset, the transform from the full one, each handler in a
fresh interpreter per cold start. Figures (INIT medians) are printed, never asserted."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os

import pyarrow.parquet as pq
import pytest

import lambda_like as ll

pytestmark = [pytest.mark.synth, pytest.mark.slow]

COLD_STARTS = 5


@pytest.fixture(scope="module")
def python312() -> str:
    python = ll.python_for("3.12")
    if python is None:
        assert not os.environ.get("CI"), "CI must have a Python 3.12 (Lambda's runtime) for the Lambda-like run"
        pytest.skip("no Python 3.12 on this machine to stand in for Lambda's runtime")
    return python


def _silver_rows(sc: ll.Scenario) -> int:
    s3 = sc.endpoint.client("s3")
    bucket = sc.resources["ELT_SILVER_BUCKET"]
    rows = 0
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="silver/shipments/").get("Contents", []):
        if obj["Key"].endswith(".parquet"):
            rows += pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())).num_rows
    return rows


def _quarantined(sc: ll.Scenario, bucket_env: str) -> list[str]:
    """The quarantine envelopes' lines in the bucket the function's ``bucket_env`` names."""
    s3 = sc.endpoint.client("s3")
    bucket = sc.resources[bucket_env]
    lines = []
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="quarantine/shipments/").get("Contents", []):
        lines += s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read().decode().splitlines()
    return lines


def test_handlers_run_from_the_assets_as_lambda_loads_them(all_on_stack, python312, tmp_path_factory):
    stack, template = all_on_stack
    assert stack.settings.architecture == "x86_64"  # this machine's: the asset's shared objects load here
    work = tmp_path_factory.mktemp("lambda-like")
    runtime = ll.runtime_packages(work / "runtime", python312)
    tasks = {"ingest": ll.install_task(stack.assets["light"].path, work / "task-light"),
             "transform": ll.install_task(stack.assets["full"].path, work / "task-full")}
    try:
        records = ll.shipments(300)
        with ll.scenario(stack.settings, records, ["{truncated", "[1, 2]"]) as sc:
            figures = {}
            for name, prefix in (("ingest", "Ingest"), ("transform", "Transform")):
                env = ll.function_environment(template.to_json(), prefix, sc.resources)
                runs = []
                for i in range(COLD_STARTS):
                    event = sc.s3_event() if name == "ingest" else sc.sqs_event()
                    if name == "transform":
                        assert len(event["Records"]) == 1, "ingest enqueued one pointer for the object"
                    runs.append(ll.run_handler(python312, tasks[name], runtime, ll.FUNCTIONS[name], event,
                                               ll.lambda_environment(env, sc.endpoint.env, tasks[name], name),
                                               work / f"{name}-{i}"))
                figures[name] = runs
                first = runs[0]
                assert first["python"] == [3, 12]
                assert first["compiled_from_source"] == []  # every .pyc valid after "unzipping" (new mtimes)
                assert first["written_to_task"] == []
                assert first["foreign_files"] == []  # nothing from this machine's environments
                assert "importlib.metadata" not in first["loaded_at_init"]  # the manifest, not a metadata scan
                assert first["datasets"] == ["invoice_lines", "shipments", "tracking_events"]  # every installed plugin
                assert first["broken"] == []
                if name == "ingest":
                    assert first["result"]["enqueued"] == 1 and first["result"]["failed"] == 0
                    assert all(r["result"]["skipped"] == 1 for r in runs[1:])  # the same event again: claimed already
                    assert first["loaded_at_init"] == []  # no pyarrow, no fastjsonschema, no metadata scan
                    assert not {"pyarrow", "fastjsonschema"} & set(first["loaded"])
                else:
                    assert all(r["result"] == {"batchItemFailures": []} for r in runs)
                    assert first["pyarrow_file"].startswith(str(tasks["transform"]))
                    assert "pyarrow" in first["loaded_at_init"] and "click" not in first["loaded"]
            assert _silver_rows(sc) == len(records)  # every valid record once, whatever the redeliveries
            quarantined = _quarantined(sc, "ELT_QUARANTINE_BUCKET")  # its own bucket, as the stack wires it
            assert len(quarantined) == 2 and any("truncated" in line for line in quarantined)
            assert _quarantined(sc, "ELT_SILVER_BUCKET") == []
        print()
        for name, runs in figures.items():
            print(ll.summary(name, runs))
        for name, report in stack.assets.items():
            print(f"{name} asset: {report.total_bytes / 1048576:.1f} MiB unzipped")
    finally:
        for task in tasks.values():
            ll._writable(task)


def test_iceberg_transform_hands_off_and_the_committer_commits_from_its_asset(iceberg_stack, python312,
                                                                               tmp_path_factory):
    """silver_format = iceberg, as Lambda loads it: the transform (the full asset, no pyiceberg in
    it or loaded) hands the object to the commit queue; the committer (the iceberg asset, Glue as
    its catalog) commits it, and its later cold starts find the same message already committed."""
    from elt_sdk.iceberg.catalog import open_catalog

    stack, template = iceberg_stack
    assert stack.settings.silver_format == "iceberg" and stack.settings.architecture == "x86_64"
    work = tmp_path_factory.mktemp("lambda-like-iceberg")
    runtime = ll.runtime_packages(work / "runtime", python312)
    tasks = {"transform": ll.install_task(stack.assets["full"].path, work / "task-full"),
             "committer": ll.install_task(stack.assets["iceberg"].path, work / "task-iceberg")}
    try:
        assert not list(tasks["transform"].glob("pyiceberg*")) and list(tasks["committer"].glob("pyiceberg"))
        records = ll.shipments(200)
        # names of its own: moto's state is the process's, and the other Lambda-like test made elt-sdk's
        settings = dataclasses.replace(stack.settings, name_prefix="elt-ice")
        with ll.scenario(settings, records, ["{truncated"]) as sc:
            from elt_sdk.aws import handlers
            from elt_sdk.local.esm import LambdaContext

            database = ll.function_environment(template.to_json(), "Committer", sc.resources)["ELT_ICEBERG_DATABASE"]
            sc.endpoint.client("glue").create_database(DatabaseInput={"Name": database})  # the stack makes it

            with _env(sc):  # ingest, in this process: the pointer message the transform reads
                handlers.reset()
                assert handlers.ingest_handler(sc.s3_event(), LambdaContext("ingest", 30))["enqueued"] == 1
                handlers.reset()
            figures = {}
            for name, prefix, queue in (("transform", "Transform", "ELT_QUEUE_URL"),
                                        ("committer", "Committer", "ELT_COMMIT_QUEUE_URL")):
                env = ll.function_environment(template.to_json(), prefix, sc.resources)
                runs = []
                for i in range(COLD_STARTS if name == "committer" else 1):
                    event = sc.sqs_event(queue)
                    assert len(event["Records"]) == 1
                    runs.append(ll.run_handler(python312, tasks[name], runtime, ll.FUNCTIONS[name], event,
                                               ll.lambda_environment(env, sc.endpoint.env, tasks[name], name),
                                               work / f"{name}-{i}"))
                figures[name] = runs
                first = runs[0]
                assert first["compiled_from_source"] == [] and first["written_to_task"] == []
                assert first["foreign_files"] == [] and all(r["result"] == {"batchItemFailures": []} for r in runs)
                if name == "transform":
                    assert "pyiceberg" not in first["loaded"]  # its cold start is the plain transform's
                else:
                    assert "pyiceberg" in first["loaded_at_init"] and "click" not in first["loaded"]
                    assert first["pyarrow_file"].startswith(str(tasks["committer"]))
            logs = [json.loads(line) for run in figures["committer"] for line in run["log_lines"] if line.startswith("{")]
            done = [entry for entry in logs if entry.get("message") == "commit batch done"]
            assert done[0].get("committed") == 1 and all(e.get("already_committed") == 1 for e in done[1:])
            catalog = open_catalog("glue", root=f"s3://{sc.resources['ELT_SILVER_BUCKET']}", region=sc.endpoint.region,
                                   endpoint_url=sc.endpoint.url, glue_client=sc.endpoint.client("glue"))
            table = catalog.load_table((database, "shipments"))
            data = table.scan().to_arrow()
            assert data.num_rows == len(records) and len(table.snapshots()) == 1
            assert set(data.column("_elt_source").to_pylist()) == {sc.bronze_key}
        print()
        for name, runs in figures.items():
            print(ll.summary(name, runs))
        print(f"iceberg asset: {stack.assets['iceberg'].total_bytes / 1048576:.1f} MiB unzipped")
    finally:
        for task in tasks.values():
            ll._writable(task)


@contextlib.contextmanager
def _env(sc: ll.Scenario):
    saved = dict(os.environ)
    os.environ.update({**sc.endpoint.env, **sc.resources, "ELT_SILVER_FORMAT": "iceberg"})
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
