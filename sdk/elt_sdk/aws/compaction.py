"""Lambda: compact one silver partition into a safe output prefix (never in place).

Event: ``{"dataset": "shipments", "dt": "2025-12-31", "output_prefix": "silver_compacted"}``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import boto3

from elt_sdk import layout, logs
from elt_sdk.aws.partition import download_partition
from elt_sdk.compaction import compact
from elt_sdk.settings import ENV_SILVER_BUCKET

log = logs.get("compaction")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    s3 = boto3.client("s3")
    bucket = event.get("bucket") or os.environ[ENV_SILVER_BUCKET]
    dataset, dt = event["dataset"], event["dt"]
    output_prefix = event.get("output_prefix", "silver_compacted").strip("/")
    if output_prefix == layout.SILVER_PREFIX.strip("/"):
        raise ValueError("output_prefix must not be silver/: compaction never rewrites in place")
    with tempfile.TemporaryDirectory() as tmp:
        inputs = download_partition(s3, bucket, layout.silver_partition(dataset, dt), Path(tmp) / "in")
        outputs, rows = compact(inputs, Path(tmp) / "out")
        keys = []
        for path in outputs:
            key = layout.silver_partition(dataset, dt, root=output_prefix) + path.name
            s3.upload_file(str(path), bucket, key)
            keys.append(key)
    result = {"dataset": dataset, "dt": dt, "input_files": len(inputs), "output_files": len(keys), "rows": rows,
              "keys": keys}
    logs.info(log, "partition compacted", **result)
    return result
