"""The SDK's standard suite on the tracking_events dataset, plus what is particular to it."""
from __future__ import annotations

from elt_sdk.testing.suite import DatasetSuite


class TestTrackingEvents(DatasetSuite):
    dataset = "tracking_events"
