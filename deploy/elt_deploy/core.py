"""What the pipeline stack and its optional modules build with: the core resources and the helpers
that give a function its role, log group, environment and exact permissions.

``stack.py`` creates the core resources into a ``Pipeline`` and hands it to each optional module
(``glue``, ``observability``, ``ops``, ``quality_gate``, ``compaction``); the modules import from
here, never from ``stack.py``, so there is no import circle.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from elt_sdk import layout
from elt_sdk.plugins import Registry
from elt_sdk.settings import Settings

RETENTION = {1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
             7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
             60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS,
             180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR}

META_PREFIX: str = layout.META_PREFIX
"""Commit records (manifests, chunk records, staged files of attempts in flight): ``layout.META_PREFIX``."""
STAGING_PREFIX = META_PREFIX + "staging/"
QUALITY_PREFIX = "quality/"

# Each CloudFormation output, by the key ``elt_sdk.aws.deployed`` normalises it to (case and '_'
# ignored: ``bronze_bucket`` reads ``BronzeBucket``).
OUTPUT_NAMES = {
    "bronze_bucket": "BronzeBucket", "silver_bucket": "SilverBucket", "quarantine_bucket": "QuarantineBucket",
    "queue_url": "QueueUrl", "dlq_url": "DlqUrl", "ingest_failures_url": "IngestFailuresUrl",
    "ingest_lambda": "IngestLambda", "transform_lambda": "TransformLambda", "idempotency_table": "IdempotencyTable",
    "region": "Region", "bucket_kms_key": "BucketKmsKey",
    "compaction_lambda": "CompactionLambda", "ops_replay_lambda": "OpsReplayLambda", "ops_poll_lambda": "OpsPollLambda",
    "ops_state_machine": "OpsStateMachine", "quality_check_lambda": "QualityCheckLambda",
    "quality_gate_state_machine": "QualityGateStateMachine", "glue_database": "GlueDatabase",
    "dashboard": "Dashboard", "alarm_topic": "AlarmTopic",
    "commit_queue_url": "CommitQueueUrl", "commit_dlq_url": "CommitDlqUrl", "committer_lambda": "CommitterLambda",
    "iceberg_maintenance_lambda": "IcebergMaintenanceLambda",
}

READ = ("s3:GetObject",)
WRITE = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")


@dataclass(frozen=True)
class FunctionSpec:
    """One Lambda function: ``asset`` is ``full`` (SDK, plugins, pyarrow), ``light`` (SDK only) or
    ``iceberg`` (SDK, pyarrow, pyiceberg: the committer and Iceberg maintenance)."""

    name: str
    handler: str
    memory_mb: int
    timeout_s: int
    reserved: int | None = None
    asset: str = "full"
    ephemeral_mb: int | None = None


def retention(days: int) -> logs.RetentionDays:
    if days not in RETENTION:
        raise ValueError(f"log_retention_days={days}: choose one of {sorted(RETENTION)}")
    return RETENTION[days]


def unique_name(stack: cdk.Stack, suffix: str, *, sep: str = "-") -> str:
    """A name unique per account and region, derived from the stack's name (two stacks side by side
    never collide). ``sep='_'`` gives a Glue-style name (lowercase letters, digits, '_')."""
    base = stack.stack_name if sep == "-" else re.sub(r"[^a-z0-9_]", "_", stack.stack_name.lower())
    return f"{base}{sep}{suffix}"


@dataclass
class Pipeline:
    """The core resources, and how functions on them are made and granted."""

    stack: cdk.Stack
    settings: Settings
    registry: Registry
    code: dict[str, lambda_.Code]
    key: kms.IKey | None
    bronze: s3.Bucket = None  # type: ignore[assignment]  (set by the stack, before any module runs)
    silver: s3.Bucket = None  # type: ignore[assignment]
    quarantine: s3.Bucket = None  # type: ignore[assignment]
    functions: dict[str, lambda_.Function] = field(default_factory=dict)
    alarm_topic: object | None = None
    _kms: dict[str, tuple[lambda_.Function, set[str]]] = field(default_factory=dict)

    def function(self, spec: FunctionSpec, env: dict[str, str]) -> lambda_.Function:
        """A function on its asset, with its own role and log group (retention set), no managed
        policy, and the settings handlers read in its environment."""
        cfg = self.settings
        scope = self.stack
        role = iam.Role(scope, f"{spec.name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"elt-sdk {spec.name.lower()} function")
        log_group = logs.LogGroup(scope, f"{spec.name}Logs", retention=retention(cfg.log_retention_days),
                                  removal_policy=RemovalPolicy.DESTROY)
        log_group.grant_write(role)
        fn = lambda_.Function(
            scope, spec.name,
            runtime=lambda_.Runtime(f"python{cfg.python_runtime}", lambda_.RuntimeFamily.PYTHON),
            architecture=lambda_.Architecture.ARM_64 if cfg.architecture == "arm64" else lambda_.Architecture.X86_64,
            handler=spec.handler, code=self.code[spec.asset], role=role, log_group=log_group,
            memory_size=spec.memory_mb, timeout=Duration.seconds(spec.timeout_s),
            reserved_concurrent_executions=spec.reserved, environment={**cfg.lambda_environment(), **env},
            ephemeral_storage_size=Size.mebibytes(spec.ephemeral_mb) if spec.ephemeral_mb else None,
            description=f"elt-sdk {spec.name.lower()} ({spec.handler})",
        )
        self.functions[spec.name] = fn
        return fn

    def allow(self, fn: lambda_.Function, actions: Iterable[str], resources: list[str],
              conditions: dict | None = None) -> None:
        fn.add_to_role_policy(iam.PolicyStatement(actions=sorted(set(actions)), resources=resources,
                                                  conditions=conditions))

    def objects(self, fn: lambda_.Function, bucket: s3.IBucket, actions: Iterable[str], prefixes: Iterable[str]) -> None:
        """``actions`` on the objects under ``prefixes`` (``""``: the whole bucket), and the KMS
        actions they need when the buckets have a customer-managed key."""
        actions = sorted(set(actions))
        self.allow(fn, actions, [bucket.arn_for_objects(p + "*") for p in prefixes])
        if self.key is not None:
            needed = {"kms:Decrypt"}  # reading, and completing a multipart upload
            if any(a in ("s3:PutObject",) for a in actions):
                needed.add("kms:GenerateDataKey")
            entry = self._kms.setdefault(fn.node.addr, (fn, set()))
            entry[1].update(needed)

    def list_bucket(self, fn: lambda_.Function, bucket: s3.IBucket) -> None:
        """Listing, which also makes a missing key answer 404 NoSuchKey, not 403 AccessDenied. Not
        narrowed by ``s3:prefix``: S3's 404-or-403 check for a missing key carries no prefix, and
        the commit protocol reads keys that may not exist yet."""
        self.allow(fn, ["s3:ListBucket"], [bucket.bucket_arn])

    def output(self, key: str, value: str, description: str | None = None) -> None:
        cdk.CfnOutput(self.stack, OUTPUT_NAMES[key], value=value, description=description or key)

    def finalize(self) -> None:
        """Once every construct exists: the KMS grants (one statement per function), and a log
        group with retention for every function CDK made on our behalf (the bucket-notification
        handler, custom-resource providers), which would otherwise log forever."""
        for fn, actions in self._kms.values():
            self.allow(fn, actions, [self.key.key_arn])  # type: ignore[union-attr]
        days = retention(self.settings.log_retention_days)
        for child in self.stack.node.find_all():
            if not isinstance(child, cdk.CfnResource) or child.cfn_resource_type != "AWS::Lambda::Function":
                continue
            if isinstance(child, lambda_.CfnFunction) and child.logging_config is not None:
                continue  # ours: its log group was made with it
            owner: Construct = child.node.scope  # type: ignore[assignment]
            log_group = logs.LogGroup(owner, "Logs", retention=days, removal_policy=RemovalPolicy.DESTROY)
            child.add_property_override("LoggingConfig", {"LogGroup": log_group.log_group_name})  # a Ref: made first
