"""``elt-sdk bench``: throughput and memory against pyarrow-native, and cold import time."""
from __future__ import annotations

import sys

import click

from elt_sdk.cli.context import UsageProblem, emit_json, emit_table, state


@click.command("bench")
@click.option("--records", "-n", type=click.IntRange(1), default=200_000, show_default=True,
              help="Records per input (at least 1,000), or per object with --objects.")
@click.option("--invalid-rate", type=click.FloatRange(0, 0.5), default=0.02, show_default=True,
              help="Share of bad lines in the second input (half malformed, half schema-invalid).")
@click.option("--repeat", type=click.IntRange(1), default=3, show_default=True, help="Runs per contender (median).")
@click.option("--dataset", default="shipments", show_default=True,
              help="Any installed dataset: its records come from its plugin's elt_fake_records.")
@click.option("--peers", is_flag=True, help="Add DuckDB and polars (whichever is installed: pip install 'elt-sdk[bench]').")
@click.option("--cpus", type=click.IntRange(0), default=0, show_default=True,
              help="Pin every contender to this many cores (1 = a one-vCPU Lambda); 0 = all.")
@click.option("--objects", type=click.IntRange(1), default=None,
              help="Instead: many small objects of --records each (e.g. --objects 1000 --records 50): "
                   "elt-sdk transform against elt-sdk local run on the same files.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results.")
def command(records: int, invalid_rate: float, repeat: int, dataset: str, peers: bool, cpus: int, objects: int | None,
            as_json: bool) -> None:
    """Measure our transform, pyarrow-native read_json (explicit schema) + write_table, and a
    per-record Python path on the same generated input (an undeclared field in half the records,
    events over several days), each in its own process (records/s, MB/s, peak RSS, ratio to
    pyarrow-native), plus the transform handler's cold import against import pyarrow.parquet."""
    from elt_sdk import bench

    reg = state().registry
    if objects is None and records < 1000:
        raise UsageProblem("--records: at least 1000 (or give --objects for many small objects)")
    try:
        reg.dataset(dataset)
    except LookupError as exc:
        raise UsageProblem(str(exc)) from None
    show = (lambda msg: click.echo(f"  {msg}", err=True)) if not as_json and sys.stderr.isatty() else (lambda msg: None)
    if objects is not None:
        many = bench.many_objects(reg, objects=objects, records=records, repeat=repeat, dataset=dataset, progress=show)
        if as_json:
            emit_json(many)
        else:
            click.echo(f"{objects:,} objects of {records} {dataset} records: elt-sdk transform {many['transform_s']} s, "
                       f"local run {many['local_run_s']} s ({many['local_run_ms_per_object']} ms per object, "
                       f"{many['ratio']}x the transform); median of {repeat}")
            cpu = many["local_run_cpu_s"]
            click.echo(f"local run's account: {many['local_run_requests_per_object']} AWS requests per object; CPU "
                       + (f"pipeline {cpu['pipeline']} s + endpoint {cpu['endpoint']} s "
                          f"({many['local_run_cpu_ms_per_object']} ms per object): on {many['cpus']} cores no run can "
                          f"take less than {many['cpu_bound_s']} s ({many['cpu_bound_ratio']}x the transform)"
                          if many["cpu_bound_s"] else "unknown (the endpoint did not report its own)"))
        return
    if peers and not bench.available_peers():
        raise UsageProblem("--peers: neither duckdb nor polars is installed: pip install 'elt-sdk[bench]'")
    report = bench.run(reg, records=records, invalid_rate=invalid_rate, repeat=repeat, dataset=dataset, peers=peers,
                       cpus=cpus, progress=show)
    if as_json:
        emit_json(report)
        return
    emit_table(["contender", "input", "records/s", "MB/s", "median s", "peak RSS MiB", "vs pyarrow-native"],
               [(r["contender"], r["input"], f"{r['records_per_s']:,}", r["mb_per_s"], r["median_s"], r["peak_rss_mib"],
                 f"{r['vs_pyarrow_native']:.2f}x") for r in report["results"]])
    imp = report["import"]
    click.echo(f"cold import: transform handler {imp['handler_s'] * 1000:.0f} ms vs import pyarrow.parquet "
               f"{imp['pyarrow_parquet_s'] * 1000:.0f} ms ({imp['ratio']:.2f}x)")
    click.echo(f"{report['records']:,} {report['dataset']} records, median of {report['repeat']}, "
               f"Python {report['python']}, {report['cpus']} CPUs; pyarrow-native reads the clean input only")
