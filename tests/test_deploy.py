"""The CDK app: synthesized offline (no Docker, no AWS account) and asserted on.

The stacks are session fixtures (``synth_fixtures.py``): ``default_stack`` (every default),
``all_on_stack`` (every module, x86_64, a KMS key the stack creates) and ``second_stack``
(another deployment beside it, with a given KMS key ARN).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from synth_fixtures import DEPLOY, REPO

sys.path.insert(0, str(DEPLOY))

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Match  # noqa: E402

from elt_deploy import core  # noqa: E402
from elt_deploy.bundle import SDK_TRIM, BundleError, build_assets, build_bundle, build_wheel, find_python  # noqa: E402
from elt_deploy.bundle import _cache_lock, _fetch, imports_of_trimmed, plugin_manifest  # noqa: E402
from elt_deploy.stack import PipelineStack  # noqa: E402
from elt_sdk.aws.target import KNOWN_OUTPUTS  # noqa: E402
from elt_sdk.aws.target import normalise as _norm  # noqa: E402
from elt_sdk.verify import OUTPUTS  # noqa: E402

pytestmark = pytest.mark.synth

WRITE = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}
CONSUME = {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:DeleteMessage",
           "sqs:GetQueueAttributes"}


def resources(template, kind: str) -> dict:
    return template.find_resources(kind)


def logical(template, kind: str, prefix: str) -> str:
    """The one resource of ``kind`` whose logical id is ``prefix`` (its construct path) and CDK's hash."""
    [rid] = [k for k in resources(template, kind) if re.fullmatch(re.escape(prefix) + "[0-9A-F]{8}", k)]
    return rid


def _ref(value) -> tuple[str | None, str]:
    """(logical id, suffix) of an IAM resource: ``Bronze.../*`` -> ("Bronze...", "/*")."""
    if isinstance(value, str):
        return None, value
    if "Ref" in value:
        return value["Ref"], ""
    if "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0], ""
    if "Fn::Join" in value:
        parts = value["Fn::Join"][1]
        head = _ref(parts[0])[0] if not isinstance(parts[0], str) else None
        return head, "".join(p for p in parts[1:] if isinstance(p, str))
    raise AssertionError(f"unexpected resource form {value}")


def grants(template, fn_prefix: str) -> set[tuple[str, str | None, str]]:
    """Every (action, resource logical id, suffix) the role of function ``fn_prefix`` is allowed."""
    res = template.to_json()["Resources"]
    fn = res[fn_prefix if fn_prefix in res else logical(template, "AWS::Lambda::Function", fn_prefix)]
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    assert not res[role]["Properties"].get("ManagedPolicyArns"), f"{fn_prefix} has a managed policy"
    out = set()
    docs = [p["PolicyDocument"] for p in res[role]["Properties"].get("Policies", [])]
    docs += [v["Properties"]["PolicyDocument"] for v in res.values()
             if v["Type"] == "AWS::IAM::Policy" and {"Ref": role} in v["Properties"]["Roles"]]
    for doc in docs:
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow" and "Condition" not in st, st
            actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
            targets = st["Resource"] if isinstance(st["Resource"], list) else [st["Resource"]]
            out |= {(a, *_ref(r)) for a in actions for r in targets}
    return out


def on(template, prefix: str) -> str:
    return logical(template, "AWS::S3::Bucket", prefix)


# -- storage ---------------------------------------------------------------------------------

def test_buckets_are_versioned_encrypted_private_tls_only(default_stack, all_on_stack):
    _, t = default_stack
    t.resource_count_is("AWS::S3::Bucket", 3)
    t.all_resources_properties("AWS::S3::Bucket", {
        "VersioningConfiguration": {"Status": "Enabled"},
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
    })
    for _, tpl in (default_stack, all_on_stack):
        policies = resources(tpl, "AWS::S3::BucketPolicy").values()
        assert len(policies) == 3
        for policy in policies:
            deny = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
            assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in deny)
        for bucket in resources(tpl, "AWS::S3::Bucket").values():
            assert bucket["DeletionPolicy"] == "Retain"


def test_lifecycle_rules_per_bucket(default_stack):
    _, t = default_stack
    res = t.to_json()["Resources"]

    def rules(prefix: str) -> dict:
        found = res[on(t, prefix)]["Properties"]["LifecycleConfiguration"]["Rules"]
        return {r["Id"]: r for r in found}

    bronze, silver, quarantine = rules("Bronze"), rules("Silver"), rules("Quarantine")
    assert (bronze["expire-replay-copies"]["Prefix"], bronze["expire-replay-copies"]["ExpirationInDays"]) == ("bronze/replay/", 14)
    assert (silver["expire-staging"]["Prefix"], silver["expire-staging"]["ExpirationInDays"]) == ("_elt/staging/", 2)
    assert (quarantine["expire-staging"]["Prefix"], quarantine["expire-staging"]["ExpirationInDays"]) == ("_elt/staging/", 2)
    assert (quarantine["expire-quarantine"]["Prefix"], quarantine["expire-quarantine"]["ExpirationInDays"]) == ("quarantine/", 90)
    assert not any("Prefix" in r and r["Prefix"].startswith("quarantine") for r in silver.values())  # not in silver any more
    old = {name: r["expire-old-versions"]["NoncurrentVersionExpiration"]["NoncurrentDays"]
           for name, r in (("bronze", bronze), ("silver", silver), ("quarantine", quarantine))}
    assert old == {"bronze": 30, "silver": 30, "quarantine": 1}  # a deleted quarantined record goes within a day


def test_quarantine_bucket_policy_admits_only_the_transform_and_named_readers(default_stack, second_stack):
    for (_, t), readers in ((default_stack, []), (second_stack, ["arn:aws:iam::123456789012:role/QuarantineAnalyst"])):
        res = t.to_json()["Resources"]
        quarantine = on(t, "Quarantine")
        [policy] = [v["Properties"] for v in res.values()
                    if v["Type"] == "AWS::S3::BucketPolicy" and v["Properties"]["Bucket"] == {"Ref": quarantine}]
        [boundary] = [s for s in policy["PolicyDocument"]["Statement"] if s.get("Sid") == "OnlyThePipelineTouchesQuarantinedRecords"]
        assert boundary["Effect"] == "Deny" and boundary["Principal"] == {"AWS": "*"}
        assert {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= set(boundary["Action"])
        assert _ref(boundary["Resource"]) == (quarantine, "/*")
        allowed = boundary["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
        allowed = allowed if isinstance(allowed, list) else [allowed]
        transform_role = res[logical(t, "AWS::Lambda::Function", "Transform")]["Properties"]["Role"]
        assert allowed == [transform_role, *readers]
        # and no other function's role is granted anything on it
        for fn in resources(t, "AWS::Lambda::Function"):
            if not fn.startswith("Transform") and not fn.startswith("BucketNotificationsHandler"):
                assert not any(g[1] == quarantine for g in grants(t, fn)), fn


def test_kms_option_encrypts_every_bucket_and_grants_exactly_what_each_function_needs(default_stack, all_on_stack,
                                                                                     second_stack):
    default_stack[1].resource_count_is("AWS::KMS::Key", 0)
    _, t = all_on_stack
    t.resource_count_is("AWS::KMS::Key", 1)
    key = logical(t, "AWS::KMS::Key", "BucketKey")
    res = t.to_json()["Resources"]
    assert res[key]["Properties"]["EnableKeyRotation"] is True and res[key]["DeletionPolicy"] == "Retain"
    _, other = second_stack
    given = "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    other.resource_count_is("AWS::KMS::Key", 0)
    for tpl, expected in ((t, {"Fn::GetAtt": [key, "Arn"]}), (other, given)):
        for bucket in resources(tpl, "AWS::S3::Bucket").values():
            [rule] = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": expected}
            assert rule["BucketKeyEnabled"] is True
        key_id = key if tpl is t else None
        for fn in resources(tpl, "AWS::Lambda::Function"):
            if fn.startswith("BucketNotificationsHandler"):
                continue
            g = grants(tpl, fn)
            kms = {(a, r, s) for a, r, s in g if a.startswith("kms:")}
            assert all((r, s) == (key_id, "" if key_id else given) for _, r, s in kms), (fn, kms)
            reads = any(a == "s3:GetObject" for a, _, _ in g)
            writes = any(a == "s3:PutObject" for a, _, _ in g)
            assert {a for a, _, _ in kms} == ({"kms:Decrypt"} if reads or writes else set()) | (
                {"kms:GenerateDataKey"} if writes else set()), fn
    with pytest.raises(ValueError, match="not an alias"):
        PipelineStack._bucket_key(cdk.Stack(cdk.App(), "AliasStack"), "arn:aws:kms:us-east-2:123456789012:alias/mine")


def test_table_queue_and_dlq_settings(default_stack):
    _, t = default_stack
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


# -- functions -------------------------------------------------------------------------------

def test_functions_runtime_architecture_sizing_assets_and_environment(default_stack, all_on_stack):
    for (stack, t), arch in ((default_stack, "arm64"), (all_on_stack, "x86_64")):
        res = t.to_json()["Resources"]
        fns = {k: v["Properties"] for k, v in res.items()
               if v["Type"] == "AWS::Lambda::Function" and not k.startswith("BucketNotificationsHandler")}
        for props in fns.values():
            assert props["Runtime"] == "python3.12" and props["Architectures"] == [arch]
            env = props["Environment"]["Variables"]
            assert env["ELT_LOG_LEVEL"] == "INFO" and env["ELT_BRONZE_PREFIX"] == "bronze/"  # what handlers read
        ingest = fns[logical(t, "AWS::Lambda::Function", "Ingest")]
        transform = fns[logical(t, "AWS::Lambda::Function", "Transform")]
        assert {"ELT_BRONZE_BUCKET", "ELT_QUEUE_URL", "ELT_IDEMPOTENCY_TABLE", "IDEMPOTENCY_TTL_SECONDS",
                "ELT_CHUNK_BYTES"} <= set(ingest["Environment"]["Variables"])
        assert "ELT_SILVER_BUCKET" not in ingest["Environment"]["Variables"]
        tenv = transform["Environment"]["Variables"]
        assert {"ELT_BRONZE_BUCKET", "ELT_SILVER_BUCKET", "ELT_QUARANTINE_BUCKET", "ELT_DLQ_URL",
                "ELT_MAX_LINE_BYTES", "ELT_MAX_OBJECT_BYTES", "ELT_MAX_EXPANSION_RATIO"} <= set(tenv)
        assert _ref(tenv["ELT_QUARANTINE_BUCKET"])[0] == on(t, "Quarantine")
        assert _ref(tenv["ELT_DLQ_URL"])[0] == logical(t, "AWS::SQS::Queue", "ObjectsDlq")
        assert ingest["Environment"]["Variables"]["IDEMPOTENCY_TTL_SECONDS"] == str(30 * 86400)
        # ingest runs on the light asset, the transform on the full one: two different code objects
        light, full = stack.assets["light"], stack.assets["full"]
        assert ingest["Code"] != transform["Code"] and light.total_bytes * 20 < full.total_bytes
    transform = resources(all_on_stack[1], "AWS::Lambda::Function")[logical(all_on_stack[1], "AWS::Lambda::Function", "Transform")]
    assert transform["Properties"]["Timeout"] == 90 and transform["Properties"]["ReservedConcurrentExecutions"] == 20
    main = next(q["Properties"] for q in resources(all_on_stack[1], "AWS::SQS::Queue").values() if "RedrivePolicy" in q["Properties"])
    assert main["VisibilityTimeout"] == 540


def test_every_function_the_stack_creates_has_a_log_group_with_retention(default_stack, all_on_stack):
    for _, t in (default_stack, all_on_stack):
        res = t.to_json()["Resources"]
        fns = resources(t, "AWS::Lambda::Function")
        assert any(k.startswith("BucketNotificationsHandler") for k in fns)  # CDK's own helper is covered
        for rid, fn in fns.items():
            group = fn["Properties"].get("LoggingConfig", {}).get("LogGroup")
            assert group is not None, f"{rid} logs to a group with no retention"
            [group_id] = [v for v in group.values()] if "Ref" in group else [group["Fn::GetAtt"][0]]
            assert res[group_id]["Type"] == "AWS::Logs::LogGroup"
            assert res[group_id]["Properties"]["RetentionInDays"] == 30, rid  # (the Ref: created before the function)


def test_iam_least_privilege(default_stack, all_on_stack):
    star_ok = {("s3:PutBucketNotification",)}  # CDK's notification handler: the API has no narrower resource
    for _, t in (default_stack, all_on_stack):
        for res in [*resources(t, "AWS::IAM::Policy").values(), *resources(t, "AWS::IAM::Role").values()]:
            docs = [res["Properties"].get("PolicyDocument")] + [p["PolicyDocument"] for p in res["Properties"].get("Policies", [])]
            for doc in filter(None, docs):
                for st in doc["Statement"]:
                    actions = st["Action"] if isinstance(st["Action"], list) else [st["Action"]]
                    assert all(a != "*" and not a.endswith(":*") for a in actions), actions
                    if st.get("Resource") == "*" or "*" in (st.get("Resource") or []):
                        assert tuple(sorted(actions)) in star_ok, actions
    _, t = default_stack
    bronze, silver, quarantine = on(t, "Bronze"), on(t, "Silver"), on(t, "Quarantine")
    dlq, queue = logical(t, "AWS::SQS::Queue", "ObjectsDlq"), logical(t, "AWS::SQS::Queue", "Objects")
    table = logical(t, "AWS::DynamoDB::Table", "Idempotency")
    logs_of = lambda name: {(a, logical(t, "AWS::Logs::LogGroup", f"{name}Logs"), "")  # noqa: E731
                            for a in ("logs:CreateLogStream", "logs:PutLogEvents")}
    transform = {("s3:GetObject", bronze, "/*"), ("s3:ListBucket", bronze, ""),
                 *{(a, silver, p) for a in WRITE for p in ("/silver/*", "/_elt/*")}, ("s3:ListBucket", silver, ""),
                 *{(a, quarantine, p) for a in WRITE for p in ("/quarantine/*", "/_elt/*")},
                 ("s3:ListBucket", quarantine, ""), ("sqs:SendMessage", dlq, ""),
                 *{(a, queue, "") for a in CONSUME}, *logs_of("Transform")}
    assert grants(t, "Transform") == transform  # exactly: nothing more
    deletes = {(r, s) for a, r, s in grants(t, "Transform") if a == "s3:DeleteObject"}
    assert deletes == {(silver, "/silver/*"), (silver, "/_elt/*"), (quarantine, "/quarantine/*"), (quarantine, "/_elt/*")}
    failures = logical(t, "AWS::SQS::Queue", "IngestFailures")  # where Lambda puts events ingest gave up on
    ingest = {("s3:GetObject", bronze, "/*"), ("s3:ListBucket", bronze, ""), ("sqs:SendMessage", queue, ""),
              *{(a, failures, "") for a in ("sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl")},
              *{(a, table, "") for a in ("dynamodb:PutItem", "dynamodb:DeleteItem",
                                          "dynamodb:GetItem")}, *logs_of("Ingest")}
    assert grants(t, "Ingest") == ingest  # no silver, no quarantine, no writes to S3
    _, full = all_on_stack
    key = logical(full, "AWS::KMS::Key", "BucketKey")
    events = {g for g in grants(full, "Transform") if g[0] == "events:PutEvents"}
    assert len(events) == 1 and {g for g in grants(full, "Transform") if g[0].startswith("kms:")} == {
        ("kms:Decrypt", key, ""), ("kms:GenerateDataKey", key, "")}


def test_optional_functions_write_only_their_own_prefixes(all_on_stack):
    _, t = all_on_stack
    silver, bronze = on(t, "Silver"), on(t, "Bronze")
    writes = lambda fn: {(a, r, s) for a, r, s in grants(t, fn) if a in ("s3:PutObject", "s3:DeleteObject")}  # noqa: E731
    assert writes("CompactPartition") == {(a, silver, p) for a in ("s3:PutObject", "s3:DeleteObject")
                                          for p in ("/silver/*", "/_elt/*")}  # in place, through the commit protocol
    assert writes("QualityCheck") == {("s3:PutObject", silver, "/quality/*")}
    assert writes("OpsReplay") == {("s3:PutObject", bronze, "/bronze/replay/*")}
    assert writes("OpsPoll") == set()
    res = t.to_json()["Resources"]
    for fn in ("CompactPartition", "QualityCheck"):  # partitions go through /tmp: more than the default 512 MiB
        assert res[logical(t, "AWS::Lambda::Function", fn)]["Properties"]["EphemeralStorage"] == {"Size": 4096}


def test_notification_and_event_source(default_stack):
    _, t = default_stack
    t.has_resource_properties("Custom::S3BucketNotifications", {"NotificationConfiguration": {
        "LambdaFunctionConfigurations": [Match.object_like({
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "bronze/"}]}}})]}})
    t.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 10, "MaximumBatchingWindowInSeconds": 5, "FunctionResponseTypes": ["ReportBatchItemFailures"]})
    t.has_resource_properties("AWS::Lambda::EventInvokeConfig", {"MaximumRetryAttempts": 2})


# -- outputs and names -----------------------------------------------------------------------

CORE_OUTPUTS = {"BronzeBucket", "SilverBucket", "QuarantineBucket", "QueueUrl", "DlqUrl", "IngestFailuresUrl",
                "IngestLambda", "TransformLambda", "IdempotencyTable", "Region"}


def test_outputs_name_every_resource_an_operator_needs(default_stack, all_on_stack, iceberg_stack):
    assert set(default_stack[1].to_json()["Outputs"]) == CORE_OUTPUTS | {"Dashboard"}
    _, t = all_on_stack
    outputs = {k: v["Value"] for k, v in t.to_json()["Outputs"].items()}
    assert set(outputs) == CORE_OUTPUTS | {"Dashboard", "GlueDatabase", "AlarmTopic", "BucketKmsKey", "CompactionLambda",
                                           "OpsReplayLambda", "OpsPollLambda", "OpsStateMachine", "QualityCheckLambda",
                                           "QualityGateStateMachine"}
    res = t.to_json()["Resources"]
    points_to = {"BronzeBucket": ("AWS::S3::Bucket", "Bronze"), "SilverBucket": ("AWS::S3::Bucket", "Silver"),
                 "QuarantineBucket": ("AWS::S3::Bucket", "Quarantine"), "QueueUrl": ("AWS::SQS::Queue", "Objects"),
                 "DlqUrl": ("AWS::SQS::Queue", "ObjectsDlq"), "IngestFailuresUrl": ("AWS::SQS::Queue", "IngestFailures"),
                 "IngestLambda": ("AWS::Lambda::Function", "Ingest"), "TransformLambda": ("AWS::Lambda::Function", "Transform"),
                 "CompactionLambda": ("AWS::Lambda::Function", "CompactPartition"),
                 "OpsReplayLambda": ("AWS::Lambda::Function", "OpsReplay"), "OpsPollLambda": ("AWS::Lambda::Function", "OpsPoll"),
                 "QualityCheckLambda": ("AWS::Lambda::Function", "QualityCheck"),
                 "OpsStateMachine": ("AWS::StepFunctions::StateMachine", "OpsStateMachine"),
                 "QualityGateStateMachine": ("AWS::StepFunctions::StateMachine", "QualityStateMachine"),
                 "IdempotencyTable": ("AWS::DynamoDB::Table", "Idempotency"), "AlarmTopic": ("AWS::SNS::Topic", "ObservabilityAlarms"),
                 "BucketKmsKey": ("AWS::KMS::Key", "BucketKey")}
    for name, (kind, prefix) in points_to.items():
        rid = _ref(outputs[name])[0]
        assert res[rid]["Type"] == kind and rid.startswith(prefix), (name, rid)
    assert outputs["Region"] == {"Ref": "AWS::Region"}
    [db] = resources(t, "AWS::Glue::Database").values()
    [dash] = resources(t, "AWS::CloudWatch::Dashboard").values()
    assert outputs["GlueDatabase"] == db["Properties"]["DatabaseInput"]["Name"] == "elt_sdk_silver"
    assert outputs["Dashboard"] == dash["Properties"]["DashboardName"] == "elt-sdk-pipeline"
    # elt_sdk.aws.deployed reads each output under its snake-case key, and verify's list is covered
    iceberg_outputs = set(iceberg_stack[1].to_json()["Outputs"])
    assert {_norm(k) for k in set(outputs) | iceberg_outputs} == {_norm(core.OUTPUT_NAMES[k]) for k in core.OUTPUT_NAMES}
    assert all(_norm(camel) == _norm(snake) for snake, camel in core.OUTPUT_NAMES.items())
    assert {_norm(k) for k in OUTPUTS} <= {_norm(k) for k in outputs}
    assert set(core.OUTPUT_NAMES) <= set(KNOWN_OUTPUTS)  # the operational commands read every output by name


# Properties that give a resource a physical name of its own (unique per account and region).
PHYSICAL_NAMES = ("BucketName", "QueueName", "TableName", "FunctionName", "RoleName", "StateMachineName", "TopicName",
                  "LogGroupName", "AlarmName", "DashboardName", "AliasName")


def _physical_names(template: dict) -> set[tuple[str, str]]:
    names = set()
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        for key in PHYSICAL_NAMES:
            if isinstance(props.get(key), str):
                names.add((res["Type"], props[key]))
        if res["Type"] == "AWS::Events::Rule" and isinstance(props.get("Name"), str):
            names.add((res["Type"], props["Name"]))
        if res["Type"] == "AWS::Glue::Database":
            names.add((res["Type"], props["DatabaseInput"]["Name"]))
    return names


def test_two_stacks_side_by_side_share_no_name(all_on_stack, second_stack):
    first, second = _physical_names(all_on_stack[1].to_json()), _physical_names(second_stack[1].to_json())
    assert {"elt_sdk_silver", "elt-sdk-pipeline"} <= {n for _, n in first}
    assert {"analytics_prod_silver", "analytics-prod-pipeline"} <= {n for _, n in second}
    assert first & second == set()
    # each stack's quality gate listens to its own partitions only, on a bus both may share
    for stack, t in (all_on_stack, second_stack):
        [rule] = [r["Properties"] for r in resources(t, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]]
        assert rule["EventPattern"]["detail"] == {"bucket": [{"Ref": on(t, "Silver")}]}
        tables = {v["Properties"]["DatabaseName"] for v in resources(t, "AWS::Glue::Table").values()}
        assert tables == {f"{stack.stack_name.replace('-', '_')}_silver"}


def test_optional_modules(default_stack, all_on_stack):
    _, off = default_stack
    _, t = all_on_stack
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


def test_iceberg_committer_its_queues_and_exactly_its_permissions(iceberg_stack, default_stack):
    stack, t = iceberg_stack
    res = t.to_json()["Resources"]
    fn = lambda name: res[logical(t, "AWS::Lambda::Function", name)]["Properties"]  # noqa: E731
    committer, transform, maintenance = fn("Committer"), fn("Transform"), fn("IcebergMaintenance")
    assert committer["Handler"] == "elt_sdk.aws.handlers.commit_handler" and committer["ReservedConcurrentExecutions"] == 1
    assert committer["Code"] == maintenance["Code"] != transform["Code"]  # the iceberg asset; the transform's is untouched
    assert stack.assets["full"].path.name.startswith("full-") and "pyiceberg-0.12.0" not in stack.assets["full"].by_distribution
    assert {d.split("-")[0] for d in stack.assets["iceberg"].by_distribution} >= {"pyiceberg", "pyarrow", "elt_sdk"}
    assert not {"sqlalchemy", "pyiceberg_core", "elt_shipments"} & {d.rsplit("-", 1)[0].lower()
                                                                  for d in stack.assets["iceberg"].by_distribution}
    env = committer["Environment"]["Variables"]
    assert env["ELT_ICEBERG_CATALOG"] == "glue" and env["ELT_ICEBERG_DATABASE"] == "elt_sdk_silver"
    assert env["ELT_SILVER_FORMAT"] == "iceberg"
    silver, quarantine = on(t, "Silver"), on(t, "Quarantine")
    commits, commit_dlq = logical(t, "AWS::SQS::Queue", "IcebergCommits"), logical(t, "AWS::SQS::Queue", "IcebergCommitsDlq")
    assert _ref(transform["Environment"]["Variables"]["ELT_COMMIT_QUEUE_URL"])[0] == commits
    assert ("sqs:SendMessage", commits, "") in grants(t, "Transform")
    t.has_resource_properties("AWS::Lambda::EventSourceMapping", {
        "BatchSize": 100, "MaximumBatchingWindowInSeconds": 10, "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "EventSourceArn": {"Fn::GetAtt": [commits, "Arn"]}})
    assert res[commits]["Properties"]["VisibilityTimeout"] == 6 * 300
    key = logical(t, "AWS::KMS::Key", "BucketKey")
    glue = {"glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"}
    expected = {*{(a, silver, "/silver/*") for a in WRITE}, ("s3:GetObject", silver, "/_elt/objects/*"),
                ("s3:PutObject", silver, "/_elt/objects/*"), ("s3:ListBucket", silver, ""),
                ("s3:PutObject", quarantine, "/quarantine/_failed/*"), ("sqs:SendMessage", commit_dlq, ""),
                *{(a, commits, "") for a in CONSUME}, ("kms:Decrypt", key, ""), ("kms:GenerateDataKey", key, ""),
                *{(a, logical(t, "AWS::Logs::LogGroup", "CommitterLogs"), "") for a in ("logs:CreateLogStream",
                                                                                        "logs:PutLogEvents")}}
    got = grants(t, "Committer")
    assert {g for g in got if not g[0].startswith("glue:")} == expected  # exactly: nothing more
    glue_targets = {g[2] for g in got if g[0].startswith("glue:")}
    assert {g[0] for g in got if g[0].startswith("glue:")} == glue
    assert {suffix.rsplit(":", 1)[-1] for suffix in glue_targets} == {"catalog", "database/elt_sdk_silver",
                                                                      "table/elt_sdk_silver/*"}
    assert {g[0] for g in grants(t, "IcebergMaintenance") if g[0].startswith("glue:")} == {
        "glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:UpdateTable"}
    assert {(a, r, p) for a, r, p in grants(t, "IcebergMaintenance") if a.startswith("s3:")} == {
        *{(a, silver, "/silver/*") for a in WRITE}, ("s3:ListBucket", silver, "")}
    # the committer may write failure markers past the quarantine bucket's boundary; nobody else new may
    [policy] = [p for p in resources(t, "AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": quarantine}]
    [deny] = [st for st in policy["Properties"]["PolicyDocument"]["Statement"] if st.get("Sid")]
    allowed = {_ref(a)[0] for a in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]}
    assert allowed == {committer["Role"]["Fn::GetAtt"][0], transform["Role"]["Fn::GetAtt"][0]}
    # the tables are the committer's to create: the database only, no Hive tables
    t.resource_count_is("AWS::Glue::Database", 1)
    t.resource_count_is("AWS::Glue::Table", 0)
    assert any(r["Properties"].get("ScheduleExpression") == "rate(1 day)" for r in resources(t, "AWS::Events::Rule").values())
    outputs = t.to_json()["Outputs"]
    assert _ref(outputs["CommitQueueUrl"]["Value"])[0] == commits
    assert {"CommitDlqUrl", "CommitterLambda", "IcebergMaintenanceLambda", "GlueDatabase"} <= set(outputs)
    described = {a["Properties"]["AlarmDescription"] for a in resources(t, "AWS::CloudWatch::Alarm").values()}
    assert {"committer function errors", "commit messages in the committer's DLQ: objects whose rows never became "
            "visible"} <= described
    # and a plain stack has none of it
    assert not [k for k in resources(default_stack[1], "AWS::SQS::Queue") if k.startswith("Iceberg")]


def test_settings_that_only_act_on_plain_parquet_are_refused_with_iceberg():
    from elt_sdk.settings import Settings, SettingsError

    for name in ("compaction_enabled", "quality_enabled", "emit_partition_events"):
        with pytest.raises(SettingsError, match=f"{name} = true does not go with silver_format = iceberg"):
            Settings(silver_format="iceberg", **{name: True})


@pytest.mark.parametrize("which", ["default_stack", "all_on_stack", "second_stack", "iceberg_stack"])
def test_cfn_lint_passes(which, request, tmp_path):
    _, t = request.getfixturevalue(which)
    path = tmp_path / "template.json"
    path.write_text(json.dumps(t.to_json()))
    # W3005 (ignored): CDK writes DependsOn entries that are also implied by Ref/GetAtt
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    proc = subprocess.run([str(cfn_lint), "-i", "W3005", "--", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- the Lambda assets -----------------------------------------------------------------------

def _in_ci() -> bool:
    return bool(os.environ.get("CI"))


def test_full_asset_carries_every_installed_plugin_and_the_manifest(default_stack, all_on_stack):
    manifest = plugin_manifest()
    assert {d["name"] for d in manifest["datasets"]} == {"shipments", "tracking_events", "invoice_lines"}
    for stack, _ in (default_stack, all_on_stack):
        full, light = stack.assets["full"].path, stack.assets["light"].path
        assert full.name.startswith(f"full-{stack.settings.architecture}-py312-")
        assert (full / "elt_sdk" / "aws" / "handlers.py").exists()
        for name, package in (("shipments", "elt_shipments"), ("tracking_events", "elt_tracking_events"),
                              ("invoice_lines", "elt_invoice_lines")):
            assert (full / package / "schema.json").exists()
            eps = next(full.glob(f"{package}-*.dist-info")) / "entry_points.txt"
            assert f"[elt_sdk]\n{name} = {package}" in eps.read_text()
            [entry] = [e for e in manifest["entry_points"] if e["name"] == name]
            assert (entry["value"], entry["version"]) == (package, "1.0.0")
        for asset in (full, light):
            assert json.loads((asset / "elt_sdk" / "bundled.json").read_text()) == manifest
        assert not list(full.glob("boto3*")) and not (full / "pyarrow" / "include").exists()
        # light: the SDK and pluggy, nothing for records (no pyarrow, fastjsonschema or plugin code)
        top = {p.name.split("-")[0] for p in light.iterdir()}
        assert top == {"elt_sdk", "pluggy"}, top


def test_assets_carry_no_cli_testing_kit_templates_or_scripts(default_stack, all_on_stack):
    for stack, _ in (default_stack, all_on_stack):
        for report in stack.assets.values():
            root = report.path
            for trimmed in SDK_TRIM:
                assert not (root / trimmed).exists(), trimmed
            assert not list(root.glob("click*")) and not list(root.glob("jinja2*")) and not list(root.glob("markupsafe*"))
            assert not (root / "bin").exists()
            assert imports_of_trimmed(root) == []  # nothing left imports what is gone
            eps = next(root.glob("elt_sdk-*.dist-info")).joinpath("entry_points.txt")
            assert not eps.exists() or "console_scripts" not in eps.read_text() and "pytest11" not in eps.read_text()
            for record in root.glob("*.dist-info/RECORD"):  # the metadata lists only what is there
                for line in record.read_text().splitlines():
                    assert (root / line.rsplit(",", 2)[0]).exists(), line
            for path in [root, *root.rglob("*")]:  # Lambda's runtime user reads everything
                mode = path.stat().st_mode
                assert mode & 0o004 and (not path.is_dir() or mode & 0o001), path


def _pyc_header(path: Path) -> tuple[bytes, int]:
    data = path.read_bytes()[:8]
    return data[:4], int.from_bytes(data[4:8], "little")


def test_assets_carry_pyc_for_lambdas_python_that_stay_valid_after_unzipping(default_stack, all_on_stack):
    python = find_python("3.12")
    if python is None:
        assert not _in_ci(), "CI must have a Python 3.12 to compile the assets"
        pytest.skip("no Python 3.12 here: the assets carry no .pyc (see the synth report)")
    magic = bytes.fromhex(subprocess.run([python, "-I", "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
                                         capture_output=True, text=True, check=True).stdout.strip())
    for stack, _ in (default_stack, all_on_stack):
        for report in stack.assets.values():
            assert report.compiled.startswith("CPython 3.12")
            sources = [p for p in report.path.rglob("*.py") if "pyarrow/vendored" not in str(p)]
            assert len(sources) > 50
            for src in sources:
                pyc = src.parent / "__pycache__" / f"{src.stem}.cpython-312.pyc"
                assert pyc.exists(), src
                head, flags = _pyc_header(pyc)
                assert head == magic and flags == 0b01, (pyc, flags)  # hash-based, never checked against the source
            assert not list(report.path.rglob("*.cpython-311.pyc"))  # nothing of the build machine's Python


def test_one_builder_at_a_time_in_a_bundle_cache(tmp_path):
    """A second synth (another terminal, a parallel test worker) waits for the first one's build
    instead of building the same asset beside it and deleting the folder it hashes."""
    import threading

    order: list[str] = []
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with _cache_lock(tmp_path / "cache"):
            order.append("first in")
            holding.set()
            release.wait(10)
            order.append("first out")

    def second() -> None:
        holding.wait(10)
        with _cache_lock(tmp_path / "cache"):
            order.append("second in")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    holding.wait(10)
    threads[1].join(0.3)
    assert threads[1].is_alive() and "second in" not in order  # it is waiting for the lock
    release.set()
    for t in threads:
        t.join(10)
    assert order == ["first in", "first out", "second in"]


def test_bundle_is_cached_and_its_hash_stable(default_stack, all_on_stack, tmp_path):
    logs: list[str] = []
    first = build_bundle(DEPLOY / ".bundle", asset="full", architecture="x86_64", log=logs.append)
    second = build_bundle(DEPLOY / ".bundle", asset="full", architecture="x86_64", log=logs.append)
    assert second.cached and second.path == first.path == all_on_stack[0].assets["full"].path
    assert [p for p in (DEPLOY / ".bundle").glob("full-x86_64-py312-*") if p.is_dir()] == [first.path]
    assert not list((DEPLOY / ".bundle").glob(".staging-full-x86_64-*"))
    assert any("total unzipped" in line for line in logs) and any("pyarrow" in line for line in logs)
    with pytest.raises(BundleError, match="over the budget of 10 MiB"):
        build_bundle(DEPLOY / ".bundle", architecture="x86_64", budget_mb=10, log=logs.append)
    from synth_fixtures import synth

    a = synth(tmp_path / "a", {"architecture": "x86_64"})[1].to_json()
    code = lambda tpl: {k[:6]: v["Properties"]["Code"] for k, v in tpl["Resources"].items()  # noqa: E731
                        if v["Type"] == "AWS::Lambda::Function" and k.startswith(("Ingest", "Transf"))}
    assert code(a) == code(all_on_stack[1].to_json())  # same inputs, same asset hashes


def test_building_a_plugin_leaves_its_sources_untouched(tmp_path):
    src = tmp_path / "shipments"
    shutil.copytree(REPO / "plugins" / "shipments", src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    before = sorted(str(p.relative_to(src)) for p in src.rglob("*"))
    out = tmp_path / "wheels"
    out.mkdir()
    build_wheel(src, out)
    assert [w.name for w in out.glob("*.whl")] == ["elt_shipments-1.0.0-py3-none-any.whl"]
    assert sorted(str(p.relative_to(src)) for p in src.rglob("*")) == before  # no build/, no *.egg-info


@pytest.fixture
def no_index(monkeypatch):
    """pip pointed at an index that refuses every connection: anything fetched online fails."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")


def test_once_the_wheels_are_fetched_assets_build_offline(all_on_stack, tmp_path, no_index):
    wheelhouse = DEPLOY / ".bundle" / "wheels" / "x86_64-py3.12"
    pins = sorted(f"{w.name.split('-')[0]}=={w.name.split('-')[1]}" for w in wheelhouse.glob("*.whl"))
    assert any(p.startswith("pyarrow==") for p in pins)
    cache = tmp_path / "bundle"
    shutil.copytree(wheelhouse, cache / "wheels" / "x86_64-py3.12")
    logs: list[str] = []
    _fetch(cache / "wheels" / "x86_64-py3.12", "x86_64", "3.12", pins, logs.append)  # all there: no download
    light = build_assets(cache, assets=("light",), architecture="x86_64", log=logs.append)["light"]
    assert not light.cached and (light.path / "pluggy").is_dir()
    assert not any(line.startswith("fetching") for line in logs)
    with pytest.raises(BundleError, match="needs PyPI"):  # and the check is real: a missing wheel is fetched online
        _fetch(tmp_path / "empty", "x86_64", "3.12", ["pluggy==1.7.0"], logs.append)


def test_cdk_json_runs_the_projects_venv_and_fails_in_one_line(all_on_stack, tmp_path):
    app = json.loads((DEPLOY / "cdk.json").read_text())["app"]
    fake = tmp_path / "other-venv" / "bin"
    fake.mkdir(parents=True)
    for name in ("python", "python3"):  # another virtualenv, active in the user's shell
        (fake / name).write_text("#!/bin/sh\necho 'not the project venv' >&2\nexit 3\n")
        (fake / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("ELT_PYTHON",)}
    env.update(PATH=f"{fake}:{env.get('PATH', '/usr/bin:/bin')}", VIRTUAL_ENV=str(fake.parent),
               CDK_OUTDIR=str(tmp_path / "out"), CDK_CONTEXT_JSON=json.dumps({"architecture": "x86_64",
                                                                                "stack_name": "elt-sdk"}))
    if (REPO / ".venv" / "bin" / "python").exists():
        run = lambda **extra: subprocess.run(shlex.split(app), cwd=DEPLOY, env={**env, **extra},  # noqa: E731
                                             capture_output=True, text=True, timeout=600)
        proc = run()
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert (tmp_path / "out" / "elt-sdk.template.json").exists()
        proc = run(CDK_CONTEXT_JSON=json.dumps({"architecture": "x86_64", "bundle_budget_mb": 10}))
        assert proc.returncode == 1
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith("synth failed: the full Lambda asset is") and "budget of 10 MiB" in last
        proc = run(CDK_CONTEXT_JSON=json.dumps({"glue_enabeld": "true"}))  # a typo is refused, not ignored
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines()[-1] == "synth failed: unknown setting(s) in CDK context: glue_enabeld"
    proc = subprocess.run(shlex.split(app), cwd=DEPLOY, env={**env, "ELT_PYTHON": str(tmp_path / "nope")},
                          capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"synth failed: {tmp_path / 'nope'} not found: run 'make setup' in {REPO} first, or set ELT_PYTHON"]
