"""Fake bronze events for any installed dataset, with a chosen share of bad lines.

Bad lines are always bad: a malformed line is a truncated JSON object or carries a non-UTF-8
byte; a schema-invalid record misses a required field or has a value of the wrong type. So a
test can count exactly what must reach silver and what must reach quarantine.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import IO, Any, Iterator, Mapping

from elt_sdk.dataset import Dataset
from elt_sdk.plugins import Registry
from elt_sdk.schema import json_types

BATCH = 5000


@dataclass
class GenStats:
    records: int = 0
    valid: int = 0
    malformed: int = 0
    schema_invalid: int = 0


def wrong_type_values(prop: Mapping[str, Any], current: Any) -> list[Any]:
    """Values of the wrong JSON type for a property, the ones feeds really send."""
    try:
        types, nullable = json_types(prop)
    except ValueError:
        return []
    kind = types[0] if len(types) == 1 else None
    out: list[Any] = [] if nullable else [None]
    if kind in ("number", "integer"):
        out += [str(current if isinstance(current, (int, float)) and not isinstance(current, bool) else 12.5), True]
        if kind == "integer":
            out.append(2.5)
    elif kind == "string":
        out += [12345, {"nested": "object"}]
    elif kind == "boolean":
        out += ["true", 1]
    elif kind == "array":
        out += ["not an array"]
    elif kind == "object":
        out += ["not an object"]
    return out


def schema_invalid(dataset: Dataset, record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of ``record`` that breaks the schema: a required field missing or mistyped."""
    broken = dict(record)
    required = [f for f in dataset.json_schema.get("required", ()) if f in broken]
    name = rng.choice(required)
    prop = dataset.json_schema["properties"][name]
    wrong = wrong_type_values(prop, broken[name])
    if rng.random() < 0.3 or not wrong:
        del broken[name]
    else:  # "12.5" for a number, 2.5 for an integer, 12345 for a string: the reference coerced these
        broken[name] = rng.choice(wrong)
    return broken


def malformed(line: bytes, rng: random.Random) -> bytes:
    """A line no JSON parser accepts: truncated, or a non-UTF-8 byte inside a string."""
    if rng.random() < 0.8:
        return line[: rng.randrange(1, len(line) - 1)]
    quote = line.find(b'"', 2)
    return line[: quote + 1] + b"\xff\xfe" + line[quote + 1 :]


def generate(registry: Registry, dataset: Dataset, count: int, *, seed: int | None = None,
             invalid_rate: float = 0.0, fmt: str = "jsonl", stats: GenStats | None = None) -> Iterator[bytes]:
    """Lines of a JSONL file (or the pieces of a JSON array) with ``count`` records."""
    rng = random.Random(seed)
    stats = stats if stats is not None else GenStats()
    first = True
    if fmt == "json":
        yield b"[\n"
    done = 0
    while done < count:
        n = min(BATCH, count - done)
        records = registry.hooks(dataset).elt_fake_records(dataset=dataset, rng=rng, count=n)
        for record in records:
            bad = invalid_rate > 0 and rng.random() < invalid_rate
            if bad and (fmt == "json" or rng.random() < 0.5):
                record = schema_invalid(dataset, record, rng)
                stats.schema_invalid += 1
                bad = False
                line = json.dumps(record, separators=(",", ":")).encode()
            else:
                line = json.dumps(record, separators=(",", ":")).encode()
                if bad:
                    line = malformed(line, rng)
                    stats.malformed += 1
                else:
                    stats.valid += 1
            stats.records += 1
            if fmt == "json":
                yield (b"" if first else b",\n") + line
            else:
                yield line + b"\n"
            first = False
        done += n
    if fmt == "json":
        yield b"\n]\n"


def write(out: IO[bytes], lines: Iterator[bytes]) -> None:
    buf: list[bytes] = []
    for line in lines:
        buf.append(line)
        if len(buf) >= 4096:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
