"""Lambda: compact one silver partition (``elt-sdk compact`` runs the same ``compaction.compact``).

Event: ``{"dataset": "shipments", "dt": "2025-12-31"}``, optionally ``"in_place": true`` (rewrite
silver under the commit protocol), ``"output_prefix": "silver_compacted"`` (out of place, the
default), ``"target_mb": 128``. Local disk holds one input and one output file at a time (about
``target_mb`` plus the largest input), so ``/tmp`` does not bound the partition's size.
"""
from __future__ import annotations

import os
from typing import Any

import boto3

from elt_sdk import compaction, layout, logs
from elt_sdk.aws.s3 import S3Store
from elt_sdk.settings import ENV_SILVER_BUCKET

log = logs.get("compaction")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    bucket = event.get("bucket") or os.environ[ENV_SILVER_BUCKET]
    dataset, dt = event["dataset"], event["dt"]
    in_place = bool(event.get("in_place", False))
    output_prefix = event.get("output_prefix", compaction.DEFAULT_OUTPUT_PREFIX)
    if not in_place and output_prefix.strip("/") == layout.SILVER_PREFIX.strip("/"):
        raise ValueError("output_prefix must not be silver/: out of place, compaction never rewrites in place "
                         "(set in_place: true to compact silver under the commit protocol)")
    remaining = getattr(context, "get_remaining_time_in_millis", lambda: compaction.LEASE_S * 1000)() / 1000
    from elt_sdk.plugins import load_registry

    schema = load_registry().dataset(dataset).arrow_schema  # files of an older silver schema are left apart
    report = compaction.compact(S3Store(boto3.client("s3"), bucket), dataset, dt, in_place=in_place,
                                target_bytes=float(event.get("target_mb", 128)) * (1 << 20),
                                output_prefix=output_prefix, lease_s=remaining + 60, schema=schema)
    result = report.to_dict()
    logs.info(log, "partition compacted", **{k: v for k, v in result.items() if k != "keys"})
    return result
