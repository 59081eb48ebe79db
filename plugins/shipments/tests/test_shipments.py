"""The SDK's standard suite on the shipments dataset, plus what is particular to it."""
from __future__ import annotations

from elt_sdk.testing.suite import DatasetSuite


class TestShipments(DatasetSuite):
    dataset = "shipments"


def test_fake_records_are_valid_and_realistic():
    import random

    from elt_shipments import CARRIERS, DATASET, elt_fake_records

    records = elt_fake_records(dataset=DATASET, rng=random.Random(1), count=2000)
    for r in records:
        DATASET.validator(r)
    assert {r["carrier"] for r in records} == set(CARRIERS)
    assert all(r["origin"] != r["destination"] for r in records)
    weights = sorted(r["weight_kg"] for r in records)
    assert 0.1 <= weights[0] and weights[len(weights) // 2] < 20 < weights[-1]
