"""``elt-sdk replay``: run a dataset's bronze objects of a time window through the pipeline again."""
from __future__ import annotations

from datetime import datetime, timezone

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, emit_table, progress, state
from elt_sdk.cli.targeting import TargetSpec, target_options
from elt_sdk.plugins import UnknownDataset


@click.command("replay")
@click.option("--dataset", "-d", required=True, help="The dataset whose bronze objects to replay.")
@click.option("--since", default=None, metavar="TIME", help="Objects written at or after TIME (2026-01-01, 2026-01-01T06:00:00Z).")
@click.option("--until", default=None, metavar="TIME", help="... and before TIME (default: now).")
@click.option("--last", default=None, metavar="DURATION", help="Objects written in the last DURATION (30m, 6h, 2d).")
@click.option("--mode", type=click.Choice(["copy", "sqs"]), default="copy", show_default=True,
              help="copy: S3 copies under the replay prefix trigger ingest; sqs: pointer messages straight to the queue.")
@click.option("--dry-run", is_flag=True, help="List what would be replayed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@target_options
def command(dataset: str, since: str | None, until: str | None, last: str | None, mode: str, dry_run: bool,
            as_json: bool, target: TargetSpec) -> None:
    """Replay DATASET's bronze objects written in a window: their rows are replaced, never
    duplicated, and a replay reads each key's latest version, so an old version never comes back.

    copy (the default) copies each object under the replay prefix with metadata naming its
    original's version; the bucket's notification runs ingest and transform on the copy, routed
    by its original's key. sqs sends the pointer messages ingest would send (with force) straight
    to the queue. Follow with 'elt-sdk status --wait 300'. Exit codes: 0 done, 1 some object
    could not be replayed, 2 bad arguments or no stack.
    """
    from elt_sdk import timewindow
    from elt_sdk.aws import replay
    from elt_sdk.commit import Committer

    cli_state = state()
    try:
        ds = cli_state.registry.dataset(dataset)
        start, end = timewindow.window(since, until, last)
    except UnknownDataset as exc:
        raise UsageProblem(str(exc)) from None
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    t = target.resolve()
    settings = t.settings
    s3 = t.client("s3")
    silver, quarantine = t.stores()
    items = replay.plan(s3, t.bronze_bucket, ds.bronze_prefix, start, end, replay_prefix=settings.replay_prefix,
                        committer=Committer(silver, quarantine))
    summary = {"dataset": dataset, "mode": mode, "since": start.isoformat(), "until": end.isoformat(),
               "target": t.description, "objects": len(items), "dry_run": dry_run}
    if dry_run:
        if as_json:
            emit_json({**summary, "items": [i.to_dict() for i in items]})
            return
        emit_table(["key", "bytes", "written (UTC)", "version", "in silver"],
                   [(i.key, f"{i.size:,}", i.modified.strftime("%Y-%m-%d %H:%M:%S"), i.version.etag[:12],
                     "current" if i.committed else "no") for i in items])
        click.echo(f"{len(items)} object(s) of {dataset} would be replayed ({mode}); nothing changed (--dry-run)")
        return
    with progress(items, f"replaying ({mode})", enabled=not as_json) as bar:
        tick = lambda item: bar.update(1)  # noqa: E731
        if mode == "copy":
            done = replay.copy(s3, t.bronze_bucket, items, at=datetime.now(timezone.utc),
                               bronze_prefix=settings.bronze_prefix, replay_prefix=settings.replay_prefix, on_item=tick)
        else:
            done = replay.send(s3, t.client("sqs"), t.require("queue_url")[0], t.bronze_bucket, items,
                               registry=cli_state.registry, chunk_bytes=settings.chunk_bytes,
                               bronze_prefix=settings.bronze_prefix, replay_prefix=settings.replay_prefix, on_item=tick)
    summary.update(done)
    if as_json:
        emit_json({**summary, "items": [i.key for i in items]})
    elif mode == "copy":
        click.echo(f"replayed {done['copied']} of {len(items)} object(s) of {dataset} by copy under "
                   f"{done['dest_prefix']}" + (f"; {len(done['changed'])} changed since listed (their own event "
                                               "covers them)" if done["changed"] else ""))
    else:
        click.echo(f"replayed {done['sent']} object(s) of {dataset}: {done['messages']} message(s) sent to the queue")
    if not as_json:
        click.echo("follow with 'elt-sdk status --wait 300'", err=True)
    if mode == "copy" and len(done["changed"]) == len(items) and items:
        raise RunFailure("no object could be replayed: every one changed since it was listed")
