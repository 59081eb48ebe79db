"""``elt-sdk transform``: the pipeline's transform on local files, into a local folder."""
from __future__ import annotations

import os
from pathlib import Path

import click

from elt_sdk.layout import bronze_key
from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, emit_table, progress, state, warn_broken
from elt_sdk.pipeline import Transformer
from elt_sdk.plugins import UnknownDataset
from elt_sdk.store import LocalStore
from elt_sdk.source import LocalSource
from elt_sdk.summary import RunSummary

SUFFIXES = (".json", ".jsonl", ".ndjson", ".gz")


def expand(paths: tuple[Path, ...]) -> list[Path]:
    """Files named, and the JSON/JSONL/.gz files below folders named; every path checked first."""
    files: list[Path] = []
    for p in paths:
        if not p.exists():
            raise UsageProblem(f"no such file or folder: {p}")
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES))
            if not found:
                raise UsageProblem(f"no .json, .jsonl, .ndjson or .gz files under {p}")
            files.extend(found)
        elif not os.access(p, os.R_OK):
            raise UsageProblem(f"cannot read {p}: permission denied")
        else:
            files.append(p)
    return files


def keyed(files: list[Path], bronze_prefix: str) -> list[tuple[Path, str]]:
    """Each file with the bronze key it stands for (``layout.bronze_key``); two files that would
    be one object (same key) are a usage error, not a silent overwrite."""
    seen: dict[str, Path] = {}
    out = []
    for f in files:
        key = bronze_key(f, bronze_prefix)
        if key in seen and seen[key].resolve() != f.resolve():
            raise UsageProblem(f"{seen[key]} and {f} would both be bronze key {key!r} (one object): put them under "
                               "bronze/<dataset>/ folders or rename one")
        if key not in seen:
            seen[key] = f
            out.append((f, key))
    return out


@click.command("transform")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for silver/ and quarantine/ (and _elt/, the commit records).")
@click.option("--dataset", "-d", default=None, help="Treat every file as this dataset (default: route by "
              "bronze/<dataset>/ folder, else by each record's record_type).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def command(paths: tuple[Path, ...], out: Path, dataset: str | None, as_json: bool) -> None:
    """Parse, validate, map and write local JSON / JSONL / .gz files as partitioned Parquet.

    Writes OUT/silver/<dataset>/dt=YYYY-MM-DD/*.parquet and OUT/quarantine/<dataset>/*.jsonl.
    Each file is one object, named by its bronze key (its path from a bronze/ folder, else
    bronze/<file name>): running again on a file replaces that file's rows, never adds to them,
    and a file that cannot be read leaves none of its rows (a marker under
    OUT/quarantine/_failed/ says why). Exit codes: 0 done, 1 some file failed, 2 bad arguments,
    130 interrupted.
    """
    from elt_sdk import memory
    from elt_sdk.commit import Committer
    from elt_sdk.errors import ObjectRefused
    from elt_sdk.framing import Limits

    cli_state = state()
    settings = cli_state.settings
    reg = cli_state.registry
    warn_broken(reg)
    if dataset:
        try:
            reg.dataset(dataset)
        except UnknownDataset as exc:
            raise UsageProblem(str(exc)) from None
    files = keyed(expand(paths), settings.bronze_prefix)
    memory.use_transform_pool()
    committer = Committer(LocalStore(out))
    transformer = Transformer(reg, limits=Limits.from_settings(settings))
    summary = RunSummary()
    with progress(files, "transforming", enabled=not as_json) as bar:
        for f, key in bar:
            source = None
            try:
                source = LocalSource.from_path(f, key=key)
                summary.add(transformer.transform_object(source, committer, dataset=dataset))
            except OSError as exc:
                summary.fail(str(f), f"cannot read: {exc.strerror or exc}")
            except Exception as exc:  # one bad file never stops its neighbours
                summary.fail(str(f), exc)
                if source is not None:
                    committer.mark_failed(_ref(source), f"{type(exc).__name__}: {exc}",
                                          stage="object" if isinstance(exc, ObjectRefused) else "transform")
    if as_json:
        emit_json({**summary.to_json(), "out": str(out)})
    else:
        emit_table(["dataset", "objects", "records in", "written", "quarantined"], summary.rows())
        click.echo(f"output: {out}")
    if len(summary.failed) == 1 and len(files) == 1:
        raise RunFailure(f"{summary.failed[0]['source']}: {summary.failed[0]['error']}")
    if summary.failed:
        for f in summary.failed:
            click.echo(f"failed: {f['source']}: {f['error']}", err=True)
        raise RunFailure(f"{len(summary.failed)} of {len(files)} file(s) failed (listed above); the others were written")


def _ref(source: LocalSource):  # noqa: ANN202
    from elt_sdk.source import SourceRef

    return SourceRef(source.uri, source.etag, 0, source.key, source.version)
