"""The pipeline stack: buckets, idempotency table, queue + DLQ, ingest and transform functions,
the S3 notification and the SQS event source, with least-privilege roles; optional modules are
switched by settings (``glue_enabled``, ``observability_enabled``, ``ops_enabled``,
``quality_enabled``, ``compaction_enabled``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from elt_deploy.bundle import BundleReport, build_bundle
from elt_sdk import layout
from elt_sdk import settings as settings_mod
from elt_sdk.aws.idempotency.dynamodb import KEY_ATTR, TTL_ATTR
from elt_sdk.plugins import Registry, load_registry
from elt_sdk.settings import Settings

RETENTION = {1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
             7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
             60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS,
             180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR}
OUTPUT_NAMES = {"bronze_bucket": "BronzeBucket", "silver_bucket": "SilverBucket", "queue_url": "QueueUrl",
                "dlq_url": "DlqUrl", "ingest_lambda": "IngestLambda", "transform_lambda": "TransformLambda",
                "idempotency_table": "IdempotencyTable"}


@dataclass
class FunctionSpec:
    name: str
    handler: str
    memory_mb: int
    timeout_s: int
    reserved: int | None = None


class PipelineStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, registry: Registry,
                 bundle: BundleReport, **kwargs: Any):
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.registry = registry
        self.code = lambda_.Code.from_asset(str(bundle.path.resolve()))
        cfg = settings

        self.bronze = self._bucket("Bronze", [
            s3.LifecycleRule(id="expire-replay-copies", prefix=cfg.replay_prefix, expiration=Duration.days(cfg.replay_expiry_days)),
        ])
        self.silver = self._bucket("Silver", [
            s3.LifecycleRule(id="expire-quarantine", prefix=layout.QUARANTINE_PREFIX,
                             expiration=Duration.days(cfg.quarantine_expiry_days)),
        ])
        self.table = dynamodb.Table(
            self, "Idempotency",
            partition_key=dynamodb.Attribute(name=KEY_ATTR, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            time_to_live_attribute=TTL_ATTR,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.dlq = sqs.Queue(self, "ObjectsDlq", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                             retention_period=Duration.days(cfg.dlq_retention_days))
        self.queue = sqs.Queue(
            self, "Objects", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=Duration.seconds(cfg.visibility_timeout_s),
            retention_period=Duration.days(cfg.queue_retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=cfg.max_receive_count),
        )
        self.ingest_failures = sqs.Queue(self, "IngestFailures", encryption=sqs.QueueEncryption.SQS_MANAGED,
                                         enforce_ssl=True, retention_period=Duration.days(cfg.dlq_retention_days))

        env = {**cfg.lambda_environment(), settings_mod.ENV_BRONZE_BUCKET: self.bronze.bucket_name,
               settings_mod.ENV_SILVER_BUCKET: self.silver.bucket_name, settings_mod.ENV_QUEUE_URL: self.queue.queue_url,
               settings_mod.ENV_TABLE: self.table.table_name}
        self.ingest = self.function(FunctionSpec("Ingest", "elt_sdk.aws.handlers.ingest_handler", cfg.ingest_memory_mb,
                                                 cfg.ingest_timeout_s, cfg.ingest_reserved_concurrency), env)
        self.transform = self.function(FunctionSpec("Transform", "elt_sdk.aws.handlers.transform_handler",
                                                    cfg.transform_memory_mb, cfg.transform_timeout_s,
                                                    cfg.transform_reserved_concurrency), env)
        # ingest: read bronze, claim objects in the table, send pointers
        self.allow(self.ingest, ["s3:GetObject"], [self.bronze.arn_for_objects("*")])
        self.allow(self.ingest, ["s3:ListBucket"], [self.bronze.bucket_arn])  # a 404, not a 403, for a missing key
        self.allow(self.ingest, ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"],
                   [self.table.table_arn])
        self.allow(self.ingest, ["sqs:SendMessage"], [self.queue.queue_arn])
        self.ingest.configure_async_invoke(retry_attempts=2, on_failure=destinations.SqsDestination(self.ingest_failures))
        # transform: read bronze, write silver and quarantine (the event source grants the queue)
        self.allow(self.transform, ["s3:GetObject"], [self.bronze.arn_for_objects("*")])
        self.allow(self.transform, ["s3:PutObject", "s3:AbortMultipartUpload"],
                   [self.silver.arn_for_objects(layout.SILVER_PREFIX + "*"),
                    self.silver.arn_for_objects(layout.QUARANTINE_PREFIX + "*")])
        if cfg.emit_partition_events or (cfg.quality_enabled and cfg.quality_auto_trigger):
            self.transform.add_environment(settings_mod.Settings.__dataclass_fields__["emit_partition_events"].metadata["env"], "true")
            self.allow(self.transform, ["events:PutEvents"],
                       [self.format_arn(service="events", resource="event-bus", resource_name=cfg.event_bus_name)])

        self.bronze.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(self.ingest),
                                           s3.NotificationKeyFilter(prefix=cfg.bronze_prefix))
        self.transform.add_event_source(sources.SqsEventSource(
            self.queue, batch_size=cfg.batch_size, max_batching_window=Duration.seconds(cfg.batching_window_s),
            report_batch_item_failures=True))

        outputs = {"bronze_bucket": self.bronze.bucket_name, "silver_bucket": self.silver.bucket_name,
                   "queue_url": self.queue.queue_url, "dlq_url": self.dlq.queue_url,
                   "ingest_lambda": self.ingest.function_name, "transform_lambda": self.transform.function_name,
                   "idempotency_table": self.table.table_name}
        for key, value in outputs.items():
            cdk.CfnOutput(self, OUTPUT_NAMES[key], value=value, description=key)

        from elt_deploy import compaction, glue, observability, ops, quality_gate
        if cfg.glue_enabled:
            glue.GlueCatalog(self, "Glue", stack=self)
        if cfg.observability_enabled:
            observability.Observability(self, "Observability", stack=self)
        if cfg.ops_enabled:
            ops.OpsWorkflow(self, "Ops", stack=self)
        if cfg.quality_enabled:
            quality_gate.QualityGate(self, "Quality", stack=self)
        if cfg.compaction_enabled:
            compaction.Compaction(self, "Compaction", stack=self)

    def _bucket(self, name: str, rules: list[s3.LifecycleRule]) -> s3.Bucket:
        return s3.Bucket(
            self, name, versioned=True, encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[*rules, s3.LifecycleRule(id="expire-old-versions",
                                                      noncurrent_version_expiration=Duration.days(30),
                                                      abort_incomplete_multipart_upload_after=Duration.days(7))],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def function(self, spec: FunctionSpec, env: dict[str, str]) -> lambda_.Function:
        """A function on the shared asset, with its own role and log group (no managed policy)."""
        cfg = self.settings
        role = iam.Role(self, f"{spec.name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description=f"elt-sdk {spec.name.lower()} function")
        log_group = logs.LogGroup(self, f"{spec.name}Logs", retention=_retention(cfg.log_retention_days),
                                  removal_policy=RemovalPolicy.DESTROY)
        log_group.grant_write(role)
        fn = lambda_.Function(
            self, spec.name,
            runtime=lambda_.Runtime(f"python{cfg.python_runtime}", lambda_.RuntimeFamily.PYTHON),
            architecture=lambda_.Architecture.ARM_64 if cfg.architecture == "arm64" else lambda_.Architecture.X86_64,
            handler=spec.handler, code=self.code, role=role, log_group=log_group,
            memory_size=spec.memory_mb, timeout=Duration.seconds(spec.timeout_s),
            reserved_concurrent_executions=spec.reserved, environment=dict(env),
            description=f"elt-sdk {spec.name.lower()} ({spec.handler})",
        )
        return fn

    def allow(self, fn: lambda_.Function, actions: list[str], resources: list[str]) -> None:
        fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=resources))


def _retention(days: int) -> logs.RetentionDays:
    if days not in RETENTION:
        raise ValueError(f"log_retention_days={days}: choose one of {sorted(RETENTION)}")
    return RETENTION[days]


def load_settings(app: cdk.App, deploy_dir: Path) -> Settings:
    """Settings file and environment, then every settings key given as CDK context."""
    names = Settings.__dataclass_fields__
    ctx = {k: app.node.try_get_context(k) for k in names if app.node.try_get_context(k) is not None}
    config = app.node.try_get_context("config")
    return Settings.load(config or (deploy_dir.parent / settings_mod.CONFIG_FILE if (deploy_dir.parent / settings_mod.CONFIG_FILE).exists() else None),
                         **Settings.coerce(ctx))


def build_app(app: cdk.App, deploy_dir: Path) -> PipelineStack:
    settings = load_settings(app, deploy_dir)
    registry = load_registry()
    if registry.broken:
        raise RuntimeError("broken plugins would be bundled: " + "; ".join(f"{b.name}: {b.error}" for b in registry.broken))
    budget = app.node.try_get_context("bundle_budget_mb")
    bundle = build_bundle(deploy_dir / ".bundle", architecture=settings.architecture, python=settings.python_runtime,
                          budget_mb=int(budget) if budget else None,
                          log=lambda line: print(line, file=__import__("sys").stderr))
    name = app.node.try_get_context("stack_name") or settings.name_prefix
    return PipelineStack(app, name, settings=settings, registry=registry, bundle=bundle,
                         description="elt-sdk: S3 bronze -> ingest -> SQS -> transform -> S3 silver Parquet")
