"""``elt-sdk bench``: our transform against pyarrow itself, in one run, on the same input.

Each measurement runs in a fresh subprocess (so peak RSS is that contender's own), contenders
alternate, and the median of ``repeat`` runs is reported with the ratio to pyarrow-native
``read_json`` + ``write_table`` on the clean version of the same records (pyarrow cannot read
input with malformed lines at all). Benchmarks report; they never pass or fail on a timing.
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

CONTENDERS = ("elt-sdk", "pyarrow-native", "per-record-python")


@dataclass
class Measurement:
    contender: str
    input: str
    records: int
    bytes: int
    seconds: list[float] = field(default_factory=list)
    peak_rss_mib: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def records_per_s(self) -> float:
        return self.records / self.median_s

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.median_s

    def to_dict(self, reference: "Measurement | None") -> dict[str, Any]:
        d = asdict(self)
        d.update(median_s=round(self.median_s, 3), records_per_s=round(self.records_per_s),
                 mb_per_s=round(self.mb_per_s, 1), peak_rss_mib=round(max(self.peak_rss_mib), 1),
                 vs_pyarrow_native=round(reference.median_s / self.median_s, 3) if reference else None)
        return d


def _worker(contender: str, path: str, out: str, dataset: str) -> dict[str, float]:
    """Runs in the subprocess: one contender, one input; reports its time and peak RSS."""
    if contender == "pyarrow-native":
        import pyarrow.json as pj
        import pyarrow.parquet as pq
        started = time.perf_counter()
        pq.write_table(pj.read_json(path), Path(out) / "native.parquet")
    elif contender == "per-record-python":
        import pyarrow as pa
        import pyarrow.parquet as pq

        from elt_sdk.defaults.validate import to_arrow
        from elt_sdk.plugins import load_registry
        ds = load_registry().dataset(dataset)
        started = time.perf_counter()
        valid, validator = [], ds.validator
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    validator(rec)
                except Exception:
                    continue
                valid.append(rec)
        pq.write_table(to_arrow(ds, valid), Path(out) / "records.parquet")
        del pa
    else:
        from elt_sdk import memory
        from elt_sdk.pipeline import Transformer
        from elt_sdk.plugins import load_registry
        from elt_sdk.source import LocalSource
        from elt_sdk.store import LocalStore
        memory.use_transform_pool()
        transformer = Transformer(load_registry())
        source = LocalSource(Path(path), key=f"bronze/{dataset}/bench.jsonl", etag="bench", size=os.path.getsize(path))
        started = time.perf_counter()
        transformer.transform_object(source, LocalStore(Path(out)), dataset=dataset)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mib": peak_rss_mib()}


def peak_rss_mib() -> float:
    """This process's own peak RSS. ``ru_maxrss`` survives exec (a child inherits its parent's high-water
    mark), so read VmHWM, which belongs to the address space exec created."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run(contender: str, path: Path, dataset: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="elt-bench-out-") as out:
        proc = subprocess.run([sys.executable, "-m", "elt_sdk.bench", contender, str(path), out, dataset],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{contender} failed: {proc.stderr.strip()[-1500:]}")
        return json.loads(proc.stdout)


def import_times(repeat: int = 5) -> dict[str, float]:
    """Cold import of the transform handler (SDK + installed plugins) vs ``import pyarrow.parquet``."""
    handler = ("import time; t = time.perf_counter(); import elt_sdk.aws.handlers as h; "
               "from elt_sdk.plugins import load_registry; from elt_sdk.pipeline import Transformer; "
               "Transformer(load_registry()); print(time.perf_counter() - t)")
    baseline = "import time; t = time.perf_counter(); import pyarrow.parquet; print(time.perf_counter() - t)"
    runs: dict[str, list[float]] = {"handler": [], "pyarrow.parquet": []}
    for _ in range(repeat):
        for name, code in (("handler", handler), ("pyarrow.parquet", baseline)):
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            runs[name].append(float(out.strip().splitlines()[-1]))
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {"handler_s": round(med["handler"], 4), "pyarrow_parquet_s": round(med["pyarrow.parquet"], 4),
            "ratio": round(med["handler"] / med["pyarrow.parquet"], 3)}


def run(registry, *, records: int, invalid_rate: float, repeat: int = 3, dataset: str = "shipments",
        contenders: tuple[str, ...] = CONTENDERS, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    from elt_sdk import generate

    ds = registry.dataset(dataset)
    with tempfile.TemporaryDirectory(prefix="elt-bench-") as tmp:
        clean, dirty = Path(tmp) / "clean.jsonl", Path(tmp) / "dirty.jsonl"
        inputs = {"clean": clean}
        with clean.open("wb") as fh:
            generate.write(fh, generate.generate(registry, ds, records, seed=1))
        if invalid_rate > 0:
            with dirty.open("wb") as fh:
                generate.write(fh, generate.generate(registry, ds, records, seed=1, invalid_rate=invalid_rate))
            inputs["invalid"] = dirty
        plan = [(c, name) for name in inputs for c in contenders if not (c == "pyarrow-native" and name == "invalid")]
        results = {(c, name): Measurement(c, name, records, inputs[name].stat().st_size) for c, name in plan}
        for i in range(repeat):
            for c, name in (plan if i % 2 == 0 else plan[::-1]):  # alternate the order between rounds
                progress(f"round {i + 1}/{repeat}: {c} on {name} input")
                got = _run(c, inputs[name], dataset)
                results[(c, name)].seconds.append(got["seconds"])
                results[(c, name)].peak_rss_mib.append(got["peak_rss_mib"])
    reference = results.get(("pyarrow-native", "clean"))
    return {
        "records": records, "invalid_rate": invalid_rate, "repeat": repeat, "dataset": dataset,
        "python": sys.version.split()[0], "cpus": os.cpu_count(),
        "results": [m.to_dict(reference) for m in results.values()],
        "import": import_times(),
    }


if __name__ == "__main__":
    print(json.dumps(_worker(*sys.argv[1:5])))
