"""``elt-sdk dlq``: list, show, redrive and purge the dead-letter queue of a stack."""
from __future__ import annotations

import json
import time

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, emit_table, progress
from elt_sdk.cli.targeting import TargetSpec, target_options


@click.group("dlq")
def command() -> None:
    """The dead-letter queue: messages whose object failed every retry, or could never succeed."""


def _dlq(target: TargetSpec):  # noqa: ANN202
    from elt_sdk.aws.target import TargetError

    t = target.resolve()
    try:
        t.require("dlq_url", "queue_url")
    except TargetError as exc:
        raise UsageProblem(str(exc)) from None
    return t


@command.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: one object per message (its object key, elt_error ...).")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many messages.")
@target_options
def list_(as_json: bool, limit: int | None, target: TargetSpec) -> None:
    """Each message of the DLQ: its id, the object it points to, why it failed, its receives and age.
    Messages are read and made visible again at once (nothing is taken off the queue)."""
    from elt_sdk.aws import dlq

    t = _dlq(target)
    msgs = [m.summary() for m in dlq.snapshot(t.client("sqs"), t.outputs["dlq_url"], limit=limit)]
    if as_json:
        emit_json(msgs)
        return
    emit_table(["message id", "object key", "receives", "age", "error"],
               [(m["message_id"], m["key"] or "(not a pointer)", m["receive_count"],
                 f"{m['age_s']:.0f}s" if m["age_s"] is not None else "-", (m["error"] or "-")[:80]) for m in msgs])
    click.echo(f"{len(msgs)} message(s) in the DLQ of {t.description}"
               + ("; 'elt-sdk dlq show ID' for one, 'elt-sdk dlq redrive' to retry them" if msgs else ""))


@command.command("show")
@click.argument("message_id")
@target_options
def show(message_id: str, target: TargetSpec) -> None:
    """One message (by id, or a unique prefix of it): its body, attributes and error, as JSON."""
    from elt_sdk.aws import dlq

    t = _dlq(target)
    found = [m for m in dlq.snapshot(t.client("sqs"), t.outputs["dlq_url"]) if m.message_id.startswith(message_id)]
    if not found:
        raise RunFailure(f"no message {message_id!r} in the DLQ (see 'elt-sdk dlq list')")
    if len(found) > 1:
        raise UsageProblem(f"{message_id!r} names {len(found)} messages: give more of the id")
    m = found[0]
    try:
        body = json.loads(m.body)
    except ValueError:
        body = m.body
    emit_json({**m.summary(), "body": body, "attributes": m.attributes,
               "message_attributes": {k: v.get("StringValue", v.get("BinaryValue")) for k, v in m.message_attributes.items()}})


@command.command("redrive")
@click.option("--max", "max_messages", type=click.IntRange(1), default=None, help="Move at most N messages.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
@target_options
def redrive(max_messages: int | None, as_json: bool, target: TargetSpec) -> None:
    """Move the DLQ's messages back to the queue, to be transformed again.

    Uses SQS's message move task where the endpoint has one (and no --max is given); otherwise
    receives, sends to the queue and deletes from the DLQ only what the queue accepted, so an
    interruption leaves at worst a duplicate message (never a lost one, and a duplicate never
    duplicates a row). Messages moved that way go with force off: an object whose version was
    committed meanwhile is skipped. Exit codes: 0 moved, 1 some message could not be moved.
    """
    from elt_sdk.aws import dlq
    from elt_sdk.aws.target import LOCAL

    t = _dlq(target)
    sqs = t.client("sqs")
    before = dlq.depth(sqs, t.outputs["dlq_url"])
    started = time.time()
    with progress(None, "redriving", enabled=not as_json, length=max(min(before, max_messages or before), 1)) as bar:
        result = dlq.redrive(sqs, t.outputs["dlq_url"], t.outputs["queue_url"], max_messages=max_messages,
                             native=t.kind != LOCAL,  # the embedded endpoint (moto) has no move task
                             on_moved=bar.update)
    after = dlq.depth(sqs, t.outputs["dlq_url"])
    payload = {**result.to_dict(), "dlq_before": before, "dlq_after": after, "seconds": round(time.time() - started, 2)}
    if as_json:
        emit_json(payload)
    else:
        click.echo(f"moved {result.moved} message(s) from the DLQ to the queue ({result.mode}); "
                   f"DLQ {before} -> {after}" + (f"; {result.failed} could not be moved: {result.detail}" if result.failed else ""))
        if result.moved:
            click.echo("follow with 'elt-sdk status --wait 300'", err=True)
    if result.failed:
        raise RunFailure(f"{result.failed} message(s) stayed in the DLQ")


@command.command("purge")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@target_options
def purge(yes: bool, target: TargetSpec) -> None:
    """Delete every message of the DLQ (their objects' failure markers stay in quarantine)."""
    from elt_sdk.aws import dlq

    t = _dlq(target)
    sqs = t.client("sqs")
    n = dlq.depth(sqs, t.outputs["dlq_url"])
    if n and not yes:
        click.confirm(f"delete the {n} message(s) of the DLQ of {t.description}?", abort=True, err=True)
    dlq.purge(sqs, t.outputs["dlq_url"])
    click.echo(f"purged {n} message(s) from the DLQ")
