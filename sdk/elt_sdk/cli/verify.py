"""``elt-sdk verify``: the acceptance checklist, locally or against a deployed stack."""
from __future__ import annotations

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, state
from elt_sdk.settings import Settings, SettingsError


@click.command("verify")
@click.option("--endpoint-url", default=None, help="Check a deployed stack at this endpoint.")
@click.option("--profile", default=None, help="AWS profile of the deployed stack.")
@click.option("--region", default=None, help="Region of the deployed stack.")
@click.option("--stack-name", default="elt-sdk", show_default=True, help="CloudFormation stack to read outputs from.")
@click.option("--window", type=click.FloatRange(1), default=None,
              help="Seconds to wait for silver (default: 300 deployed, 60 local).")
@click.option("--dataset", default="shipments", show_default=True, help="Dataset to seed.")
@click.option("--config", type=click.Path(dir_okay=False), default=None, help="Settings file.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable results.")
def command(endpoint_url, profile, region, stack_name, window, dataset, config, as_json) -> None:
    """Run the reference acceptance checklist (steps 0-8): resources, notification, TTL, queues,
    a seeded upload reaching silver, and the same ingest event skipped the second time.

    With no --endpoint-url/--profile/--region it checks a fresh pipeline on the embedded endpoint.
    Exit codes: 0 all OK (WARN allowed), 1 a check failed, 2 bad arguments.
    """
    from elt_sdk.verify import run_checklist

    reg = state().registry
    try:
        reg.dataset(dataset)
        settings = Settings.load(config)
    except (LookupError, SettingsError) as exc:
        raise UsageProblem(str(exc)) from None
    show = (lambda c: click.echo(c.line())) if not as_json else (lambda c: None)
    if endpoint_url or profile or region:
        from botocore.exceptions import BotoCoreError, ClientError

        from elt_sdk.aws.deployed import DeployedTarget
        try:
            target = DeployedTarget(stack_name=stack_name, region=region, profile=profile, endpoint_url=endpoint_url,
                                    bronze_prefix=settings.bronze_prefix)
        except (BotoCoreError, ClientError) as exc:
            raise UsageProblem(f"cannot read stack {stack_name!r}: {exc}") from None
        checks = run_checklist(target, reg, window_s=window or 300, dataset=dataset, on_check=show)
    else:
        import io

        from elt_sdk.local.runtime import LocalRuntime
        from elt_sdk.local.target import LocalTarget
        with LocalRuntime(settings, log_stream=io.StringIO()) as rt:
            checks = run_checklist(LocalTarget(rt), reg, window_s=window or 60, dataset=dataset, on_check=show)
    failed = [c for c in checks if c.status == "FAIL"]
    if as_json:
        emit_json({"checks": [c.__dict__ for c in checks], "ok": not failed})
    if failed:
        raise RunFailure(f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}")
