"""``elt-sdk status``: queues, recent objects, rows per dataset and last errors of a stack."""
from __future__ import annotations

import time
from typing import Any

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, emit_table
from elt_sdk.cli.targeting import TargetSpec, target_options
from elt_sdk.timewindow import parse_duration


def _window(text: str) -> float | None:
    if text.strip().lower() == "all":
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageProblem(f"--window: {exc}") from None


def render(s: dict[str, Any]) -> None:
    age = s.get("oldest_message_age_s")
    click.echo(f"{s['target']}")
    line = (f"queue {s['queue_depth']} waiting · {s['in_flight']} in flight · DLQ {s['dlq_depth']}"
            + (f" · ingest backlog {s['ingest_backlog']}" if "ingest_backlog" in s else "")
            + (f" · commits waiting {s['commit_backlog']} (DLQ {s.get('commit_dlq_depth', 0)})"
               if "commit_backlog" in s else "")
            + f" · oldest message {'-' if age is None else f'{age:.1f}s'}"
            + (" · drained" if s["drained"] else ""))
    click.echo(line)
    window = "all time" if s["window_s"] is None else f"the last {_human(s['window_s'])}"
    o = s["objects"]
    ing = o.get("ingested", {})
    click.echo(f"objects in {window}: ingested {ing.get('completed', 0)} (+{ing.get('in_progress', 0)} in progress) · "
               f"transformed {o['transformed']} · failed {o['failed']}" + (" (partial)" if o.get("partial") else ""))
    if s["datasets"]:
        rows = [(n, d["objects"], d["records_in"], d["written"], d["quarantined"], f"{d['quarantine_ratio']:.2%}")
                for n, d in s["datasets"].items()]
        emit_table(["dataset", "objects", "records in", "written", "quarantined", "ratio"], rows)
    for e in s["errors"]:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e["at"])) if e.get("at") else "?"
        click.echo(f"error [{e['source']}] {when}Z {e.get('key')}: {e.get('error')}")
    if s["dlq_depth"]:
        click.echo("inspect the DLQ with 'elt-sdk dlq list'; retry it with 'elt-sdk dlq redrive'")


def _human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable (queue_depth, in_flight, dlq_depth ... at the top).")
@click.option("--watch", "watch", type=click.FloatRange(0.5), default=None, is_flag=False, flag_value=2.0,
              metavar="[SECONDS]", help="Refresh every SECONDS (2 by default) until Ctrl-C.")
@click.option("--wait", "wait", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="First wait until the queues drain (exit 1 if they do not within SECONDS).")
@click.option("--window", default="24h", show_default=True,
              help="Recent means within this long (30m, 6h, 2d; 'all' for everything).")
@target_options
def command(as_json: bool, watch: float | None, wait: float | None, window: str, target: TargetSpec) -> None:
    """Queue depth, messages in flight, DLQ depth and the oldest message's age; objects
    ingested, transformed and failed recently; rows written and quarantined per dataset with the
    quarantine ratio; the last errors (failure markers, the DLQ's elt_error).

    Exit codes: 0 shown, 1 --wait timed out, 2 bad arguments or no stack.
    """
    from elt_sdk.aws import status as status_mod
    from elt_sdk.aws.target import LOCAL
    from elt_sdk.local import stack as local_stack

    window_s = _window(window)
    t = target.resolve()

    def local_stats() -> dict[str, Any] | None:
        return local_stack.read_stats() if t.kind == LOCAL else None

    if wait is not None:
        deadline = time.time() + wait
        while not status_mod.queues(t)["drained"]:
            if time.time() > deadline:
                s = status_mod.gather(t, window_s=window_s, local_stats=local_stats())
                emit_json(s) if as_json else render(s)
                raise RunFailure(f"the queues did not drain within {wait:g}s")
            time.sleep(0.25)
    if watch is None:
        s = status_mod.gather(t, window_s=window_s, local_stats=local_stats())
        emit_json(s) if as_json else render(s)
        return
    try:
        while True:
            s = status_mod.gather(t, window_s=window_s, local_stats=local_stats())
            if as_json:
                click.echo(__import__("json").dumps(s, sort_keys=True, default=str))
            else:
                click.clear()
                render(s)
            time.sleep(watch)
    except KeyboardInterrupt:
        return
