"""Realistic fake values for plugins' ``elt_fake_records`` (public API: ``from elt_sdk import event_time``),
and the schema-driven fake records the SDK's default hook returns."""
from __future__ import annotations

import random
import string
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from elt_sdk.schema import json_types

EPOCH_END = datetime(2026, 1, 1, tzinfo=timezone.utc)
"""Fake event times fall in the days before this instant, so ``gen --seed`` is reproducible."""

CITIES = (
    "New York", "Los Angeles", "Chicago", "Houston", "Phoenix", "Seattle", "Denver", "Atlanta",
    "Miami", "Boston", "Dallas", "San Francisco", "Toronto", "Mexico City", "London", "Rotterdam",
    "Hamburg", "Shanghai", "Shenzhen", "Singapore", "Tokyo", "Sydney", "Dubai", "Sao Paulo",
)
"""A vocabulary for plugins' fake records (origins, destinations, scan locations)."""


def event_time(rng: random.Random, days: int = 7, end: datetime = EPOCH_END) -> str:
    """An ISO-8601 UTC timestamp within ``days`` before ``end``."""
    moment = end - timedelta(seconds=rng.randrange(days * 86400))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def fake_value(prop: Mapping[str, Any], rng: random.Random, name: str = "") -> Any:
    if "const" in prop:
        return prop["const"]
    if "enum" in prop:
        return rng.choice(prop["enum"])
    types, _ = json_types(prop)
    kind = types[0]
    if kind == "string":
        fmt = prop.get("format")
        if fmt == "date-time":
            return event_time(rng)
        if fmt == "date":
            return event_time(rng)[:10]
        lo = prop.get("minLength", 4)
        hi = min(prop.get("maxLength", lo + 12), lo + 12)
        return "".join(rng.choices(string.ascii_lowercase, k=rng.randint(lo, hi)))
    if kind in ("integer", "number"):
        lo = prop.get("minimum", prop.get("exclusiveMinimum", 0))
        hi = prop.get("maximum", prop.get("exclusiveMaximum", lo + 1000))
        if kind == "integer":
            return rng.randint(int(lo) + ("exclusiveMinimum" in prop), int(hi) - ("exclusiveMaximum" in prop))
        return round(rng.uniform(lo, hi), 2)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [fake_value(prop["items"], rng) for _ in range(rng.randint(prop.get("minItems", 0), prop.get("minItems", 0) + 3))]
    if kind == "object":
        return fake_record(prop, rng)
    return None


def fake_record(schema: Mapping[str, Any], rng: random.Random) -> dict[str, Any]:
    props = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return {k: fake_value(p, rng, k) for k, p in props.items() if k in required or rng.random() < 0.8}
