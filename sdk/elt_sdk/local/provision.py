"""Create the pipeline's resources on an endpoint from ``Settings`` — the same names, redrive
policy, visibility timeout, retention and TTL the CDK stack declares."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from elt_sdk import settings as s
from elt_sdk.aws.idempotency.dynamodb import KEY_ATTR, TTL_ATTR
from elt_sdk.settings import Settings


@dataclass
class Resources:
    """Where the deployed (or local) pipeline lives: what handlers and ``verify`` need."""

    bronze_bucket: str
    silver_bucket: str
    queue_url: str
    dlq_url: str
    table: str
    events_queue_url: str = ""  # local only: S3 notifications land here, for the ingest poller
    quarantine_bucket: str = ""
    commit_queue_url: str = ""  # silver_format = iceberg: the committer's queue, its DLQ, the catalog
    commit_dlq_url: str = ""
    iceberg_catalog: str = ""

    def iceberg_outputs(self) -> dict[str, str]:
        """The committer's queues and the catalog, as a target's outputs (none for plain silver)."""
        if not self.commit_queue_url:
            return {}
        return {"commit_queue_url": self.commit_queue_url, "commit_dlq_url": self.commit_dlq_url,
                "iceberg_catalog": self.iceberg_catalog}

    def handler_environment(self, settings: Settings) -> dict[str, str]:
        env = {**settings.lambda_environment(), s.ENV_BRONZE_BUCKET: self.bronze_bucket,
               s.ENV_SILVER_BUCKET: self.silver_bucket, s.ENV_QUARANTINE_BUCKET: self.quarantine_bucket or self.silver_bucket,
               s.ENV_QUEUE_URL: self.queue_url, s.ENV_DLQ_URL: self.dlq_url, s.ENV_TABLE: self.table}
        if self.commit_queue_url:
            from elt_sdk.query import database_name

            env.update({s.ENV_COMMIT_QUEUE_URL: self.commit_queue_url, s.ENV_COMMIT_DLQ_URL: self.commit_dlq_url,
                        s.ENV_ICEBERG_CATALOG: self.iceberg_catalog, s.ENV_ICEBERG_DATABASE: database_name(settings.name_prefix)})
        return env


def provision(settings: Settings, client: Any, *, iceberg_catalog: str = "") -> Resources:
    """``client(name)`` returns a boto3 client for the endpoint; ``iceberg_catalog`` (with
    ``silver_format = iceberg``): the SQLAlchemy URI of the local catalog (sqlite)."""
    s3, sqs, ddb = client("s3"), client("sqs"), client("dynamodb")
    location = {} if settings.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": settings.region}}
    for bucket in (settings.bronze_bucket, settings.silver_bucket, settings.quarantine_bucket):
        s3.create_bucket(Bucket=bucket, **location)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    dlq_url = sqs.create_queue(QueueName=settings.dlq_name, Attributes={
        "MessageRetentionPeriod": str(settings.dlq_retention_days * 86400)})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=settings.queue_name, Attributes={
        "VisibilityTimeout": str(settings.visibility_timeout_s),
        "MessageRetentionPeriod": str(settings.queue_retention_days * 86400),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.max_receive_count)}),
    })["QueueUrl"]
    ddb.create_table(TableName=settings.table_name, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": KEY_ATTR, "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": KEY_ATTR, "KeyType": "HASH"}])
    ddb.update_time_to_live(TableName=settings.table_name,
                            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTR})
    # In AWS the bucket notifies the ingest function; locally it notifies a queue the runtime polls,
    # and each message's body is the very S3 event Lambda would receive.
    events_url = sqs.create_queue(QueueName=f"{settings.name_prefix}-s3-events", Attributes={
        "VisibilityTimeout": str(settings.ingest_timeout_s)})["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=settings.bronze_bucket, NotificationConfiguration={
        "QueueConfigurations": [{
            "Id": "bronze-to-ingest",
            "QueueArn": events_arn,
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": settings.bronze_prefix}]}},
        }]})
    res = Resources(settings.bronze_bucket, settings.silver_bucket, queue_url, dlq_url, settings.table_name, events_url,
                    settings.quarantine_bucket)
    if settings.silver_format == "iceberg":  # the committer's queue, as the stack declares it
        if not iceberg_catalog:
            raise ValueError("silver_format = iceberg: the local runtime needs a catalog (iceberg_catalog=sqlite:///...)")
        res.commit_dlq_url = sqs.create_queue(QueueName=f"{settings.name_prefix}-commits-dlq", Attributes={
            "MessageRetentionPeriod": str(settings.dlq_retention_days * 86400)})["QueueUrl"]
        commit_dlq_arn = sqs.get_queue_attributes(QueueUrl=res.commit_dlq_url,
                                                  AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        res.commit_queue_url = sqs.create_queue(QueueName=f"{settings.name_prefix}-commits", Attributes={
            "VisibilityTimeout": str(6 * settings.commit_timeout_s),
            "MessageRetentionPeriod": str(settings.queue_retention_days * 86400),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": commit_dlq_arn,
                                         "maxReceiveCount": str(settings.max_receive_count)}),
        })["QueueUrl"]
        res.iceberg_catalog = iceberg_catalog
    return res
