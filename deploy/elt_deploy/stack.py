"""The pipeline stack: buckets (bronze, silver, and quarantine behind its own access boundary),
the idempotency table, queue + DLQ, the ingest and transform functions, the S3 notification and
the SQS event source, with least-privilege roles; optional modules are switched by settings
(``glue_enabled``, ``observability_enabled``, ``ops_enabled``, ``quality_enabled``,
``compaction_enabled``), and ``silver_format = iceberg`` adds the committer (``iceberg.py``).
Every resource an operator needs is a stack output."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from elt_deploy import compaction, glue, iceberg, observability, ops, quality_gate
from elt_deploy.bundle import DEFAULT_ASSETS, BundleError, BundleReport, build_assets
from elt_deploy.core import META_PREFIX, READ, STAGING_PREFIX, WRITE, FunctionSpec, Pipeline
from elt_sdk import layout
from elt_sdk import settings as settings_mod
from elt_sdk.aws.idempotency.dynamodb import KEY_ATTR, TTL_ATTR
from elt_sdk.plugins import Registry, load_registry
from elt_sdk.settings import Settings

# Object actions the quarantine bucket's policy refuses to every principal but the functions that
# write it (and the roles named by the ``quarantine_readers`` context).
QUARANTINE_DATA_ACTIONS = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
                           "s3:DeleteObjectVersion", "s3:RestoreObject"]


class PipelineStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, registry: Registry,
                 assets: dict[str, BundleReport], quarantine_readers: list[str] | None = None, **kwargs: Any):
        super().__init__(scope, construct_id, **kwargs)
        self.settings = cfg = settings
        self.registry = registry
        self.assets = assets
        code = {name: lambda_.Code.from_asset(str(report.path.resolve())) for name, report in assets.items()}
        p = self.pipeline = Pipeline(self, settings, registry, code, self._bucket_key(cfg.bucket_kms_key))

        p.bronze = self.bronze = self._bucket("Bronze", [
            s3.LifecycleRule(id="expire-replay-copies", prefix=cfg.replay_prefix, expiration=Duration.days(cfg.replay_expiry_days)),
        ])
        p.silver = self.silver = self._bucket("Silver", [
            s3.LifecycleRule(id="expire-staging", prefix=STAGING_PREFIX, expiration=Duration.days(cfg.staging_expiry_days)),
        ])
        # Rejected records are raw input, possibly personal data: their own bucket, with its own
        # policy, and a deleted record's old versions gone after a day.
        p.quarantine = self.quarantine = self._bucket("Quarantine", [
            s3.LifecycleRule(id="expire-quarantine", prefix=layout.QUARANTINE_PREFIX,
                             expiration=Duration.days(cfg.quarantine_expiry_days)),
            s3.LifecycleRule(id="expire-staging", prefix=STAGING_PREFIX, expiration=Duration.days(cfg.staging_expiry_days)),
        ], noncurrent_days=1)
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

        # ingest: read bronze, claim objects in the table, send pointers (routes by the asset's manifest)
        self.ingest = p.function(FunctionSpec("Ingest", "elt_sdk.aws.handlers.ingest_handler", cfg.ingest_memory_mb,
                                              cfg.ingest_timeout_s, cfg.ingest_reserved_concurrency, asset="light"), {
            settings_mod.ENV_BRONZE_BUCKET: self.bronze.bucket_name, settings_mod.ENV_QUEUE_URL: self.queue.queue_url,
            settings_mod.ENV_TABLE: self.table.table_name})
        p.objects(self.ingest, self.bronze, READ, [""])
        p.list_bucket(self.ingest, self.bronze)
        p.allow(self.ingest, ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:GetItem"],
                [self.table.table_arn])
        p.allow(self.ingest, ["sqs:SendMessage"], [self.queue.queue_arn])
        self.ingest.configure_async_invoke(retry_attempts=2, on_failure=destinations.SqsDestination(self.ingest_failures))

        # transform: read bronze; write, stage and clean up its own prefixes of silver and quarantine;
        # send a message that can never succeed to the DLQ at once (the event source grants the queue)
        self.transform = p.function(FunctionSpec("Transform", "elt_sdk.aws.handlers.transform_handler",
                                                 cfg.transform_memory_mb, cfg.transform_timeout_s,
                                                 cfg.transform_reserved_concurrency), {
            settings_mod.ENV_BRONZE_BUCKET: self.bronze.bucket_name, settings_mod.ENV_SILVER_BUCKET: self.silver.bucket_name,
            settings_mod.ENV_QUARANTINE_BUCKET: self.quarantine.bucket_name, settings_mod.ENV_DLQ_URL: self.dlq.queue_url})
        p.objects(self.transform, self.bronze, READ, [""])
        p.list_bucket(self.transform, self.bronze)  # a deleted object: 404 NoSuchKey (dropped), not 403 (retried)
        p.objects(self.transform, self.silver, WRITE, [layout.SILVER_PREFIX, META_PREFIX])
        p.list_bucket(self.transform, self.silver)
        p.objects(self.transform, self.quarantine, WRITE, [layout.QUARANTINE_PREFIX, META_PREFIX])
        p.list_bucket(self.transform, self.quarantine)
        p.allow(self.transform, ["sqs:SendMessage"], [self.dlq.queue_arn])
        if cfg.emit_partition_events or (cfg.quality_enabled and cfg.quality_auto_trigger):
            self.transform.add_environment(Settings.__dataclass_fields__["emit_partition_events"].metadata["env"], "true")
            p.allow(self.transform, ["events:PutEvents"],
                    [self.format_arn(service="events", resource="event-bus", resource_name=cfg.event_bus_name)])

        self.bronze.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(self.ingest),
                                           s3.NotificationKeyFilter(prefix=cfg.bronze_prefix))
        self.transform.add_event_source(sources.SqsEventSource(
            self.queue, batch_size=cfg.batch_size, max_batching_window=Duration.seconds(cfg.batching_window_s),
            report_batch_item_failures=True))

        for key, value in {"bronze_bucket": self.bronze.bucket_name, "silver_bucket": self.silver.bucket_name,
                           "quarantine_bucket": self.quarantine.bucket_name, "queue_url": self.queue.queue_url,
                           "dlq_url": self.dlq.queue_url, "ingest_failures_url": self.ingest_failures.queue_url,
                           "ingest_lambda": self.ingest.function_name, "transform_lambda": self.transform.function_name,
                           "idempotency_table": self.table.table_name, "region": self.region}.items():
            p.output(key, value)
        if p.key is not None:
            p.output("bucket_kms_key", p.key.key_arn, "the buckets' customer-managed KMS key")

        self.modules: dict[str, Construct] = {}
        allowed_in_quarantine = [self.transform.role.role_arn]  # type: ignore[union-attr]
        if cfg.glue_enabled or cfg.silver_format == "iceberg":
            self.modules["glue"] = glue.GlueCatalog(self, "Glue", pipeline=p)
        if cfg.silver_format == "iceberg":
            committer = iceberg.IcebergCommitter(self, "Iceberg", pipeline=p, transform=self.transform,
                                                 database=self.modules["glue"].database_name)  # type: ignore[attr-defined]
            self.modules["iceberg"] = committer
            allowed_in_quarantine.append(committer.function.role.role_arn)  # type: ignore[union-attr]
        if cfg.observability_enabled:
            self.modules["observability"] = observability.Observability(
                self, "Observability", pipeline=p, queue=self.queue, dlq=self.dlq, ingest_failures=self.ingest_failures,
                functions={"ingest": self.ingest, "transform": self.transform,
                           **({"committer": committer.function} if cfg.silver_format == "iceberg" else {})},
                commit_dlq=committer.dlq if cfg.silver_format == "iceberg" else None)
        if cfg.ops_enabled:
            self.modules["ops"] = ops.OpsWorkflow(self, "Ops", pipeline=p)
        if cfg.quality_enabled:
            self.modules["quality"] = quality_gate.QualityGate(self, "Quality", pipeline=p)
        if cfg.compaction_enabled:
            self.modules["compaction"] = compaction.Compaction(self, "Compaction", pipeline=p)

        self._quarantine_boundary([*allowed_in_quarantine, *(quarantine_readers or [])])
        p.finalize()

    def _bucket_key(self, setting: str | None) -> kms.IKey | None:
        """``bucket_kms_key``: None (S3-managed keys), ``create`` (a customer-managed key with
        rotation, kept when the stack is deleted, like the buckets it encrypts) or a key ARN."""
        if setting is None:
            return None
        if setting == "create":
            return kms.Key(self, "BucketKey", enable_key_rotation=True, removal_policy=RemovalPolicy.RETAIN,
                           description=f"elt-sdk {self.stack_name}: bronze, silver and quarantine buckets")
        if ":alias/" in setting:
            raise ValueError(f"bucket_kms_key = {setting!r}: give the key's ARN (arn:...:key/<id>), not an alias: "
                             "IAM grants on a key name its ARN")
        return kms.Key.from_key_arn(self, "BucketKey", setting)

    def _bucket(self, name: str, rules: list[s3.LifecycleRule], noncurrent_days: int = 30) -> s3.Bucket:
        key = self.pipeline.key
        return s3.Bucket(
            self, name, versioned=True,
            encryption=s3.BucketEncryption.KMS if key is not None else s3.BucketEncryption.S3_MANAGED,
            encryption_key=key, bucket_key_enabled=True if key is not None else None,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[*rules, s3.LifecycleRule(id="expire-old-versions",
                                                      noncurrent_version_expiration=Duration.days(noncurrent_days),
                                                      abort_incomplete_multipart_upload_after=Duration.days(7))],
            removal_policy=RemovalPolicy.RETAIN,
        )

    def _quarantine_boundary(self, allowed: list[str]) -> None:
        """Only ``allowed`` roles read, write or delete quarantined records, whatever other IAM
        policies in the account grant (TLS only and no public access, as every bucket)."""
        self.quarantine.add_to_resource_policy(iam.PolicyStatement(
            sid="OnlyThePipelineTouchesQuarantinedRecords", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()],
            actions=QUARANTINE_DATA_ACTIONS, resources=[self.quarantine.arn_for_objects("*")],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": allowed}}))


def context(app: cdk.App, deploy_dir: Path, key: str) -> Any:
    """A context value: ``-c key=value`` (or the CDK CLI's), else ``deploy/cdk.json``'s, so
    ``python app.py`` and the tests see the same defaults as ``cdk synth``."""
    value = app.node.try_get_context(key)
    if value is None:
        cdk_json = deploy_dir / "cdk.json"
        if cdk_json.exists():
            value = json.loads(cdk_json.read_text()).get("context", {}).get(key)
    return value


# Context keys of the app itself; every other key made of lowercase letters, digits and '_' must be
# a setting (CDK's own keys carry ':', '@' or '-').
APP_CONTEXT = {"stack_name", "bundle_budget_mb", "config", "quarantine_readers"}


def load_settings(app: cdk.App, deploy_dir: Path) -> Settings:
    """Settings file and environment, then every setting given as CDK context (checked: a typo such
    as ``-c glue_enabeld=true`` is an error, not silently ignored)."""
    ctx = {k: v for k, v in app.node.get_all_context().items()
           if re.fullmatch(r"[a-z][a-z0-9_]*", k) and k not in APP_CONTEXT and v is not None}
    config = app.node.try_get_context("config")
    default = deploy_dir.parent / settings_mod.CONFIG_FILE
    return Settings.load(config or (default if default.exists() else None), **Settings.coerce(ctx))


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [v.strip() for v in (value if isinstance(value, list) else str(value).split(",")) if v.strip()]


def build_app(app: cdk.App, deploy_dir: Path) -> PipelineStack:
    settings = load_settings(app, deploy_dir)
    registry = load_registry()
    if registry.broken:
        raise BundleError("broken plugins would be bundled: " + "; ".join(f"{b.name}: {b.error}" for b in registry.broken))
    budget = context(app, deploy_dir, "bundle_budget_mb")
    assets = build_assets(deploy_dir / ".bundle", architecture=settings.architecture, python=settings.python_runtime,
                          budget_mb=int(budget) if budget else None, log=lambda line: print(line, file=sys.stderr),
                          assets=DEFAULT_ASSETS + (("iceberg",) if settings.silver_format == "iceberg" else ()))
    name = context(app, deploy_dir, "stack_name") or settings.name_prefix
    return PipelineStack(app, name, settings=settings, registry=registry, assets=assets,
                         quarantine_readers=_list(context(app, deploy_dir, "quarantine_readers")),
                         description="elt-sdk: S3 bronze -> ingest -> SQS -> transform -> S3 silver Parquet")
