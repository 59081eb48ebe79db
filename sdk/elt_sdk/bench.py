"""``elt-sdk bench``: our transform against pyarrow itself (and, with ``--peers``, DuckDB and
polars), in one run, on the same input.

Each measurement runs in a fresh subprocess (so peak RSS is that contender's own), contenders
alternate, and the median of ``repeat`` runs is reported with the ratio to pyarrow-native
``read_json`` (with the dataset's schema given explicitly) + ``write_table`` on the clean version
of the same records; pyarrow, DuckDB and polars cannot read input with malformed lines at all,
so they only run on the clean input. ``cpus`` pins every contender to that many cores (Lambda
gives a function CPU in proportion to its memory: 1,769 MB is one vCPU). Benchmarks report;
they never pass or fail on a timing.
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
PEERS = ("duckdb", "polars")
EXTRA_FIELD = "producer_note"
"""A field the schema does not name, in every generated record: real feeds carry some."""


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


def _transport(dataset: str):  # noqa: ANN202 - a pyarrow schema
    """The dataset's columns as JSON carries them (times as strings), all nullable."""
    import pyarrow as pa

    from elt_sdk.plugins import load_registry
    from elt_sdk.schema import transport_schema

    ds = load_registry().dataset(dataset)
    return ds, pa.schema([f.with_nullable(True) for f in transport_schema(ds.bronze_arrow_schema)])


def _worker(contender: str, path: str, out: str, dataset: str, cpus: str) -> dict[str, float]:
    """Runs in the subprocess: one contender, one input; reports its time and peak RSS."""
    if int(cpus) > 0:
        os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:int(cpus)]))
    if contender == "pyarrow-native":
        import pyarrow.json as pj
        import pyarrow.parquet as pq
        _, schema = _transport(dataset)
        options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
        started = time.perf_counter()
        pq.write_table(pj.read_json(path, parse_options=options), Path(out) / "native.parquet")
    elif contender == "duckdb":
        import duckdb
        ds, schema = _transport(dataset)
        columns = ", ".join(f"'{f.name}': '{_duck_type(f.type)}'" for f in schema)
        started = time.perf_counter()
        con = duckdb.connect()
        con.execute(f"COPY (SELECT *, CAST(CAST({ds.event_time_field} AS TIMESTAMPTZ) AS DATE) AS dt FROM read_json("
                    f"'{path}', format='newline_delimited', columns={{{columns}}})) TO '{out}/duck' "
                    "(FORMAT parquet, PARTITION_BY (dt))")
    elif contender == "polars":
        import polars as pl
        ds, schema = _transport(dataset)
        started = time.perf_counter()
        frame = pl.read_ndjson(path, schema={f.name: _polars_type(pl, f.type) for f in schema}, ignore_errors=False)
        frame = frame.with_columns(pl.col(ds.event_time_field).str.to_datetime(time_zone="UTC").dt.date().alias("dt"))
        frame.write_parquet(f"{out}/polars", partition_by=["dt"])
    elif contender == "per-record-python":
        import pyarrow as pa
        import pyarrow.parquet as pq
        ds, schema = _transport(dataset)
        started = time.perf_counter()
        valid, validator, names = [], ds.validator, set(schema.names)
        with open(path, "rb") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    validator(rec)
                except Exception:
                    continue
                valid.append({k: v for k, v in rec.items() if k in names})
        pq.write_table(pa.Table.from_pylist(valid, schema=schema), Path(out) / "records.parquet")
    else:
        from elt_sdk import memory
        from elt_sdk.pipeline import Transformer
        from elt_sdk.plugins import load_registry
        from elt_sdk.source import LocalSource
        from elt_sdk.store import LocalStore
        memory.use_transform_pool()
        transformer = Transformer(load_registry())
        source = LocalSource.from_path(path, key=f"bronze/{dataset}/bench.jsonl")
        started = time.perf_counter()
        transformer.transform_object(source, LocalStore(Path(out)), dataset=dataset)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_rss_mib": peak_rss_mib()}


def _duck_type(typ) -> str:  # noqa: ANN001
    import pyarrow as pa
    return {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}.get(typ, "JSON")


def _polars_type(pl, typ):  # noqa: ANN001, ANN202
    import pyarrow as pa
    return {pa.string(): pl.String, pa.int64(): pl.Int64, pa.float64(): pl.Float64, pa.bool_(): pl.Boolean}.get(typ, pl.String)


def usable_cpus() -> int:
    """The cores this process may run on (its affinity: a pinned run has fewer than the machine)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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


def _run(contender: str, path: Path, dataset: str, cpus: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="elt-bench-out-") as out:
        proc = subprocess.run([sys.executable, "-m", "elt_sdk.bench", contender, str(path), out, dataset, str(cpus)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{contender} failed: {proc.stderr.strip()[-1500:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


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


def available_peers() -> list[str]:
    import importlib.util

    return [p for p in PEERS if importlib.util.find_spec(p) is not None]


def _with_extra_field(lines, rng):  # noqa: ANN001, ANN202
    for line in lines:
        if line.startswith(b"{") and line.rstrip().endswith(b"}") and rng.random() < 0.5:
            body = line.rstrip()
            yield body[:-1] + b',"' + EXTRA_FIELD.encode() + b'":"batch ' + str(rng.randrange(1000)).encode() + b'"}\n'
        else:
            yield line


def run(registry, *, records: int, invalid_rate: float, repeat: int = 3, dataset: str = "shipments",
        contenders: tuple[str, ...] = CONTENDERS, peers: bool = False, cpus: int = 0,
        progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    import random

    from elt_sdk import generate

    ds = registry.dataset(dataset)
    contenders = tuple(contenders) + (tuple(available_peers()) if peers else ())
    with tempfile.TemporaryDirectory(prefix="elt-bench-") as tmp:
        clean, dirty = Path(tmp) / "clean.jsonl", Path(tmp) / "dirty.jsonl"
        inputs = {"clean": clean}
        with clean.open("wb") as fh:
            generate.write(fh, _with_extra_field(generate.generate(registry, ds, records, seed=1), random.Random(2)))
        if invalid_rate > 0:
            with dirty.open("wb") as fh:
                generate.write(fh, _with_extra_field(generate.generate(registry, ds, records, seed=1,
                                                                       invalid_rate=invalid_rate), random.Random(2)))
            inputs["invalid"] = dirty
        plan = [(c, name) for name in inputs for c in contenders if not (c not in ("elt-sdk", "per-record-python")
                                                                          and name == "invalid")]
        results = {(c, name): Measurement(c, name, records, inputs[name].stat().st_size) for c, name in plan}
        for i in range(repeat):
            for c, name in (plan if i % 2 == 0 else plan[::-1]):  # alternate the order between rounds
                progress(f"round {i + 1}/{repeat}: {c} on {name} input")
                got = _run(c, inputs[name], dataset, cpus)
                results[(c, name)].seconds.append(got["seconds"])
                results[(c, name)].peak_rss_mib.append(got["peak_rss_mib"])
    reference = results.get(("pyarrow-native", "clean"))
    return {
        "records": records, "invalid_rate": invalid_rate, "repeat": repeat, "dataset": dataset,
        "python": sys.version.split()[0], "cpus": cpus or usable_cpus(),
        "results": [m.to_dict(reference) for m in results.values()],
        "import": import_times(),
    }


def many_objects(registry, *, objects: int, records: int, workers: int = 4, repeat: int = 1, dataset: str = "shipments",
                 days: int = 1, progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Many small objects (a file per producer per minute, as real feeds arrive): ``elt-sdk
    transform DIR`` against ``elt-sdk local run DIR`` (ingest, SQS, transform and the commits on
    the embedded endpoint), each a whole process, on the same files."""
    import random

    ds = registry.dataset(dataset)
    runs: dict[str, list[float]] = {"transform": [], "local run": []}
    accounts: list[dict[str, Any]] = []  # each local run's summary, in the order of runs["local run"]
    with tempfile.TemporaryDirectory(prefix="elt-bench-many-") as tmp:
        folder = Path(tmp) / "bronze" / dataset
        folder.mkdir(parents=True)
        rng = random.Random(5)
        for i in range(objects):
            recs = registry.hooks(ds).elt_fake_records(dataset=ds, rng=rng, count=records)
            day = f"2025-06-{1 + (i % days):02d}"
            for r in recs:
                r[ds.event_time_field] = f"{day}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:00Z"
            (folder / f"part-{i:06d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        commands = {"transform": ["transform", str(folder.parent), "--out"],
                    "local run": ["local", "run", str(folder.parent), "--workers", str(workers), "--out"]}
        for i in range(repeat):
            for name in (commands if i % 2 == 0 else dict(reversed(list(commands.items())))):
                progress(f"round {i + 1}/{repeat}: {name} on {objects} objects")
                out = Path(tmp) / f"out-{name.replace(' ', '-')}-{i}"
                started = time.perf_counter()
                proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", *commands[name], str(out), "--json"],
                                      capture_output=True, text=True)
                runs[name].append(time.perf_counter() - started)
                if proc.returncode != 0:
                    raise RuntimeError(f"{name} failed: {proc.stderr.strip()[-1500:]}")
                summary = json.loads(proc.stdout)
                if summary["written"] != objects * records:
                    raise RuntimeError(f"{name} wrote {summary['written']} rows, not {objects * records}")
                if name == "local run":
                    accounts.append(summary)
    med = {k: statistics.median(v) for k, v in runs.items()}
    cpus = usable_cpus()
    # the account of the local run nearest the median: the requests it made, the CPU its processes used
    times = runs["local run"]
    median_run = accounts[min(range(len(times)), key=lambda i: abs(times[i] - med["local run"]))]
    cpu = median_run.get("cpu_s", {})
    cpu_total = sum(cpu.values()) if {"pipeline", "endpoint"} <= set(cpu) else None  # None: the endpoint's unknown
    return {"objects": objects, "records_per_object": records, "workers": workers, "repeat": repeat, "days": days,
            "transform_s": round(med["transform"], 2), "local_run_s": round(med["local run"], 2),
            "local_run_ms_per_object": round(med["local run"] / objects * 1000, 1),
            "ratio": round(med["local run"] / med["transform"], 2), "cpus": cpus,
            "local_run_requests_per_object": round(median_run.get("requests", {}).get("total", 0) / objects, 2),
            "local_run_requests": median_run.get("requests", {}).get("by_operation", {}),
            "local_run_cpu_s": cpu,
            "local_run_cpu_ms_per_object": round(cpu_total / objects * 1000, 1) if cpu_total else None,
            # no schedule on these cores finishes before the CPU all its processes used is spent
            "cpu_bound_s": round(cpu_total / cpus, 2) if cpu_total else None,
            "cpu_bound_ratio": round(cpu_total / cpus / med["transform"], 2) if cpu_total else None}


if __name__ == "__main__":
    print(json.dumps(_worker(*sys.argv[1:6])))
