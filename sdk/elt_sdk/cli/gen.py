"""``elt-sdk gen``: realistic fake events for any installed dataset."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Iterator

import click

from elt_sdk import generate
from elt_sdk.cli.context import UsageProblem, progress, state
from elt_sdk.errors import FakeRecordError
from elt_sdk.plugins import UnknownDataset


@click.command("gen")
@click.argument("dataset")
@click.option("--count", "-n", type=click.IntRange(min=0), default=1000, show_default=True, help="Records to generate.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "json"]), default="jsonl", show_default=True,
              help="JSON Lines, or one JSON array.")
@click.option("--invalid-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of records made malformed or schema-invalid.")
@click.option("--seed", type=int, default=None, help="Seed for reproducible output.")
@click.option("--out", "-o", type=click.Path(dir_okay=False, writable=True, path_type=Path), default=None,
              help="Output file ('.gz' compresses); stdout when omitted.")
def command(dataset: str, count: int, fmt: str, invalid_rate: float, seed: int | None, out: Path | None) -> None:
    """Generate COUNT fake DATASET events; a summary goes to stderr as JSON."""
    reg = state().registry
    try:
        ds = reg.dataset(dataset)
    except UnknownDataset as exc:
        raise UsageProblem(str(exc)) from None
    stats = generate.GenStats()
    lines = generate.generate(reg, ds, count, seed=seed, invalid_rate=invalid_rate, fmt=fmt, stats=stats)
    if out is None:
        generate.write(sys.stdout.buffer, lines)
    else:
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            with progress(None, f"generating {ds.name}", length=max(count, 1)) as bar:
                lines = _counted(lines, stats, bar.update)
                if out.suffix == ".gz":
                    import gzip
                    with gzip.open(out, "wb") as fh:
                        generate.write(fh, lines)
                else:
                    with out.open("wb") as fh:
                        generate.write(fh, lines)
        except OSError as exc:
            raise UsageProblem(f"cannot write {out}: {exc.strerror}") from None
        except FakeRecordError:  # nothing half-written stays behind
            out.unlink(missing_ok=True)
            raise
    click.echo(json.dumps({"dataset": ds.name, "records": stats.records, "valid": stats.valid,
                           "malformed": stats.malformed, "schema_invalid": stats.schema_invalid,
                           "out": str(out) if out else "-"}), err=True)


def _counted(lines: Iterator[bytes], stats: generate.GenStats, advance: Callable[[int], None],
             every: int = 2000) -> Iterator[bytes]:
    """``lines``, advancing a progress bar by records every ``every`` of them."""
    shown = 0
    for line in lines:
        yield line
        if stats.records - shown >= every:
            advance(stats.records - shown)
            shown = stats.records
    advance(stats.records - shown)
