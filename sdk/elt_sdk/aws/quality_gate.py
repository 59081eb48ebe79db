"""Lambda: the quality gate's check: run a dataset's quality rules on one silver partition.

Event: ``{"dataset": "shipments", "dt": "2025-12-31"}`` or an EventBridge
``silver_partition_ready`` event. Writes the verdict to ``quality/results/`` and, on failure, a
marker to ``quality/quarantine/``; the Step Functions gate branches on ``passed``.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq

from elt_sdk import layout, logs
from elt_sdk.aws.partition import download_partition
from elt_sdk.plugins import load_registry
from elt_sdk.quality import evaluate
from elt_sdk.settings import ENV_SILVER_BUCKET

log = logs.get("quality")
RESULTS = "quality/results/"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail", event)
    dataset_name, dt = detail["dataset"], detail["dt"]
    bucket = detail.get("bucket") or os.environ[ENV_SILVER_BUCKET]
    dataset = load_registry().dataset(dataset_name)
    s3 = boto3.client("s3")
    with tempfile.TemporaryDirectory() as tmp:
        files = download_partition(s3, bucket, layout.silver_partition(dataset_name, dt), Path(tmp))
        table = pa.concat_tables([pq.read_table(f) for f in files]) if files else dataset.arrow_schema.empty_table()
    results = evaluate(dataset.quality_rules, table)
    passed = all(r.passed for r in results)
    verdict = {"dataset": dataset_name, "dt": dt, "passed": passed, "rows": table.num_rows,
               "results": [r.to_dict() for r in results], "checked_at": int(time.time())}
    now = time.time()  # milliseconds in the key: two checks of a partition within a second both stay
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"{int(now * 1000) % 1000:03d}Z"
    s3.put_object(Bucket=bucket, Key=layout.silver_partition(dataset_name, dt, root=RESULTS) + f"{stamp}.json",
                  Body=json.dumps(verdict).encode())
    if not passed and os.environ.get("ELT_QUALITY_QUARANTINE_MARKER", "true") == "true":
        s3.put_object(Bucket=bucket, Key=f"quality/quarantine/{dataset_name}/dt={dt}.json", Body=json.dumps(verdict).encode())
    logs.info(log, "quality gate checked", dataset=dataset_name, dt=dt, passed=passed, rows=table.num_rows)
    return verdict
