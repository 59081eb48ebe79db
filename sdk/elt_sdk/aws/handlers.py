"""Lambda entry points. A few lines each: build the app once per container from environment
variables (see ``elt_sdk.settings``), then hand it the event.

    ingest:    elt_sdk.aws.handlers.ingest_handler     (S3 ObjectCreated notifications)
    transform: elt_sdk.aws.handlers.transform_handler  (SQS event source, ReportBatchItemFailures)
    committer: elt_sdk.aws.handlers.commit_handler     (silver_format = iceberg: the commit queue)
    maintain:  elt_sdk.aws.handlers.maintain_handler   (silver_format = iceberg: scheduled)
"""
from __future__ import annotations

import json
import os
from functools import lru_cache
from typing import Any

from elt_sdk import logs
from elt_sdk import settings as s

if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:  # in Lambda, this module is the entry point: JSON on stdout
    logs.configure(level=os.environ.get("ELT_LOG_LEVEL", "INFO").upper())


def _client(name: str) -> Any:
    import boto3  # in the Lambda runtime already; AWS_ENDPOINT_URL points it elsewhere locally
    from botocore.config import Config

    return boto3.client(name, config=Config(max_pool_connections=32))  # the local runtime shares it between threads


@lru_cache(maxsize=1)
def _ingestor():
    from elt_sdk import bundled
    from elt_sdk.aws.idempotency.base import Idempotency
    from elt_sdk.aws.idempotency.dynamodb import DynamoDBPersistence
    from elt_sdk.aws.ingest import Ingestor

    cfg = s.Settings.load(env=os.environ)
    routes = bundled.load_routes(bronze_prefix=cfg.bronze_prefix)  # the Lambda asset's manifest: no plugin imports
    if routes is None:
        from elt_sdk.plugins import load_registry

        routes = load_registry(bronze_prefix=cfg.bronze_prefix)
    return Ingestor(s3=_client("s3"), sqs=_client("sqs"), queue_url=os.environ[s.ENV_QUEUE_URL],
                    idempotency=Idempotency(DynamoDBPersistence(_client("dynamodb"), os.environ[s.ENV_TABLE]),
                                            cfg.idempotency_ttl_seconds),
                    registry=routes, chunk_bytes=cfg.chunk_bytes, bronze_prefix=cfg.bronze_prefix,
                    replay_prefix=cfg.replay_prefix)


@lru_cache(maxsize=1)
def _transform():
    from elt_sdk import memory
    from elt_sdk.aws.s3 import S3Store
    from elt_sdk.aws.transform import SqsTransform
    from elt_sdk.commit import committer_for
    from elt_sdk.framing import Limits
    from elt_sdk.pipeline import Transformer
    from elt_sdk.plugins import load_registry

    cfg = s.Settings.load(env=os.environ)
    memory.use_transform_pool()
    s3 = _client("s3")
    silver = os.environ[s.ENV_SILVER_BUCKET]
    quarantine = os.environ.get(s.ENV_QUARANTINE_BUCKET) or silver
    send = None
    if cfg.silver_format == "iceberg":  # hand each object's files to the committer's queue
        sqs, queue = _client("sqs"), os.environ[s.ENV_COMMIT_QUEUE_URL]
        send = lambda message: sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(message))  # noqa: E731
    return SqsTransform(s3=s3, transformer=Transformer(load_registry(bronze_prefix=cfg.bronze_prefix),
                                                       limits=Limits.from_settings(cfg)),
                        committer=committer_for(cfg.silver_format, S3Store(s3, silver), S3Store(s3, quarantine),
                                                send=send),
                        silver_bucket=silver, metrics_namespace=cfg.metrics_namespace,
                        sqs=_client("sqs") if os.environ.get(s.ENV_DLQ_URL) else None,
                        dlq_url=os.environ.get(s.ENV_DLQ_URL), max_receive_count=cfg.max_receive_count,
                        events=_client("events") if cfg.emit_partition_events else None,
                        event_bus=cfg.event_bus_name)


@lru_cache(maxsize=1)
def _committer():
    from elt_sdk.aws.committer import SqsCommitter
    from elt_sdk.aws.s3 import S3Store
    from elt_sdk.iceberg.catalog import from_environment
    from elt_sdk.iceberg.committer import IcebergCommitter

    cfg = s.Settings.load(env=os.environ)
    s3 = _client("s3")
    silver = os.environ[s.ENV_SILVER_BUCKET]
    quarantine = os.environ.get(s.ENV_QUARANTINE_BUCKET) or silver
    dlq = os.environ.get(s.ENV_COMMIT_DLQ_URL)
    return SqsCommitter(committer=IcebergCommitter(from_environment(os.environ), S3Store(s3, silver),
                                                   S3Store(s3, quarantine)),
                        metrics_namespace=cfg.metrics_namespace, sqs=_client("sqs") if dlq else None, dlq_url=dlq,
                        max_receive_count=cfg.max_receive_count)


def ingest_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    return _ingestor().handle(event, context.get_remaining_time_in_millis).to_dict()


def transform_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    return _transform().handle(event)


def commit_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    """The Iceberg committer (``silver_format = iceberg``): SQS batches of commit messages."""
    return _committer().handle(event)


def maintain_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Iceberg maintenance (scheduled): compact recent days, expire snapshots, remove orphans."""
    from elt_sdk.aws.committer import maintain

    return maintain(event or {}, os.environ)


def reset() -> None:
    """Forget the built apps (a new container, in effect): the local runtime and tests use it."""
    _ingestor.cache_clear()
    _transform.cache_clear()
    _committer.cache_clear()
