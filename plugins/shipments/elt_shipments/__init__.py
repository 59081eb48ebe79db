"""Shipments: one record per shipment created (the reference pipeline's main feed)."""
from __future__ import annotations

import random
from typing import Any

from elt_sdk import CITIES, Dataset, event_time, hookimpl

__version__ = "1.0.0"

DATASET = Dataset.from_package(__name__, "shipments", version=__version__, description="Shipments created, one row each.")

CARRIERS = ("UPS", "FedEx", "DHL", "USPS", "OnTrac", "Maersk")
CARRIER_WEIGHTS = (30, 25, 20, 15, 6, 4)


@hookimpl
def elt_datasets() -> list[Dataset]:
    return [DATASET]


@hookimpl
def elt_fake_records(dataset: Dataset, rng: random.Random, count: int) -> list[dict[str, Any]]:
    records = []
    for _ in range(count):
        origin, destination = rng.sample(CITIES, 2)
        records.append({
            "record_type": "shipments",
            "event_time": event_time(rng),
            "shipment_id": f"SHP-{rng.randrange(10**8):08d}",
            "origin": origin,
            "destination": destination,
            "carrier": rng.choices(CARRIERS, CARRIER_WEIGHTS)[0],
            "weight_kg": round(min(max(rng.lognormvariate(1.6, 0.9), 0.1), 2000.0), 2),
        })
    return records
