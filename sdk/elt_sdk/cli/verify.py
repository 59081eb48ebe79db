"""``elt-sdk verify``: the acceptance checklist, locally or against a deployed stack."""
from __future__ import annotations

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, state
from elt_sdk.cli.targeting import TargetSpec, target_options
from elt_sdk.settings import Settings, SettingsError


@click.command("verify")
@click.option("--step", "steps", type=click.IntRange(0, 11), multiple=True, metavar="N",
              help="Run only step N (repeatable); steps it needs run too (7 needs 6; 10 needs 6 and 7).")
@click.option("--window", type=click.FloatRange(1), default=None,
              help="Seconds to wait for silver (default: 300 deployed, 60 local).")
@click.option("--dataset", default="shipments", show_default=True, help="Dataset to seed.")
@click.option("--config", type=click.Path(dir_okay=False), default=None, help="Settings file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results.")
@target_options
def command(steps: tuple[int, ...], window: float | None, dataset: str, config: str | None, as_json: bool,
            target: TargetSpec) -> None:
    """Run the reference acceptance checklist (steps 0-11): resources, notification, TTL, queues,
    a seeded upload reaching silver, the same ingest event skipped the second time, then where
    the target has them the Glue tables (and the reference's Athena queries), the quality gate,
    the dashboard and alarms (SKIP where it has not).

    Checks the local stack running in this folder, a deployed stack (--stack-name, --region,
    --profile), an --endpoint-url, or, with none of them, a fresh pipeline on the embedded
    endpoint. Exit codes: 0 all OK (WARN and SKIP allowed), 1 a check failed, 2 bad arguments.
    """
    from elt_sdk.verify import run_checklist

    reg = state().registry
    try:
        reg.dataset(dataset)
        settings = Settings.load(config or state().config)
    except (LookupError, SettingsError) as exc:
        raise UsageProblem(str(exc)) from None
    show = (lambda c: click.echo(c.line())) if not as_json else (lambda c: None)
    if target.given or target.local_running():
        t = target.resolve()
        checks = run_checklist(t, reg, window_s=window or (300 if t.kind == "deployed" else 60), dataset=dataset,
                               on_check=show, steps=steps)
    else:
        import io

        from elt_sdk.local.runtime import LocalRuntime
        from elt_sdk.local.target import LocalTarget
        with LocalRuntime(settings, log_stream=io.StringIO()) as rt:
            checks = run_checklist(LocalTarget(rt), reg, window_s=window or 60, dataset=dataset, on_check=show,
                                   steps=steps)
    failed = [c for c in checks if c.status == "FAIL"]
    if as_json:
        emit_json({"checks": [c.__dict__ for c in checks], "ok": not failed})
    if failed:
        raise RunFailure(f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}")
