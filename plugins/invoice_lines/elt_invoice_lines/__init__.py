"""Invoice lines: what each shipment was billed."""
from __future__ import annotations

import random
from typing import Any

from elt_sdk import Dataset, event_time, hookimpl

__version__ = "1.0.0"

DATASET = Dataset.from_package(__name__, "invoice_lines", version=__version__, description="Invoice lines, one row per line.")


@hookimpl
def elt_datasets() -> list[Dataset]:
    return [DATASET]


@hookimpl
def elt_fake_records(dataset: Dataset, rng: random.Random, count: int) -> list[dict[str, Any]]:
    records = []
    for _ in range(count):
        quantity = min(int(rng.expovariate(0.35)) + 1, 50)
        unit_price = round(rng.uniform(1.0, 250.0), 2)
        records.append({
            "record_type": "invoice_lines",
            "event_time": event_time(rng),
            "invoice_id": f"INV-{rng.randrange(10**7):07d}",
            "sku": f"SKU-{rng.randrange(10**5):05d}",
            "quantity": quantity,
            "unit_price": unit_price,
            "line_total": round(quantity * unit_price, 2),
        })
    return records
