"""``elt-sdk dq check``: a dataset's quality rules on one silver partition (the quality gate)."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from elt_sdk.cli.context import RunFailure, UsageProblem, emit_json, emit_table, state
from elt_sdk.cli.silver import silver_option, silver_store
from elt_sdk.cli.targeting import TargetSpec, target_options
from elt_sdk.plugins import UnknownDataset


@click.group("dq")
def command() -> None:
    """Data quality: each dataset's declared rules (rules.json) on silver partitions."""


@command.command("check")
@click.option("--dataset", "-d", required=True, help="The dataset.")
@click.option("--dt", required=True, metavar="DATE", help="The partition's date (YYYY-MM-DD).")
@click.option("--results-prefix", default="quality/results/", show_default=True,
              help="Where the verdict is written (<prefix><dataset>/dt=<dt>/<time>.json); '' to write nothing.")
@click.option("--start", is_flag=True, help="Run the deployed quality-gate state machine and follow it to its verdict.")
@click.option("--timeout", type=click.FloatRange(1), default=600, show_default=True, help="Seconds to wait with --start.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable verdict.")
@silver_option
@target_options
def check(dataset: str, dt: str, results_prefix: str, start: bool, timeout: float, as_json: bool,
          silver_dir: Path | None, target: TargetSpec) -> None:
    """Check partition DATASET/dt=DT against the dataset's rules; the verdict is written under
    --results-prefix (and a marker under quality/quarantine/ when it fails).

    Runs here, on the targeted stack's silver (or --silver DIR); --start runs the deployed gate
    (Step Functions) instead and waits for it. Exit codes: 0 passed, 1 failed (each failed rule
    named), 2 bad arguments.
    """
    from datetime import date

    from elt_sdk.quality import check_partition

    try:
        ds = state().registry.dataset(dataset)
        date.fromisoformat(dt)
    except UnknownDataset as exc:
        raise UsageProblem(str(exc)) from None
    except ValueError:
        raise UsageProblem(f"--dt {dt!r} is not a date (YYYY-MM-DD)") from None
    if not ds.quality_rules:
        raise UsageProblem(f"dataset {dataset} declares no quality rules (rules.json in its plugin)")
    if start:
        verdict = _start(target, dataset, dt, results_prefix, timeout)
    else:
        store, _ = silver_store(target, silver_dir)
        verdict = check_partition(store, ds, dt, results_prefix=results_prefix or None)
    if as_json:
        emit_json(verdict)
    else:
        emit_table(["rule", "column", "verdict", "detail"],
                   [(r["rule"], r.get("column") or "-", "pass" if r["passed"] else "FAIL", r["detail"])
                    for r in verdict["results"]])
        click.echo(f"{dataset} dt={dt}: {verdict['rows']:,} rows, quality gate "
                   + ("passed" if verdict["passed"] else "FAILED")
                   + (f"; verdict at {verdict['result_key']}" if verdict.get("result_key") else ""))
    if not verdict["passed"]:
        raise RunFailure(f"quality gate failed for {dataset} dt={dt}: " + "; ".join(verdict["failed"]))


def _start(target: TargetSpec, dataset: str, dt: str, results_prefix: str, timeout: float) -> dict[str, Any]:
    """Start the gate's state machine, wait for it, and read the verdict its check wrote."""
    from elt_sdk.aws.target import TargetError
    from elt_sdk.quality import describe

    t = target.resolve()
    try:
        [arn] = t.require("quality_gate_state_machine")
    except TargetError as exc:
        raise UsageProblem(f"{exc}; without --start the check runs here") from None
    sfn = t.client("stepfunctions")
    payload = {"dataset": dataset, "dt": dt, "bucket": t.silver_bucket, "result_prefix": results_prefix}
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
    click.echo(f"started {execution}", err=True)
    deadline = time.time() + timeout
    while True:
        desc = sfn.describe_execution(executionArn=execution)
        if desc["status"] != "RUNNING":
            break
        if time.time() > deadline:
            raise RunFailure(f"the gate did not finish within {timeout:g}s: {execution}")
        time.sleep(2)
    verdict = _task_verdict(sfn, execution)
    if verdict is None:
        raise RunFailure(f"the gate ended {desc['status']} without a verdict: {desc.get('error')} {desc.get('cause')}")
    verdict.setdefault("failed", [describe(r) for r in verdict.get("results", []) if not r["passed"]])
    verdict["execution"] = {"arn": execution, "status": desc["status"]}
    return verdict


def _task_verdict(sfn: Any, execution: str) -> dict[str, Any] | None:
    """The check function's result, from the execution's history."""
    events = sfn.get_execution_history(executionArn=execution, reverseOrder=True, maxResults=100)["events"]
    for e in events:
        for key in ("lambdaFunctionSucceededEventDetails", "taskSucceededEventDetails"):
            out = e.get(key, {}).get("output")
            if out:
                data = json.loads(out)
                data = data.get("Payload", data) if isinstance(data, dict) else data
                if isinstance(data, dict) and "passed" in data:
                    return data
    return None
