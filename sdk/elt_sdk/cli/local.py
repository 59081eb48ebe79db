"""``elt-sdk local run``: the whole pipeline on an embedded AWS endpoint."""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, emit_table, state, warn_broken
from elt_sdk.cli.transform import expand, keyed
from elt_sdk import layout
from elt_sdk.settings import Settings, SettingsError


@click.group("local")
def command() -> None:
    """Run the pipeline locally: moto's server on loopback stands in for AWS."""


@command.command("run")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("elt-out"),
              show_default=True, help="Where silver/, quarantine/, dlq/ and logs/ are copied.")
@click.option("--workers", "-w", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Concurrent transform pollers (the event source mapping's concurrency), shared by up to two "
                   "processes.")
@click.option("--records", type=click.IntRange(1), default=5000, show_default=True,
              help="Records per generated file, when no PATH is given.")
@click.option("--invalid-rate", type=click.FloatRange(0, 1), default=0.02, show_default=True,
              help="Share of bad lines in generated files.")
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Settings file (default: ./elt-sdk.toml if present).")
@click.option("--chunk-bytes", type=click.IntRange(1), default=None, help="Split objects larger than this.")
@click.option("--timeout", type=click.FloatRange(1), default=900, show_default=True, help="Seconds to wait for the queue to drain.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable summary.")
def run(paths: tuple[Path, ...], out: Path, workers: int, records: int, invalid_rate: float,
        config: Path | None, chunk_bytes: int | None, timeout: float, as_json: bool) -> None:
    """Upload PATHs (or generated events for every dataset) to bronze and run ingest and
    transform until the queue drains; then copy the results to OUT and print a summary.

    Exit codes: 0 done, 1 something landed in the DLQ or failed ingest (except the demo's
    deliberate poison object), 2 bad arguments.
    """
    from elt_sdk.local import sample as sample_mod
    from elt_sdk.local.runtime import LocalPipeline, OutputFolderError, Upload, check_output_folder

    try:
        settings = Settings.load(config or state().config, chunk_bytes=chunk_bytes)
    except SettingsError as exc:
        raise UsageProblem(str(exc)) from None
    reg = state().registry
    warn_broken(reg)
    try:
        check_output_folder(out)
    except OutputFolderError as exc:
        raise UsageProblem(str(exc)) from None
    tmp = tempfile.TemporaryDirectory(prefix="elt-demo-")
    expected = None
    if paths:
        uploads = [Upload(f, key) for f, key in keyed(expand(paths), settings.bronze_prefix)]
        sample = None
    else:
        sample = sample_mod.build(reg, Path(tmp.name), records=records, invalid_rate=invalid_rate)
        uploads, expected = sample.uploads, sample.expected
    pipeline = LocalPipeline(settings, workers=workers, out=out, timeout_s=timeout)
    show = (not as_json) and sys.stderr.isatty()
    from elt_sdk import logs

    logs.configure(sys.stderr, level="CRITICAL")  # the run's logs go to OUT/logs/; the summary says what failed

    def progress(p: dict[str, int]) -> None:
        if show:
            rate = p["transformed"] / p["seconds"] if p.get("seconds") else 0.0
            click.echo(f"\r  uploaded {p['uploaded']}/{p['objects']} · ingested {p['ingested']}/{p['objects']} · "
                       f"transformed {p['transformed']}/{p['messages']} messages ({rate:.0f}/s) · "
                       f"retried {p['retried']}   ", err=True, nl=False)

    if not as_json:
        click.echo(f"uploading {len(uploads)} object(s) to an embedded AWS endpoint ...", err=True)
    try:
        result = pipeline.run(uploads, duplicate_events=sample.duplicates if sample else [], on_progress=progress)
    except TimeoutError as exc:
        raise RunFailure(str(exc)) from None
    except OutputFolderError as exc:
        raise UsageProblem(str(exc)) from None
    finally:
        tmp.cleanup()
    if show:
        click.echo("", err=True)
    summary = result.to_json()
    poison = set(sample.poison) if sample else set()
    unexpected_dlq = [m for m in result.dlq if not any(p in m["body"] for p in poison)]
    if expected is not None:
        summary["expected"] = expected
        summary["matches_expected"] = all(result.datasets.get(k) == v for k, v in expected.items())
    if as_json:
        emit_json(summary)
    else:
        rows = [(n, d["records_in"], d["written"], d["quarantined"]) for n, d in sorted(result.datasets.items())]
        t = result.totals
        rows.append(("TOTAL", t["records_in"], t["written"], t["quarantined"]))
        emit_table(["dataset", "records in", "written", "quarantined"], rows)
        ing = result.ingest
        click.echo(f"objects {result.objects} · enqueued {ing.get('enqueued', 0)} · skipped (already ingested) "
                   f"{ing.get('skipped', 0)} · ingest failed {result.ingest_given_up} · DLQ {len(result.dlq)}"
                   + (f" (the deliberate poison object: {', '.join(sorted(poison))})" if poison and result.dlq else ""))
        if expected is not None:
            click.echo("counts match the generated input: " + ("yes" if summary["matches_expected"] else "NO"))
        click.echo(f"output: {out}/ (silver/, quarantine/, dlq/, logs/) in {result.seconds:.1f}s")
    if set(result.datasets) == {layout.UNROUTED}:
        click.echo(f"warning: every record ended in quarantine/{layout.UNROUTED}/: no file was under a "
                   f"{settings.bronze_prefix}<dataset>/ folder and no record had a known record_type "
                   "(see 'elt-sdk plugins' for the datasets and CONTRIBUTING.md 'How files become keys')", err=True)
    if unexpected_dlq or result.ingest_given_up or (expected is not None and not summary["matches_expected"]):
        raise RunFailure("some objects did not make it: see dlq/ and logs/ under " + str(out))


@command.command("up")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port of the endpoint on 127.0.0.1 (0: a free one).")
@click.option("--workers", "-w", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Concurrent transform pollers, shared by up to two processes.")
@click.option("--detach", "-d", is_flag=True, help="Run in the background (logs in .elt-local/logs/).")
@click.option("--json", "as_json", is_flag=True, help="Print the stack's state as JSON once it serves.")
def up(port: int, workers: int, detach: bool, as_json: bool) -> None:
    """Start the local stack and keep it running: the embedded endpoint, the resources from the
    settings (as 'local run' creates them), the ingest trigger and the transform pollers.

    Commands run from this folder (put, status, replay, dlq, compact, dq, query, invoke, verify)
    act on it without flags. Stop it with Ctrl-C, or 'elt-sdk local down' when detached. Its
    state is in .elt-local/ (state.json, stats.json, logs/). Exit codes: 0 stopped cleanly,
    1 its pollers failed, 2 bad arguments or a stack already running here.
    """
    from elt_sdk.local import stack

    cli_state = state()
    settings = cli_state.settings
    existing = stack.read_state()
    if existing is not None:
        if existing.alive:
            raise UsageProblem(f"a local stack is already running here: pid {existing.pid} at {existing.endpoint_url} "
                               "(stop it with 'elt-sdk local down')")
        click.echo(f"warning: removing stale state of pid {existing.pid} (not running)", err=True)
        (stack.state_dir() / stack.STATE_FILE).unlink(missing_ok=True)

    def announce(st: "stack.StackState") -> None:
        if as_json:
            emit_json(st.to_dict())
        else:
            click.echo(f"local stack up at {st.endpoint_url} (pid {st.pid}); bronze s3://{st.resources['bronze_bucket']}")
            click.echo("  elt-sdk put FILE...    upload to bronze      elt-sdk status    queues, objects, rows")
            click.echo("  elt-sdk local down     stop it" + ("" if detach else " (or Ctrl-C)"))

    if detach:
        argv = [*(["--config", str(cli_state.config)] if cli_state.config else []),
                *[a for name in cli_state.disabled for a in ("--disable-plugin", name)],
                "local", "up", "--port", str(port), "--workers", str(workers)]
        try:
            st = stack.start_detached(argv)
        except RuntimeError as exc:
            raise RunFailure(str(exc)) from None
        announce(st)
        return
    try:
        code = stack.serve(settings, port=port, workers=workers, ready=announce)
    except OSError as exc:
        raise UsageProblem(str(exc)) from None
    if code:
        raise RunFailure("the local stack stopped because its pollers failed (see .elt-local/logs/)")
    if not as_json:
        click.echo("local stack stopped", err=True)


@command.command("down")
@click.option("--timeout", type=click.FloatRange(1), default=30, show_default=True, help="Seconds to wait for it to stop.")
def down(timeout: float) -> None:
    """Stop the local stack running in this folder (and remove its state). A stale state file
    (its process gone) is removed and reported. Exit 1 when no stack runs here."""
    from elt_sdk.local import stack

    try:
        st = stack.stop(timeout_s=timeout)
    except stack.StaleStack as exc:
        click.echo(f"removed stale state: pid {exc.state.pid} was not running", err=True)
        return
    except stack.NotRunning as exc:
        raise RunFailure(str(exc)) from None
    except TimeoutError as exc:
        raise RunFailure(str(exc)) from None
    click.echo(f"local stack stopped (pid {st.pid}, {st.endpoint_url})")


@command.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def local_status(as_json: bool) -> None:
    """Is a local stack running in this folder: its pid, endpoint, resources and what its
    functions did. Exit 0 running, 1 not running (or a stale state file, reported)."""
    import time

    from elt_sdk.local import stack

    st = stack.read_state()
    if st is None or not st.alive:
        payload = {"running": False, "stale": st is not None, **({"pid": st.pid, "endpoint_url": st.endpoint_url}
                                                                 if st else {})}
        if as_json:
            emit_json(payload)
        raise RunFailure(str(stack.StaleStack(st)) if st else "no local stack running here "
                         "(start one with 'elt-sdk local up --detach')")
    stats = stack.read_stats() or {}
    payload = {"running": True, **st.to_dict(), "uptime_s": round(time.time() - st.started_at, 1), "stats": stats}
    if as_json:
        emit_json(payload)
        return
    click.echo(f"running: pid {st.pid} at {st.endpoint_url} for {payload['uptime_s']:.0f}s ({st.workers} transform "
               f"pollers); logs in {st.logs}")
    for key, value in sorted(st.resources.items()):
        click.echo(f"  {key:<18} {value}")
    if stats:
        i, t = stats.get("ingest", {}), stats.get("transform", {})
        click.echo(f"  ingest: {i.get('invocations', 0)} invocations, {i.get('failed', 0)} failed · transform: "
                   f"{t.get('messages', 0)} messages, {t.get('succeeded', 0)} done, {t.get('failed', 0)} retried")
