"""Tracking events: scans of a shipment along its route."""
from __future__ import annotations

import random
from typing import Any

from elt_sdk import CITIES, Dataset, event_time, hookimpl

__version__ = "1.0.0"

DATASET = Dataset.from_package(__name__, "tracking_events", version=__version__, description="Shipment scans, one row per scan.")

STATUSES = ("CREATED", "PICKED_UP", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED", "EXCEPTION")
STATUS_WEIGHTS = (10, 15, 45, 12, 15, 3)


@hookimpl
def elt_datasets() -> list[Dataset]:
    return [DATASET]


@hookimpl
def elt_fake_records(dataset: Dataset, rng: random.Random, count: int) -> list[dict[str, Any]]:
    return [
        {
            "record_type": "tracking_events",
            "event_time": event_time(rng),
            "shipment_id": f"SHP-{rng.randrange(10**8):08d}",
            "status": rng.choices(STATUSES, STATUS_WEIGHTS)[0],
            "city": rng.choice(CITIES),
        }
        for _ in range(count)
    ]
