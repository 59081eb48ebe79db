"""The SDK's standard suite on the invoice_lines dataset, plus what is particular to it."""
from __future__ import annotations

from elt_sdk.testing.suite import DatasetSuite


class TestInvoiceLines(DatasetSuite):
    dataset = "invoice_lines"


def test_fake_line_totals_are_quantity_times_price():
    import random

    from elt_invoice_lines import DATASET, elt_fake_records

    for r in elt_fake_records(dataset=DATASET, rng=random.Random(2), count=500):
        DATASET.validator(r)
        assert abs(r["line_total"] - r["quantity"] * r["unit_price"]) <= 0.005
