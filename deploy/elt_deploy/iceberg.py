"""Iceberg silver (``silver_format = iceberg``): the commit queue and its DLQ, the committer
function (reserved concurrency 1, on the ``iceberg`` asset) fed by it, the transform's right to
send to it, and, with ``iceberg_maintenance_schedule``, the maintenance function on a schedule.

The catalog is Glue: the stack's Glue database (``glue.GlueCatalog`` makes it) holds one Iceberg
table per dataset, which the committer creates at its first commit (its schema and partitioning
come from the silver files, so a plugin release needs no stack change). Each function may do
exactly what it needs: the committer reads the staged files and writes the tables' data and
metadata under ``silver/``, reads object manifests under ``_elt/objects/`` (and writes one when
it marks an object failed, with the marker in quarantine), creates and updates the tables of
that one database; maintenance rewrites, lists and deletes under ``silver/`` and updates tables.
"""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from elt_deploy.core import META_PREFIX, READ, WRITE, FunctionSpec, Pipeline
from elt_sdk import layout
from elt_sdk import settings as s

GLUE_READ = ("glue:GetDatabase", "glue:GetTable")
GLUE_COMMIT = (*GLUE_READ, "glue:CreateTable", "glue:UpdateTable")
GLUE_MAINTAIN = (*GLUE_READ, "glue:GetTables", "glue:UpdateTable")


class IcebergCommitter(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline: Pipeline, database: str,
                 transform: lambda_.Function):
        super().__init__(scope, construct_id)
        p, cfg = pipeline, pipeline.settings
        stack = p.stack
        self.dlq = sqs.Queue(self, "CommitsDlq", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                             retention_period=Duration.days(cfg.dlq_retention_days))
        self.queue = sqs.Queue(
            self, "Commits", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            visibility_timeout=Duration.seconds(6 * cfg.commit_timeout_s),
            retention_period=Duration.days(cfg.queue_retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=cfg.max_receive_count))
        catalog = {s.ENV_ICEBERG_CATALOG: "glue", s.ENV_ICEBERG_DATABASE: database,
                   s.ENV_SILVER_BUCKET: p.silver.bucket_name}
        self.function = p.function(FunctionSpec("Committer", "elt_sdk.aws.handlers.commit_handler", cfg.commit_memory_mb,
                                                cfg.commit_timeout_s, reserved=1, asset="iceberg"), {
            **catalog, s.ENV_QUARANTINE_BUCKET: p.quarantine.bucket_name, s.ENV_COMMIT_DLQ_URL: self.dlq.queue_url})
        fn = self.function
        p.objects(fn, p.silver, WRITE, [layout.SILVER_PREFIX])  # staged files in, table data and metadata out
        p.objects(fn, p.silver, (*READ, "s3:PutObject"), [f"{META_PREFIX}objects/"])  # manifests: read, mark failed
        p.list_bucket(fn, p.silver)
        p.objects(fn, p.quarantine, ("s3:PutObject",), [f"{layout.QUARANTINE_PREFIX}{layout.FAILED}/"])
        p.allow(fn, ["sqs:SendMessage"], [self.dlq.queue_arn])
        p.allow(fn, GLUE_COMMIT, self.glue_arns(stack, database))
        fn.add_event_source(sources.SqsEventSource(
            self.queue, batch_size=cfg.commit_batch_size,
            max_batching_window=Duration.seconds(cfg.commit_batching_window_s), report_batch_item_failures=True))
        # the transform hands each object's files over through the queue
        transform.add_environment(s.ENV_COMMIT_QUEUE_URL, self.queue.queue_url)
        p.allow(transform, ["sqs:SendMessage"], [self.queue.queue_arn])
        p.output("commit_queue_url", self.queue.queue_url, "the Iceberg committer's queue")
        p.output("commit_dlq_url", self.dlq.queue_url, "commit messages that can never succeed")
        p.output("committer_lambda", fn.function_name, "commits handed-off objects to the Iceberg tables")
        self.maintenance = None
        if cfg.iceberg_maintenance_schedule:
            m = self.maintenance = p.function(FunctionSpec("IcebergMaintenance", "elt_sdk.aws.handlers.maintain_handler",
                                                           2048, 900, asset="iceberg", ephemeral_mb=4096), catalog)
            p.objects(m, p.silver, WRITE, [layout.SILVER_PREFIX])
            p.list_bucket(m, p.silver)
            p.allow(m, GLUE_MAINTAIN, self.glue_arns(stack, database))
            events.Rule(self, "MaintenanceSchedule", schedule=events.Schedule.expression(cfg.iceberg_maintenance_schedule),
                        targets=[targets.LambdaFunction(m, retry_attempts=0)])
            p.output("iceberg_maintenance_lambda", m.function_name, "compacts, expires and removes orphans (scheduled)")

    @staticmethod
    def glue_arns(stack, database: str) -> list[str]:  # noqa: ANN001 - a cdk.Stack
        """The catalog, the database and its tables: Glue checks all three for a table call."""
        return [stack.format_arn(service="glue", resource="catalog"),
                stack.format_arn(service="glue", resource="database", resource_name=database),
                stack.format_arn(service="glue", resource="table", resource_name=f"{database}/*")]
