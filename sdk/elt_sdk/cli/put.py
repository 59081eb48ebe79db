"""``elt-sdk put``: upload bronze objects to the targeted stack (its notification does the rest)."""
from __future__ import annotations

from pathlib import Path

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, progress, state
from elt_sdk.cli.targeting import TargetSpec, target_options
from elt_sdk.cli.transform import expand, keyed
from elt_sdk.plugins import UnknownDataset


def dataset_keys(files: list[Path], prefix: str) -> list[tuple[Path, str]]:
    """``prefix`` + file name for each file; two files with one name would be one object."""
    seen: dict[str, Path] = {}
    for f in files:
        key = prefix + f.name
        if key in seen and seen[key].resolve() != f.resolve():
            raise UsageProblem(f"{seen[key]} and {f} would both be bronze key {key!r} (one object): rename one")
        seen[key] = f
    return [(f, k) for k, f in seen.items()]


@click.command("put")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--dataset", "-d", default=None,
              help="Upload under this dataset's bronze prefix (<prefix><file name>) instead of keys from the paths.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable list of what was uploaded.")
@target_options
def command(paths: tuple[Path, ...], dataset: str | None, as_json: bool, target: TargetSpec) -> None:
    """Upload local JSON / JSONL / .gz files (or folders of them) to the stack's bronze bucket;
    the bucket's notification starts ingest and transform, as for any upload.

    Keys are derived as 'local run' derives them: a file's path from its bronze/ folder on
    (data/bronze/shipments/a.jsonl is bronze/shipments/a.jsonl), else bronze/<file name>
    (routed record by record by record_type); --dataset puts them under that dataset's prefix.
    Follow with 'elt-sdk status --wait 120'. Exit codes: 0 uploaded, 1 an upload failed, 2 bad
    arguments or no stack to upload to.
    """
    cli_state = state()
    files = expand(paths)
    if dataset:
        try:
            prefix = cli_state.registry.dataset(dataset).bronze_prefix
        except UnknownDataset as exc:
            raise UsageProblem(str(exc)) from None
        pairs = dataset_keys(files, prefix)
    else:
        pairs = keyed(files, cli_state.settings.bronze_prefix)
    stack = target.resolve()
    bucket = stack.bronze_bucket
    s3 = stack.client("s3")
    done: list[dict[str, object]] = []
    failed: list[str] = []
    total = sum(f.stat().st_size for f, _ in pairs)
    with progress(None, "uploading", enabled=not as_json, length=max(total, 1), bytes_=True) as bar:
        for f, key in pairs:
            try:
                s3.upload_file(str(f), bucket, key, Callback=bar.update)
            except Exception as exc:  # noqa: BLE001 - one failed upload never stops the others
                failed.append(f"{f}: {type(exc).__name__}: {exc}")
                continue
            done.append({"path": str(f), "key": key, "uri": f"s3://{bucket}/{key}", "bytes": f.stat().st_size})
    if as_json:
        emit_json({"target": stack.description, "bucket": bucket, "uploaded": done, "failed": failed})
    else:
        for d in done:
            click.echo(d["uri"])
        click.echo(f"uploaded {len(done)} object(s), {sum(int(d['bytes']) for d in done):,} bytes, to "
                   f"{stack.description}; follow with 'elt-sdk status --wait 120'", err=True)
    if failed:
        for line in failed:
            click.echo(f"failed: {line}", err=True)
        raise RunFailure(f"{len(failed)} of {len(pairs)} upload(s) failed (listed above)")
