"""Fake bronze events for any installed dataset, with a chosen share of bad lines.

Bad lines are always bad: a malformed line is a truncated JSON object or carries a non-UTF-8
byte; a schema-invalid record breaks one constraint of the schema, at any depth (a nested field
missing or mistyped, too few items, a pattern mismatch, not a multipleOf, a bound crossed, an
unknown enum value: ``elt_sdk.mutations``). So a test can count exactly what must reach silver
and what must reach quarantine.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import IO, Any, Iterator

from elt_sdk import mutations
from elt_sdk.dataset import Dataset
from elt_sdk.errors import FakeRecordError
from elt_sdk.plugins import Registry

BATCH = 5000


@dataclass
class GenStats:
    records: int = 0
    valid: int = 0
    malformed: int = 0
    schema_invalid: int = 0


def check_fake_records(dataset: Dataset, records: list[dict[str, Any]]) -> None:
    """Raise FakeRecordError at the first record the dataset's schema refuses: ``gen`` counts
    every record of the hook as valid, and the bad ones it adds are counted on that basis
    (``generate`` checks a hook's first batch of ``BATCH`` records)."""
    import copy

    import fastjsonschema

    for i, record in enumerate(records):
        try:
            dataset.validator(copy.deepcopy(record))  # it may fill in defaults: the record keeps its absent fields
        except fastjsonschema.JsonSchemaValueException as exc:
            raise FakeRecordError(f"dataset {dataset.name!r}: fake record {i} from its elt_fake_records breaks its "
                                  f"schema ({exc.message}); fix the hook so it returns valid records") from None


def schema_invalid(dataset: Dataset, record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A copy of ``record`` that breaks the schema once: a constraint at one depth chosen
    uniformly among those that apply to the record, then a place."""
    broken, _ = mutations.break_record(dataset.json_schema, record, rng)
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
        if done == 0:
            check_fake_records(dataset, records)
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
