"""Memory stays flat as objects grow: the transform streams blocks and row groups."""
from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from elt_sdk import CITIES

WORKER = """
import sys
from elt_sdk import memory
from elt_sdk.bench import peak_rss_mib
from pathlib import Path
from elt_sdk.pipeline import Transformer
from elt_sdk.plugins import load_registry
from elt_sdk.store import LocalStore
from elt_sdk.source import LocalSource
memory.use_transform_pool()  # what the entry points choose
path = Path(sys.argv[1])
Transformer(load_registry()).transform_object(LocalSource(path, key="bronze/shipments/x.jsonl", etag="m", size=path.stat().st_size),
                                              LocalStore(Path(sys.argv[2])), dataset="shipments")
print(int(peak_rss_mib()))
"""


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_object(tmp_path):
    rng = random.Random(3)
    lines = "".join(json.dumps({"record_type": "shipments", "event_time": f"2025-06-{1 + i % 7:02d}T10:00:00Z",
                                "shipment_id": f"S{i}", "origin": rng.choice(CITIES), "destination": rng.choice(CITIES),
                                "carrier": "DHL", "weight_kg": rng.random() * 50}) + "\n" for i in range(20_000)).encode()
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_bytes(lines * 30)   # ~100 MB: past warm-up (pools, one row group buffered per partition)
    large.write_bytes(lines * 90)   # ~300 MB
    rss = {}
    for f in (small, large):
        proc = subprocess.run([sys.executable, "-c", WORKER, str(f), str(tmp_path / f.stem)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        rss[f.stem] = int(proc.stdout.strip())
    assert rss["large"] < rss["small"] + 25, rss  # 3x the data, (almost) the same memory
    assert rss["large"] < 300, rss
