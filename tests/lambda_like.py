"""Run a built Lambda asset the way Lambda loads it, and time its INIT.

What stands in for the Lambda runtime: the target's Python (``-I``: no user site, no ``PYTHON*``
variables, no script folder on ``sys.path``; ``-S``: not even that interpreter's own site-packages;
``-B``: nothing written next to the code, as on Lambda's read-only ``/var/task``), a scrubbed environment holding only what Lambda sets plus the
function's own variables from the synthesized template (no ``HOME``), the asset copied with fresh
timestamps (as unzipping gives) and made read-only as the only code directory, and the runtime's
boto3 in a separate directory after it on ``sys.path``. moto's server (the embedded endpoint)
plays AWS.

INIT here is what a cold start pays before the first event: importing the handler's module and
loading what it routes with (the plugin registry for the transform, the manifest's routes for
ingest). Run by hand for the figures (builds the x86_64 assets, synthesizes, median of N):

    .venv/bin/python tests/lambda_like.py --runs 7
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import distribution
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parent.parent

# What the Lambda Python runtime provides besides the standard library.
RUNTIME_DISTRIBUTIONS = ("boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil", "six")


@dataclass(frozen=True)
class Function:
    """How Lambda loads one function: its handler, and what its INIT builds (``module:function``)."""

    handler: str
    init: str


FUNCTIONS = {
    "ingest": Function("elt_sdk.aws.handlers.ingest_handler", "elt_sdk.bundled:load_routes"),
    "transform": Function("elt_sdk.aws.handlers.transform_handler", "elt_sdk.plugins:load_registry"),
    # the committer builds its catalog, stores and clients (pyiceberg's import) before its first event
    "committer": Function("elt_sdk.aws.handlers.commit_handler", "elt_sdk.aws.handlers:_committer"),
}

BOOTSTRAP = r'''
import importlib, json, sys, time
task, runtime, handler, init, event_file = sys.argv[1:6]
sys.path[:0] = [task, runtime]  # Lambda: the task root first, the runtime's packages after it

from importlib.machinery import SourceFileLoader
compiled = []  # modules without a usable .pyc, compiled from source
_source_to_code = SourceFileLoader.source_to_code
def _counting(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _source_to_code(self, data, path, *args, **kwargs)
SourceFileLoader.source_to_code = _counting

module_name, function_name = handler.rsplit(".", 1)
t0 = time.perf_counter()
module = importlib.import_module(module_name)
t1 = time.perf_counter()
init_module, _, init_function = init.partition(":")
loaded = getattr(importlib.import_module(init_module), init_function)()
t2 = time.perf_counter()
datasets = sorted(getattr(loaded, "datasets", None) or [r.name for r in getattr(loaded, "routes", [])])
broken = [f"{b.name}: {b.error}" for b in getattr(loaded, "broken", [])]
at_init = set(sys.modules)

class Context:
    function_name = "lambda-like"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    def get_remaining_time_in_millis(self):
        return 60_000

with open(event_file) as f:
    event = json.load(f)
t3 = time.perf_counter()
result = getattr(module, function_name)(event, Context())
t4 = time.perf_counter()
files = {getattr(m, "__file__", None) or "" for m in list(sys.modules.values())}
print("LAMBDA-LIKE " + json.dumps({
    "python": list(sys.version_info[:2]), "import_ms": (t1 - t0) * 1e3, "registry_ms": (t2 - t1) * 1e3,
    "init_ms": (t2 - t0) * 1e3, "invoke_ms": (t4 - t3) * 1e3, "result": result,
    "datasets": datasets, "broken": broken,
    "compiled_from_source": sorted(p for p in compiled if p.startswith(task)),
    "loaded_at_init": sorted(m for m in ("pyarrow", "fastjsonschema", "importlib.metadata", "click", "boto3", "pyiceberg")
                             if m in at_init),
    "loaded": sorted(m for m in ("pyarrow", "fastjsonschema", "importlib.metadata", "click", "pyiceberg", "pygments")
                     if m in sys.modules),
    "foreign_files": sorted(f for f in files if f and "site-packages" in f and not f.startswith((task, runtime))),
    "pyarrow_file": getattr(sys.modules.get("pyarrow"), "__file__", None),
}))
'''


def python_for(version: str) -> str | None:
    """An interpreter of the Lambda runtime's ``version`` that runs (the bundler's own lookup)."""
    sys.path.insert(0, str(REPO / "deploy"))
    from elt_deploy.bundle import find_python

    return find_python(version)


def runtime_packages(dest: Path, python: str) -> Path:
    """boto3 and its dependencies, copied from this environment (pure Python) and compiled for the
    runtime's Python, as the Lambda runtime ships them."""
    if (dest / ".complete").exists():
        return dest
    for name in RUNTIME_DISTRIBUTIONS:
        dist = distribution(name)
        for rel in dist.files or ():
            src = Path(str(dist.locate_file(rel)))
            if "__pycache__" in rel.parts or ".." in rel.parts or not src.is_file():
                continue
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, target)
    subprocess.run([python, "-I", "-m", "compileall", "-q", "-j", "0", str(dest)], check=True, capture_output=True)
    (dest / ".complete").write_text("")
    return dest


def install_task(asset: Path, dest: Path) -> Path:
    """The asset as Lambda has it: extracted (every timestamp new) and read-only."""
    if dest.exists():
        _writable(dest)
        shutil.rmtree(dest)
    shutil.copytree(asset, dest, symlinks=True, copy_function=shutil.copyfile)  # copyfile: fresh mtimes
    for path in sorted(dest.rglob("*"), reverse=True):
        if not path.is_symlink():
            path.chmod(0o555 if path.is_dir() else 0o444)
    dest.chmod(0o555)
    return dest


def _writable(root: Path) -> None:
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def function_environment(template: dict, logical_prefix: str, resources: dict[str, str]) -> dict[str, str]:
    """A function's environment variables from the synthesized template: literal values as they are,
    and each reference to a stack resource replaced by the endpoint's (``resources``: variable ->
    value). A reference this harness does not know fails, so a new one is never silently dropped."""
    [fn] = [v for k, v in template["Resources"].items()
            if k.startswith(logical_prefix) and v["Type"] == "AWS::Lambda::Function"]
    out = {}
    for name, value in fn["Properties"].get("Environment", {}).get("Variables", {}).items():
        if isinstance(value, str):
            out[name] = value
        elif name in resources:
            out[name] = resources[name]
        else:
            raise KeyError(f"{logical_prefix}: environment variable {name} refers to {value}: "
                           "map it to a resource of the endpoint in lambda_like.endpoint_resources")
    return out


def lambda_environment(function_env: dict[str, str], endpoint_env: dict[str, str], task: Path, name: str,
                       memory_mb: int = 1024) -> dict[str, str]:
    """What Lambda sets, the endpoint's address and credentials, and the function's variables."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "en_US.UTF-8", "TZ": ":UTC",
        "LAMBDA_TASK_ROOT": str(task), "AWS_EXECUTION_ENV": "AWS_Lambda_python3.12",
        "AWS_LAMBDA_FUNCTION_NAME": name, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        **endpoint_env, **function_env,
    }


def run_handler(python: str, task: Path, runtime: Path, fn: Function, event: Any, env: dict[str, str],
                workdir: Path) -> dict[str, Any]:
    """One cold start: a new interpreter loads the handler from ``task`` and runs it on ``event``."""
    workdir.mkdir(parents=True, exist_ok=True)
    bootstrap = workdir / "bootstrap.py"
    bootstrap.write_text(BOOTSTRAP)
    event_file = workdir / "event.json"
    event_file.write_text(json.dumps(event))
    before = _snapshot(task)
    proc = subprocess.run([python, "-I", "-S", "-B", str(bootstrap), str(task), str(runtime), fn.handler, fn.init,
                           str(event_file)], env=env, cwd="/tmp", capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{fn.handler} failed in the Lambda-like run:\n{proc.stderr[-4000:]}")
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("LAMBDA-LIKE "))
    out = json.loads(line[len("LAMBDA-LIKE "):])
    out["written_to_task"] = sorted(_snapshot(task) - before)
    out["log_lines"] = [ln for ln in proc.stdout.splitlines() if not ln.startswith("LAMBDA-LIKE ")]
    return out


def median(runs: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 1)


def summary(name: str, runs: list[dict[str, Any]]) -> str:
    return (f"{name}: INIT (import + {'routes' if name == 'ingest' else 'registry'}) median {median(runs, 'init_ms')} ms "
            f"(import {median(runs, 'import_ms')} ms + load {median(runs, 'registry_ms')} ms), first invoke "
            f"{median(runs, 'invoke_ms')} ms, {len(runs)} cold starts")


@dataclass
class Scenario:
    """The endpoint with the pipeline's resources, one shipments object in bronze, and the events
    Lambda would deliver for it."""

    endpoint: Any
    resources: dict[str, str]  # environment variable -> resource on the endpoint
    bronze_key: str
    valid: int
    invalid: int

    def s3_event(self) -> dict:
        s3 = self.endpoint.client("s3")
        head = s3.head_object(Bucket=self.resources["ELT_BRONZE_BUCKET"], Key=self.bronze_key)
        when = head["LastModified"]
        return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                             "awsRegion": self.endpoint.region,
                             "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
                             "s3": {"bucket": {"name": self.resources["ELT_BRONZE_BUCKET"]},
                                    "object": {"key": self.bronze_key, "size": head["ContentLength"],
                                               "eTag": head["ETag"].strip('"'),
                                               "sequencer": f"{int(when.timestamp() * 1000):016X}"}}}]}

    def sqs_event(self, queue: str = "ELT_QUEUE_URL") -> dict:
        """The queue's messages as the SQS event source hands them over (left on the queue, so each
        cold start sees the same event)."""
        sqs = self.endpoint.client("sqs")
        msgs = sqs.receive_message(QueueUrl=self.resources[queue], MaxNumberOfMessages=10,
                                   VisibilityTimeout=0, AttributeNames=["All"]).get("Messages", [])
        return {"Records": [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                             "attributes": m.get("Attributes", {}), "messageAttributes": {}, "eventSource": "aws:sqs",
                             "awsRegion": self.endpoint.region} for m in msgs]}


@contextmanager
def scenario(settings: Any, records: list[dict], bad_lines: list[str]) -> Iterator[Scenario]:
    """Provision the pipeline on the embedded endpoint (the local runtime's own provisioning) and
    upload one bronze object of ``records`` followed by ``bad_lines``."""
    from elt_sdk.local.endpoint import EmbeddedEndpoint
    from elt_sdk.local.provision import provision

    with EmbeddedEndpoint(settings.region) as ep:
        iceberg = getattr(settings, "silver_format", "parquet") == "iceberg"
        res = provision(settings, ep.client, **({"iceberg_catalog": "glue"} if iceberg else {}))
        quarantine = getattr(res, "quarantine_bucket", None)
        if not quarantine:  # provisioning without a quarantine bucket of its own
            quarantine = settings.quarantine_bucket
            location = {} if settings.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": settings.region}}
            ep.client("s3").create_bucket(Bucket=quarantine, **location)
        resources = {"ELT_BRONZE_BUCKET": res.bronze_bucket, "ELT_SILVER_BUCKET": res.silver_bucket,
                     "ELT_QUARANTINE_BUCKET": quarantine, "ELT_QUEUE_URL": res.queue_url, "ELT_DLQ_URL": res.dlq_url,
                     "ELT_IDEMPOTENCY_TABLE": res.table}
        if iceberg:  # the committer's queues; its Glue database, which the stack creates
            from elt_sdk.query import database_name

            resources.update(ELT_COMMIT_QUEUE_URL=res.commit_queue_url, ELT_COMMIT_DLQ_URL=res.commit_dlq_url)
            ep.client("glue").create_database(DatabaseInput={"Name": database_name(settings.name_prefix)})
        key = f"{settings.bronze_prefix}shipments/2025/lambda-like.jsonl"
        body = "".join(json.dumps(r) + "\n" for r in records) + "".join(line + "\n" for line in bad_lines)
        ep.client("s3").put_object(Bucket=res.bronze_bucket, Key=key, Body=body.encode())
        yield Scenario(ep, resources, key, len(records), len(bad_lines))


def shipments(count: int) -> list[dict]:
    """Valid shipments records (the installed plugin's own fake records)."""
    import random

    from elt_sdk.plugins import load_registry

    reg = load_registry()
    return reg.hooks("shipments").elt_fake_records(dataset=reg.dataset("shipments"), rng=random.Random(7), count=count)


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - a measuring tool, run by hand
    import argparse

    parser = argparse.ArgumentParser(description="cold starts of the built x86_64 assets, Lambda-like")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--iceberg", action="store_true",
                        help="silver_format = iceberg: also the committer, from the iceberg asset")
    args = parser.parse_args(argv)
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    sys.path.insert(0, str(REPO / "deploy"))
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from elt_deploy.stack import build_app

    python = python_for("3.12")
    if python is None:
        print("no Python 3.12 here (pyenv install 3.12, or set ELT_BUNDLE_PYTHON)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lambda-like-") as tmp:
        work = Path(tmp)
        context = {"architecture": "x86_64", **({"silver_format": "iceberg"} if args.iceberg else {})}
        stack = build_app(cdk.App(context=context, outdir=str(work / "cdk.out")), REPO / "deploy")
        template = Template.from_stack(stack).to_json()
        runtime = runtime_packages(work / "runtime", python)
        tasks = {"ingest": install_task(stack.assets["light"].path, work / "task-light"),
                 "transform": install_task(stack.assets["full"].path, work / "task-full")}
        functions = [("ingest", "Ingest"), ("transform", "Transform")]
        if args.iceberg:
            tasks["committer"] = install_task(stack.assets["iceberg"].path, work / "task-iceberg")
            functions.append(("committer", "Committer"))
        with scenario(stack.settings, shipments(200), ["{not json"]) as sc:
            for name, prefix in functions:
                env = function_environment(template, prefix, sc.resources)
                runs = []
                for _ in range(args.runs):
                    event = sc.s3_event() if name == "ingest" else sc.sqs_event(
                        "ELT_COMMIT_QUEUE_URL" if name == "committer" else "ELT_QUEUE_URL")
                    runs.append(run_handler(python, tasks[name], runtime, FUNCTIONS[name], event,
                                            lambda_environment(env, sc.endpoint.env, tasks[name], name), work / name))
                print(summary(name, runs))
        for name_, report in stack.assets.items():
            print(f"{name_} asset: {report.total_bytes / 1048576:.1f} MiB unzipped")
        _writable(work)
    return 0


if __name__ == "__main__":  # pragma: no cover
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s)")
    sys.exit(code)
