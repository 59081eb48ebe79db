"""Lambdas of the ops workflow (Step Functions): replay by S3 copy, then poll silver.

replay: copies bronze objects (modified within a window) under ``bronze/replay/<stamp>/``, so the
normal notification -> ingest -> transform path runs again (ingest routes a copy by its original
key, ``layout.replayed_key``). Silver keys come from content, so a replay overwrites the first
run's files instead of duplicating rows.
poll: counts silver Parquet objects written since the replay started.
"""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3

from elt_sdk import layout, logs
from elt_sdk.settings import ENV_BRONZE_BUCKET, ENV_SILVER_BUCKET, Settings

log = logs.get("ops")


def replay_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    s3 = boto3.client("s3")
    bucket = event.get("bronze_bucket") or os.environ[ENV_BRONZE_BUCKET]
    cfg = Settings.load(env=os.environ)
    src = event.get("src_prefix", cfg.bronze_prefix)
    base = event.get("dest_prefix_base", cfg.replay_prefix).rstrip("/")
    now = datetime.now(timezone.utc)
    since = now - timedelta(hours=float(event.get("window_hours", 24)))
    stamp = now.strftime("%Y-%m-%dT%H-%M-%SZ")
    copied = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=src):
        for obj in page.get("Contents", []):
            if obj["LastModified"] < since or obj["Key"].startswith(base + "/"):
                continue
            dest = layout.replay_key(obj["Key"], stamp, bronze_prefix=cfg.bronze_prefix, replay_prefix=base)
            s3.copy_object(Bucket=bucket, Key=dest, CopySource={"Bucket": bucket, "Key": obj["Key"]},
                           MetadataDirective="REPLACE", Metadata=layout.replay_metadata(
                               obj["ETag"].strip('"'), int(obj["LastModified"].timestamp() * 1000)))
            copied += 1
    result = {"copied": copied, "started_at": now.isoformat(), "dest_prefix": f"{base}/{stamp}/"}
    logs.info(log, "replay copied objects", **result)
    return {**event, **result}


def poll_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    s3 = boto3.client("s3")
    bucket = event.get("silver_bucket") or os.environ[ENV_SILVER_BUCKET]
    since = datetime.fromisoformat(event["started_at"])
    prefix = f"{event.get('silver_prefix', 'silver').strip('/')}/{event.get('record_type', '')}"
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        count += sum(1 for o in page.get("Contents", []) if o["Key"].endswith(".parquet") and o["LastModified"] >= since)
    attempt = int(event.get("attempt", 0)) + 1
    ready = count >= int(event.get("min_parquet_objects", 1))
    logs.info(log, "silver poll", count=count, attempt=attempt, ready=ready)
    return {**event, "parquet_objects": count, "attempt": attempt, "ready": ready, "polled_at": time.time()}
