"""CloudWatch metrics in Embedded Metric Format: a JSON log line that CloudWatch turns into
metrics, with no API call on the hot path. The alarms and dashboard (deploy/) read these names."""
from __future__ import annotations

import json
import time
from typing import Mapping

from elt_sdk import logs


def emf(namespace: str, dimensions: Mapping[str, str], values: Mapping[str, float],
        units: Mapping[str, str] | None = None) -> str:
    units = units or {}
    doc = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [sorted(dimensions)],
                "Metrics": [{"Name": k, "Unit": units.get(k, "Count")} for k in values],
            }],
        },
        **dimensions,
        **values,
    }
    return json.dumps(doc)


def put(namespace: str, dimensions: Mapping[str, str], values: Mapping[str, float],
        units: Mapping[str, str] | None = None) -> None:
    """Emit one EMF document on the SDK's log stream (stdout in Lambda)."""
    logs.write_raw(emf(namespace, dimensions, values, units))
