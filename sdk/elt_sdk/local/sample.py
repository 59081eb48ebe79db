"""The demo's bronze input: generated files for every installed dataset in the forms feeds
arrive in (JSONL, a gzipped JSON array, a mixed file routed by record_type), one duplicate
delivery and one poison object, with the counts each must produce."""
from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from elt_sdk import generate
from elt_sdk.local.runtime import Upload
from elt_sdk.plugins import Registry

POISON_KEY = "bronze/{dataset}/poison-not-really.jsonl.gz"


@dataclass
class Sample:
    uploads: list[Upload] = field(default_factory=list)
    duplicates: list[Upload] = field(default_factory=list)
    expected: dict[str, dict[str, int]] = field(default_factory=dict)
    poison: list[str] = field(default_factory=list)

    def expect(self, dataset: str, valid: int, invalid: int) -> None:
        e = self.expected.setdefault(dataset, {"records_in": 0, "written": 0, "quarantined": 0})
        e["records_in"] += valid + invalid
        e["written"] += valid
        e["quarantined"] += invalid


def build(registry: Registry, folder: Path, *, records: int, invalid_rate: float, seed: int = 7) -> Sample:
    """Write the sample under ``folder`` and describe it."""
    sample = Sample()
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(registry.datasets)
    for n, name in enumerate(names):
        ds = registry.datasets[name]
        for part in range(2):
            stats = generate.GenStats()
            path = folder / f"{name}-{part:03d}.jsonl"
            with path.open("wb") as fh:
                generate.write(fh, generate.generate(registry, ds, records, seed=seed + 10 * n + part,
                                                     invalid_rate=invalid_rate, stats=stats))
            sample.uploads.append(Upload(path, f"{ds.bronze_prefix}{path.name}"))
            sample.expect(name, stats.valid, stats.malformed + stats.schema_invalid)
        stats = generate.GenStats()
        path = folder / f"{name}-array.json.gz"
        body = b"".join(generate.generate(registry, ds, max(records // 10, 1), seed=seed + 10 * n + 9, fmt="json",
                                          invalid_rate=invalid_rate, stats=stats))
        path.write_bytes(gzip.compress(body, mtime=0))
        sample.uploads.append(Upload(path, f"{ds.bronze_prefix}{path.name}"))
        sample.expect(name, stats.valid, stats.schema_invalid)
    # one object mixing every dataset, under no dataset's prefix: routed record by record
    rng = random.Random(seed)
    mixed = []
    for name in names:
        recs = registry.hooks(name).elt_fake_records(dataset=registry.datasets[name], rng=rng, count=max(records // 20, 1))
        mixed.extend(recs)
        sample.expect(name, len(recs), 0)
    rng.shuffle(mixed)
    path = folder / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in mixed))
    sample.uploads.append(Upload(path, "bronze/mixed/mixed.jsonl"))
    # the same bytes uploaded again under the same key: S3 notifies twice, ingest skips once
    sample.duplicates.append(sample.uploads[0])
    # an object that fails every time: its message must end in the DLQ
    if names:
        path = folder / "poison.jsonl.gz"
        path.write_bytes(b"\x1f\x8b\x08\x00 this is not gzip")
        key = POISON_KEY.format(dataset=names[0])
        sample.uploads.append(Upload(path, key))
        sample.poison.append(key)
    return sample
