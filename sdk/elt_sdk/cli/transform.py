"""``elt-sdk transform``: the pipeline's transform on local files, into a local folder."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click

from elt_sdk import layout
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
            found = sorted(f for f in _files_under(p) if f.is_file() and f.name.endswith(SUFFIXES))
            if not found:
                raise UsageProblem(f"no .json, .jsonl, .ndjson or .gz files under {p}")
            files.extend(found)
        elif not os.access(p, os.R_OK):
            raise UsageProblem(f"cannot read {p}: permission denied")
        else:
            files.append(p)
    return files


def _files_under(folder: Path) -> list[Path]:
    """Every file below ``folder``, through linked folders too (``ln -s /data/feed
    bronze/shipments``), each real folder once, so a link back up cannot loop; real folders are
    walked before links to them, so a file keeps the key of where it really is."""
    seen: set[str] = set()
    found: list[Path] = []
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs.sort(key=lambda d: (os.path.islink(os.path.join(root, d)), d))
        found.extend(Path(root) / n for n in names)
    return found


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
@click.option("--silver-format", type=click.Choice(["parquet", "iceberg"]), default=None,
              help="Plain Parquet folders, or one Iceberg table per dataset (catalog OUT/iceberg.db; needs the "
                   "iceberg extra). Default: the silver_format setting.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def command(paths: tuple[Path, ...], out: Path, dataset: str | None, silver_format: str | None, as_json: bool) -> None:
    """Parse, validate, map and write local JSON / JSONL / .gz files as partitioned Parquet.

    Writes OUT/silver/<dataset>/dt=YYYY-MM-DD/*.parquet and OUT/quarantine/<dataset>/*.jsonl.
    Each file is one object, named by its bronze key (its path from a bronze/ folder, else
    bronze/<file name>): running again on a file replaces that file's rows, never adds to them,
    and a file that cannot be read leaves none of its rows (a marker under
    OUT/quarantine/_failed/ says why). With --silver-format iceberg, silver is one Iceberg table per
    dataset under OUT/silver/<dataset>/ (sqlite catalog OUT/iceberg.db): the run's objects are
    committed at its end, in one snapshot per table. Exit codes: 0 done, 1 some file failed, 2 bad
    arguments, 130 interrupted.
    """
    from elt_sdk import memory
    from elt_sdk.commit import committer_for
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
    silver_format = silver_format or settings.silver_format
    check_format(out, silver_format)
    memory.use_transform_pool()
    handed: list[dict[str, Any]] = []
    committer = committer_for(silver_format, LocalStore(out), send=handed.append)
    transformer = Transformer(reg, limits=Limits.from_settings(settings))
    summary = RunSummary()
    reports: list[tuple[Path, Any]] = []
    total = sum(f.stat().st_size for f, _ in files)
    with progress(None, "transforming", enabled=not as_json, length=max(total, 1), bytes_=True) as bar:
        for f, key in files:
            source = None
            try:
                source = LocalSource.from_path(f, key=key)
                reports.append((f, transformer.transform_object(Counted(source, bar.update), committer, dataset=dataset)))
            except OSError as exc:
                summary.fail(str(f), f"cannot read: {exc.strerror or exc}")
            except Exception as exc:  # one bad file never stops its neighbours
                summary.fail(str(f), exc)
                if source is not None:
                    committer.mark_failed(_ref(source), f"{type(exc).__name__}: {exc}",
                                          stage="object" if isinstance(exc, ObjectRefused) else "transform")
    snapshots = commit_iceberg(out, settings, handed, reports, summary) if silver_format == "iceberg" else {}
    for _, report in reports:
        summary.add(report)
    if as_json:
        emit_json({**summary.to_json(), "out": str(out), "silver_format": silver_format,
                   **({"snapshots": snapshots} if silver_format == "iceberg" else {})})
    else:
        emit_table(["dataset", "objects", "records in", "written", "quarantined"], summary.rows())
        click.echo(f"output: {out}" + (f" (Iceberg tables, catalog {out / 'iceberg.db'})"
                                        if silver_format == "iceberg" else ""))
    if len(summary.failed) == 1 and len(files) == 1:
        raise RunFailure(f"{summary.failed[0]['source']}: {summary.failed[0]['error']}")
    if summary.failed:
        for f in summary.failed:
            click.echo(f"failed: {f['source']}: {f['error']}", err=True)
        raise RunFailure(f"{len(summary.failed)} of {len(files)} file(s) failed (listed above); the others were written")


def check_format(out: Path, silver_format: str) -> None:
    """One silver format per output folder: plain day folders and Iceberg tables never mix."""
    from elt_sdk.layout import SILVER_PREFIX

    silver = out / SILVER_PREFIX
    plain = silver.is_dir() and any(silver.glob("*/dt=*"))
    iceberg = (out / layout.LOCAL_ICEBERG_CATALOG).is_file()
    if silver_format == "iceberg" and plain:
        raise UsageProblem(f"{out} holds plain Parquet silver (silver/<dataset>/dt=...): choose another --out for "
                           "Iceberg tables")
    if silver_format == "parquet" and iceberg:
        raise UsageProblem(f"{out} holds Iceberg tables (iceberg.db): choose another --out for plain Parquet, or "
                           "--silver-format iceberg")


def commit_iceberg(out: Path, settings: Any, handed: list[dict[str, Any]], reports: list[tuple[Path, Any]],
                   summary: RunSummary) -> dict[str, int]:
    """Commit every object handed off in this run: one snapshot per table. An object whose commit
    fails leaves no rows (its report is dropped, the file listed as failed, a marker written)."""
    try:
        from elt_sdk.iceberg.catalog import local_warehouse
        from elt_sdk.iceberg.committer import FAILED, CommitMessage, IcebergCommitter
    except ImportError as exc:
        raise UsageProblem(f"--silver-format iceberg needs the iceberg extra (pip install 'elt-sdk[iceberg]'): "
                           f"{exc}") from None
    from elt_sdk.query import database_name

    store = LocalStore(out)
    committer = IcebergCommitter(local_warehouse(out, database_name(settings.name_prefix)), store)
    results = committer.commit([CommitMessage.parse(m) for m in handed])
    failed = {r.message.key: r for r in results if r.status == FAILED}
    for r in failed.values():
        committer.mark_failed(r.message, r.error or "commit failed")
    for f, report in list(reports):
        key = bronze_key(f, settings.bronze_prefix)
        if key in failed:
            reports.remove((f, report))
            summary.fail(str(f), f"commit to the Iceberg table failed: {failed[key].error}")
    return {t: sid for r in results for t, sid in r.snapshots.items()}


class Counted:
    """A source whose reads advance a progress bar, in bytes of the file (so one big file shows
    progress too); it stands for the source in everything else."""

    def __init__(self, source: LocalSource, advance: Callable[[int], None]):
        self._source, self._advance, self._done = source, advance, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def open(self, start: int = 0) -> Any:
        return _CountingStream(self._source.open(start), self)

    def count(self, n: int) -> None:
        n = max(0, min(n, self._source.size - self._done))  # a re-read (the format sniff) counts once
        self._done += n
        if n:
            self._advance(n)


class _CountingStream:
    def __init__(self, stream: Any, counted: Counted):
        self._stream, self._counted = stream, counted

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._counted.count(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __enter__(self) -> "_CountingStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stream.close()


def _ref(source: LocalSource):  # noqa: ANN202
    from elt_sdk.source import SourceRef

    return SourceRef(source.uri, source.etag, 0, source.key, source.version)
