"""Default fake records: values drawn from the JSON Schema (types, enums, ranges, formats).

The helpers plugins use moved to the public ``elt_sdk.fake`` (``from elt_sdk import event_time``);
importing them from here still works, with a DeprecationWarning, until elt-sdk 1.0.
"""
from __future__ import annotations

import random
import warnings
from typing import Any

from elt_sdk import fake as _fake
from elt_sdk import hookimpl
from elt_sdk.dataset import Dataset

_MOVED = ("CITIES", "EPOCH_END", "event_time", "fake_value", "fake_record")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(f"elt_sdk.defaults.fake.{name} is internal; import it from elt_sdk "
                      f"(from elt_sdk import {name}) - this alias goes in elt-sdk 1.0",
                      DeprecationWarning, stacklevel=2)
        return getattr(_fake, name)
    raise AttributeError(name)


@hookimpl(trylast=True)
def elt_fake_records(dataset: Dataset, rng: random.Random, count: int) -> list[dict[str, Any]]:
    return _fake.valid_fake_records(dataset, rng, count)
