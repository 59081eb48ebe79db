"""Lambda: the quality gate's check: run a dataset's quality rules on one silver partition.

Event: ``{"dataset": "shipments", "dt": "2025-12-31"}`` (optionally ``"result_prefix"``) or an
EventBridge ``silver_partition_ready`` event. Writes the verdict under ``quality/results/`` and,
on failure, a marker under ``quality/quarantine/``; the Step Functions gate branches on
``passed``. ``elt-sdk dq check`` runs the same function (``quality.check_partition``).
"""
from __future__ import annotations

import os
from typing import Any

import boto3

from elt_sdk import logs
from elt_sdk.aws.s3 import S3Store
from elt_sdk.plugins import load_registry
from elt_sdk.quality import RESULTS_PREFIX, check_partition
from elt_sdk.settings import ENV_SILVER_BUCKET

log = logs.get("quality")
RESULTS = RESULTS_PREFIX


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    detail = event.get("detail", event)
    dataset_name, dt = detail["dataset"], detail["dt"]
    bucket = detail.get("bucket") or os.environ[ENV_SILVER_BUCKET]
    dataset = load_registry().dataset(dataset_name)
    verdict = check_partition(S3Store(boto3.client("s3"), bucket), dataset, dt,
                              results_prefix=detail.get("result_prefix") or RESULTS_PREFIX,
                              marker=os.environ.get("ELT_QUALITY_QUARANTINE_MARKER", "true") == "true")
    logs.info(log, "quality gate checked", dataset=dataset_name, dt=dt, passed=verdict["passed"], rows=verdict["rows"],
              failed=verdict["failed"])
    return verdict
