"""``elt-sdk verify``: the acceptance checklist on the embedded endpoint, and on a stack's outputs."""
from __future__ import annotations

import json
import subprocess
import sys

from elt_sdk.aws.deployed import DeployedTarget
from elt_sdk.local.endpoint import EmbeddedEndpoint
from elt_sdk.local.provision import provision
from elt_sdk.settings import Settings
from elt_sdk.verify import run_checklist


def test_verify_on_the_embedded_endpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "verify", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    checks = json.loads(proc.stdout)["checks"]
    assert [c["step"] for c in checks] == list(range(12))
    assert all(c["status"] == "OK" for c in checks[:11]), checks
    assert checks[8]["detail"].startswith("OK: second invoke skipped")
    # 9: no Glue locally, but the reference's three Athena queries ran on the seeded rows
    assert "three queries ran" in checks[9]["detail"] and "[20," in checks[9]["detail"]
    assert "50 rows, passed" in checks[10]["detail"]  # the gate's check on the seed's partition
    assert checks[11]["status"] == "SKIP"  # no dashboard on the embedded endpoint


def test_verify_one_step_runs_what_it_needs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "verify", "--step", "7", "--step", "4", "--json"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert [c["step"] for c in json.loads(proc.stdout)["checks"]] == [0, 1, 4, 6, 7]
    bad = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "verify", "--step", "12"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "12" in bad.stderr


def test_verify_reads_a_stacks_outputs_and_reports_what_is_missing(registry):
    """A CloudFormation stack on moto whose outputs name real (moto) resources but functions that
    do not exist: the checklist must find the resources and fail on the lambdas."""
    with EmbeddedEndpoint("us-east-2") as ep:
        settings = Settings(name_prefix="deployed")
        res = provision(settings, ep.client)
        outputs = {"BronzeBucket": res.bronze_bucket, "SilverBucket": res.silver_bucket, "QueueUrl": res.queue_url,
                   "DlqUrl": res.dlq_url, "IdempotencyTable": res.table, "IngestLambda": "deployed-ingest",
                   "TransformLambda": "deployed-transform"}
        template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
        ep.client("cloudformation").create_stack(StackName="elt-sdk", TemplateBody=json.dumps(template))
        target = DeployedTarget(stack_name="elt-sdk", region="us-east-2", endpoint_url=ep.url)
        assert target.outputs["ingest_lambda"] == "deployed-ingest"
        assert target.outputs["idempotency_table"] == res.table
        checks = {c.step: c for c in run_checklist(target, registry, window_s=1)}
        assert checks[1].status == "OK"
        assert checks[3].status == "FAIL" and "deployed-ingest" in checks[3].detail
        assert checks[4].status == "OK" and "ENABLED" in checks[4].detail
        assert checks[5].status == "OK"
        assert checks[6].status == "OK"
        assert checks[7].status == "FAIL"  # nothing transforms: there is no function
        assert checks[9].status == "OK" and "no Glue database" in checks[9].detail
        assert checks[11].status == "SKIP"
        ep.client("cloudformation").create_stack(StackName="partial", TemplateBody=json.dumps(
            {"Resources": template["Resources"], "Outputs": {"BronzeBucket": {"Value": "b"}}}))
        partial = run_checklist(DeployedTarget(stack_name="partial", region="us-east-2", endpoint_url=ep.url), registry)
        assert partial[-1].step == 1 and partial[-1].status == "FAIL" and "silver_bucket" in partial[-1].detail


def test_verify_checks_glue_projection_gate_and_dashboard_where_the_stack_has_them(registry):
    """Steps 9-11 on a stack whose outputs name a Glue database (tables from the plugins' silver
    schemas, one of them without projection), a gate state machine and a dashboard with alarms."""
    from elt_sdk.schema import glue_type

    with EmbeddedEndpoint("us-east-2") as ep:
        settings = Settings(name_prefix="glued")
        res = provision(settings, ep.client)
        glue = ep.client("glue")
        glue.create_database(DatabaseInput={"Name": "glued_silver"})
        for name, ds in sorted(registry.datasets.items()):
            params = {"projection.enabled": "true", "projection.dt.type": "date",
                      "storage.location.template": f"s3://{res.silver_bucket}/silver/{name}/dt=${{dt}}/"}
            glue.create_table(DatabaseName="glued_silver", TableInput={
                "Name": name, "PartitionKeys": [{"Name": "dt", "Type": "date"}],
                "Parameters": params if name != "tracking_events" else {},
                "StorageDescriptor": {"Columns": [{"Name": f.name, "Type": glue_type(f.type)} for f in ds.arrow_schema]}})
        cw = ep.client("cloudwatch")
        cw.put_dashboard(DashboardName="glued-pipeline", DashboardBody='{"widgets": []}')
        cw.put_metric_alarm(AlarmName="dlq", MetricName="ApproximateNumberOfMessagesVisible", Namespace="AWS/SQS",
                            Dimensions=[{"Name": "QueueName", "Value": settings.dlq_name}], Statistic="Maximum",
                            Period=300, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold")
        sfn = ep.client("stepfunctions")
        arn = sfn.create_state_machine(name="gate", roleArn="arn:aws:iam::123456789012:role/x",
                                       definition='{"StartAt": "P", "States": {"P": {"Type": "Pass", "End": true}}}')["stateMachineArn"]
        outputs = {"BronzeBucket": res.bronze_bucket, "SilverBucket": res.silver_bucket, "QueueUrl": res.queue_url,
                   "DlqUrl": res.dlq_url, "IdempotencyTable": res.table, "IngestLambda": "glued-ingest",
                   "TransformLambda": "glued-transform", "GlueDatabase": "glued_silver", "Dashboard": "glued-pipeline",
                   "QualityGateStateMachine": arn}
        template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
        ep.client("cloudformation").create_stack(StackName="glued", TemplateBody=json.dumps(template))
        target = DeployedTarget(stack_name="glued", region="us-east-2", endpoint_url=ep.url)
        checks = {c.step: c for c in run_checklist(target, registry, window_s=1, steps=[9, 10, 11])}
        assert sorted(checks) == [0, 1, 6, 7, 9, 10, 11]
        assert checks[9].status == "FAIL" and "glued_silver.tracking_events" in checks[9].detail
        assert checks[10].status == "OK" and "0 recent execution(s)" in checks[10].detail
        assert checks[11].status == "OK" and "dashboard=glued-pipeline" in checks[11].detail and "1 alarm(s)" in checks[11].detail
        glue.update_table(DatabaseName="glued_silver", TableInput={
            "Name": "tracking_events", "PartitionKeys": [{"Name": "dt", "Type": "date"}],
            "Parameters": {"projection.enabled": "true", "projection.dt.type": "date",
                           "storage.location.template": f"s3://{res.silver_bucket}/silver/tracking_events/dt=${{dt}}/"},
            "StorageDescriptor": {"Columns": []}})
        [check] = [c for c in run_checklist(target, registry, window_s=1, steps=[9]) if c.step == 9]
        assert check.status == "OK" and "database glued_silver: 3 table(s)" in check.detail, check.detail


def test_verify_with_iceberg_silver_on_the_embedded_endpoint(tmp_path):
    """silver_format = iceberg: the seed reaches the table through the committer, the tables have
    their day partitions and object columns, the reference queries run on their snapshots."""
    import os

    import pytest

    pytest.importorskip("pyiceberg", reason="the iceberg extra")
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "verify", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "ELT_SILVER_FORMAT": "iceberg"})
    assert proc.returncode == 0, proc.stderr + proc.stdout
    checks = {c["step"]: c for c in json.loads(proc.stdout)["checks"]}
    assert all(checks[s]["status"] == "OK" for s in range(10)), checks
    assert "commits=0 commit_dlq=0" in checks[5]["detail"]
    assert checks[7]["detail"].startswith("50 row(s) of the seed object in Iceberg table elt_sdk_silver.shipments")
    assert "Iceberg tables in elt_sdk_silver: shipments" in checks[9]["detail"] and "three queries ran" in checks[9]["detail"]
    assert checks[10]["status"] == "SKIP"
