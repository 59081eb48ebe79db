"""The CDK app: synthesized offline (no Docker, no AWS account) and asserted on."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
sys.path.insert(0, str(DEPLOY))

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402

from elt_deploy.bundle import BundleError, build_bundle  # noqa: E402
from elt_deploy.stack import build_app  # noqa: E402

pytestmark = pytest.mark.synth

ALL_ON = {"architecture": "x86_64", "glue_enabled": "true", "observability_enabled": "true", "ops_enabled": "true",
          "ops_schedule": "rate(1 day)", "quality_enabled": "true", "quality_auto_trigger": "true",
          "compaction_enabled": "true", "alarm_email": "oncall@example.com", "transform_timeout_s": "90",
          "transform_reserved_concurrency": "20", "batch_size": "25"}


def synth(tmp: Path, context: dict) -> tuple[cdk.Stack, Template]:
    app = cdk.App(context={"stack_name": "elt-sdk", **context}, outdir=str(tmp))
    stack = build_app(app, DEPLOY)
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="session")
def default(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("synth-default"), {})


@pytest.fixture(scope="session")
def all_on(tmp_path_factory):
    return synth(tmp_path_factory.mktemp("synth-all"), ALL_ON)


def resources(template: Template, kind: str) -> dict:
    return template.find_resources(kind)


def test_buckets_are_versioned_encrypted_private_tls_only(default):
    stack, t = default
    t.resource_count_is("AWS::S3::Bucket", 2)
    t.all_resources_properties("AWS::S3::Bucket", {
        "VersioningConfiguration": {"Status": "Enabled"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
    })
    for policy in resources(t, "AWS::S3::BucketPolicy").values():
        deny = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in deny)
    rules = [r for b in resources(t, "AWS::S3::Bucket").values() for r in b["Properties"]["LifecycleConfiguration"]["Rules"]]
    prefixes = {r.get("Prefix"): r.get("ExpirationInDays") for r in rules if r.get("Prefix")}
    assert prefixes == {"quarantine/": 90, "bronze/replay/": 14}


def test_table_queue_and_dlq_settings(default):
    stack, t = default
    t.has_resource_properties("AWS::DynamoDB::Table", {
        "BillingMode": "PAY_PER_REQUEST",
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    })
    queues = resources(t, "AWS::SQS::Queue")
    main = next(q["Properties"] for q in queues.values() if "RedrivePolicy" in q["Properties"])
    assert main["VisibilityTimeout"] == 6 * 120 and main["MessageRetentionPeriod"] == 4 * 86400
    assert main["RedrivePolicy"]["maxReceiveCount"] == 5 and main["SqsManagedSseEnabled"] is True
    others = [q["Properties"] for q in queues.values() if "RedrivePolicy" not in q["Properties"]]
    assert all(q["MessageRetentionPeriod"] == 14 * 86400 and q["SqsManagedSseEnabled"] for q in others)


def test_functions_runtime_architecture_sizing_and_environment(default, all_on):
    for (stack, t), arch in ((default, "arm64"), (all_on, "x86_64")):
        fns = {k: v["Properties"] for k, v in resources(t, "AWS::Lambda::Function").items() if "Ingest" in k or k.startswith("Transform")}
        assert len(fns) == 2
        for props in fns.values():
            assert props["Runtime"] == "python3.12" and props["Architectures"] == [arch]
            env = props["Environment"]["Variables"]
            assert {"ELT_BRONZE_BUCKET", "ELT_SILVER_BUCKET", "ELT_QUEUE_URL", "ELT_IDEMPOTENCY_TABLE",
                    "IDEMPOTENCY_TTL_SECONDS", "ELT_CHUNK_BYTES"} <= set(env)
            assert env["IDEMPOTENCY_TTL_SECONDS"] == str(30 * 86400)
    transform = next(v["Properties"] for k, v in resources(all_on[1], "AWS::Lambda::Function").items() if k.startswith("Transform"))
    assert transform["Timeout"] == 90 and transform["ReservedConcurrentExecutions"] == 20
    main = next(q["Properties"] for q in resources(all_on[1], "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"])
    assert main["VisibilityTimeout"] == 540
    default[1].has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 30})


def test_notification_event_source_and_outputs(default):
    stack, t = default
    t.has_resource_properties("Custom::S3BucketNotifications", {"NotificationConfiguration": {
        "LambdaFunctionConfigurations": [Match.object_like({
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "bronze/"}]}}})]}})
    t.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 10, "MaximumBatchingWindowInSeconds": 5, "FunctionResponseTypes": ["ReportBatchItemFailures"]})
    t.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2})
    outputs = t.to_json()["Outputs"]
    assert set(outputs) == {"BronzeBucket", "SilverBucket", "QueueUrl", "DlqUrl", "IngestLambda", "TransformLambda",
                            "IdempotencyTable"}


def _statements(t: Template):
    for rid, res in {**resources(t, "AWS::IAM::Policy"), **resources(t, "AWS::IAM::Role")}.items():
        docs = [res["Properties"].get("PolicyDocument")] + [p["PolicyDocument"] for p in res["Properties"].get("Policies", [])]
        for doc in filter(None, docs):
            for st in doc["Statement"]:
                yield rid, st


# Statements on Resource "*" that have no narrower form, each with why:
STAR_RESOURCE_OK = {
    # CDK's own handler for the bucket notification: PutBucketNotification takes no narrower resource there
    ("s3:PutBucketNotification",),
}


def test_iam_least_privilege(default, all_on):
    for _, t in (default, all_on):
        for rid, st in _statements(t):
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            assert all(a != "*" and not a.endswith(":*") for a in actions), (rid, actions)
            res = st.get("Resource")
            if res == "*" or (isinstance(res, list) and "*" in res):
                assert tuple(sorted(actions)) in STAR_RESOURCE_OK, (rid, actions)
    t = default[1]
    by_role = {}
    for rid, st in _statements(t):
        by_role.setdefault(rid, []).append(st)
    ingest = [s for r, sts in by_role.items() if r.startswith("IngestRole") for s in sts]
    transform = [s for r, sts in by_role.items() if r.startswith("TransformRole") for s in sts]
    ingest_actions = {a for s in ingest for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    transform_actions = {a for s in transform for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert {"s3:GetObject", "dynamodb:PutItem", "sqs:SendMessage"} <= ingest_actions
    assert not any(a.startswith("s3:Put") for a in ingest_actions)
    assert {"s3:GetObject", "s3:PutObject", "sqs:ReceiveMessage", "sqs:DeleteMessage"} <= transform_actions
    assert not any(a.startswith("dynamodb:") for a in transform_actions)
    put = next(s for s in transform if "s3:PutObject" in s["Action"])
    prefixes = sorted(json.dumps(r)[-20:] for r in put["Resource"])
    assert any("/silver/*" in p for p in prefixes) and any("/quarantine/*" in p for p in prefixes)


def test_optional_modules(default, all_on):
    _, off = default
    _, t = all_on
    for kind in ("AWS::Glue::Table", "AWS::StepFunctions::StateMachine", "AWS::Events::Rule", "AWS::SNS::Topic"):
        off.resource_count_is(kind, 0)
    t.resource_count_is("AWS::Glue::Database", 1)
    tables = {v["Properties"]["TableInput"]["Name"]: v["Properties"]["TableInput"] for v in resources(t, "AWS::Glue::Table").values()}
    assert set(tables) == {"shipments", "tracking_events", "invoice_lines"}
    ship = tables["shipments"]
    assert {c["Name"]: c["Type"] for c in ship["StorageDescriptor"]["Columns"]} == {
        "record_type": "string", "event_time": "timestamp", "shipment_id": "string", "origin": "string",
        "destination": "string", "carrier": "string", "weight_kg": "double"}
    assert ship["PartitionKeys"] == [{"Name": "dt", "Type": "date"}]
    assert ship["Parameters"]["projection.enabled"] == "true" and ship["Parameters"]["projection.dt.type"] == "date"
    assert {c["Name"]: c["Type"] for c in tables["invoice_lines"]["StorageDescriptor"]["Columns"]}["quantity"] == "bigint"
    t.resource_count_is("AWS::CloudWatch::Dashboard", 1)
    alarms = [a["Properties"] for a in resources(t, "AWS::CloudWatch::Alarm").values()]
    described = {a["AlarmDescription"]: a for a in alarms}
    assert described["messages in the DLQ: objects that failed every retry"]["Threshold"] == 1
    assert described["the transform is falling behind (oldest message > 300 s)"]["Threshold"] == 300
    assert sum("quarantine" in d for d in described) == 3
    assert all(a.get("AlarmActions") for a in alarms)  # wired to the SNS topic
    t.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "oncall@example.com"})
    t.resource_count_is("AWS::StepFunctions::StateMachine", 2)
    rules = [r["Properties"] for r in resources(t, "AWS::Events::Rule").values()]
    assert any(r.get("ScheduleExpression") == "rate(1 day)" for r in rules)
    assert any(r.get("EventPattern", {}).get("detail-type") == ["silver_partition_ready"] for r in rules)
    handlers = {v["Properties"]["Handler"] for v in resources(t, "AWS::Lambda::Function").values() if "Handler" in v["Properties"]}
    assert {"elt_sdk.aws.ops.replay_handler", "elt_sdk.aws.ops.poll_handler", "elt_sdk.aws.quality_gate.handler",
            "elt_sdk.aws.compaction.handler"} <= handlers
    transform_env = next(v["Properties"]["Environment"]["Variables"] for k, v in resources(t, "AWS::Lambda::Function").items()
                         if k.startswith("Transform"))
    assert transform_env["ELT_EMIT_PARTITION_EVENTS"] == "true"  # the quality gate's trigger needs the events


@pytest.mark.parametrize("which", ["default", "all_on"])
def test_cfn_lint_passes(which, request, tmp_path):
    _, t = request.getfixturevalue(which)
    path = tmp_path / "template.json"
    path.write_text(json.dumps(t.to_json()))
    # W3005 (ignored): CDK writes DependsOn entries that are also implied by Ref/GetAtt
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    proc = subprocess.run([str(cfn_lint), "-i", "W3005", "--", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bundle_contains_every_installed_plugin_with_its_entry_point(default, all_on):
    for stack, _ in (default, all_on):
        [bundle] = (DEPLOY / ".bundle").glob(f"{stack.settings.architecture}-py3.12-*")  # older inputs are pruned
        assert (bundle / "elt_sdk" / "aws" / "handlers.py").exists()
        for name, package in (("shipments", "elt_shipments"), ("tracking_events", "elt_tracking_events"),
                              ("invoice_lines", "elt_invoice_lines")):
            assert (bundle / package / "schema.json").exists()
            eps = next(bundle.glob(f"{package}-*.dist-info")) / "entry_points.txt"
            assert f"[elt_sdk]\n{name} = {package}" in eps.read_text()
        assert not list(bundle.glob("boto3*")) and not list(bundle.glob("*.pyc"))
        assert not (bundle / "pyarrow" / "include").exists()


def test_bundle_is_cached_and_its_hash_stable(tmp_path):
    logs: list[str] = []
    first = build_bundle(DEPLOY / ".bundle", architecture="x86_64", log=logs.append)
    second = build_bundle(DEPLOY / ".bundle", architecture="x86_64", log=logs.append)
    assert second.cached and second.path == first.path
    assert list((DEPLOY / ".bundle").glob("x86_64-py3.12-*")) == [first.path]
    assert not list((DEPLOY / ".bundle").glob(".staging-*"))
    assert any("total unzipped" in line for line in logs) and any("pyarrow" in line for line in logs)
    with pytest.raises(BundleError, match="over the budget of 10 MiB"):
        build_bundle(DEPLOY / ".bundle", architecture="x86_64", budget_mb=10, log=logs.append)
    a = synth(tmp_path / "a", {"architecture": "x86_64"})[1].to_json()
    b = synth(tmp_path / "b", {"architecture": "x86_64"})[1].to_json()
    code = lambda tpl: [v["Properties"]["Code"] for k, v in tpl["Resources"].items() if k.startswith("Ingest") and v["Type"] == "AWS::Lambda::Function"]  # noqa: E731
    assert code(a) == code(b)


def _python_312() -> str | None:
    """A Python 3.12 that runs (pyenv's shim may exist without the version being active)."""
    for candidate in [*map(str, sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12"))), shutil.which("python3.12")]:
        if candidate and subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                                        capture_output=True).returncode == 0:
            return candidate
    return None


def test_x86_64_bundle_imports_and_transforms_under_python_312(all_on, tmp_path):
    python = _python_312()
    if python is None:
        pytest.skip("no Python 3.12 on this machine to run the Lambda runtime's version")
    [bundle] = (DEPLOY / ".bundle").glob("x86_64-py3.12-*")
    script = tmp_path / "smoke.py"
    script.write_text('''
import json, random, sys, tempfile
from pathlib import Path
import pyarrow.parquet as pq
from elt_sdk.plugins import load_registry
from elt_sdk.pipeline import Transformer
from elt_sdk.sink import LocalSink
from elt_sdk.source import LocalSource
reg = load_registry()
tmp = Path(tempfile.mkdtemp())
src = tmp / "in.jsonl"
recs = reg.hooks("invoice_lines").elt_fake_records(dataset=reg.dataset("invoice_lines"), rng=random.Random(1), count=200)
src.write_text("".join(json.dumps(r) + "\\n" for r in recs) + "{truncated\\n")
rep = Transformer(reg).transform_object(LocalSource.from_path(src, key="bronze/invoice_lines/in.jsonl"), LocalSink(tmp / "o"))
rows = sum(pq.ParquetFile(f).metadata.num_rows for f in (tmp / "o").rglob("*.parquet"))
print(json.dumps({"python": sys.version_info[:2], "datasets": sorted(reg.datasets), "broken": len(reg.broken),
                  "written": rows, "quarantined": rep.totals().quarantined, "pyarrow": __import__("pyarrow").__file__}))
''')
    proc = subprocess.run([python, "-S", str(script)], env={"PYTHONPATH": str(bundle), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["python"] == [3, 12] and out["broken"] == 0
    assert out["datasets"] == ["invoice_lines", "shipments", "tracking_events"]
    assert out["written"] == 200 and out["quarantined"] == 1
    assert out["pyarrow"].startswith(str(bundle))
