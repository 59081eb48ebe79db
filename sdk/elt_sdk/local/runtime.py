"""The pipeline on the embedded endpoint.

``LocalRuntime`` is the running pipeline: moto's server, the resources from ``Settings``, the
ingest function fed by S3 notifications and the transform function fed by N SQS pollers, each
function in processes of its own (``function.py``), until ``stop()``. ``LocalPipeline.run`` is
``elt-sdk local run``: upload, wait for the queues to drain, copy the results out. The handlers
are the Lambda ones, unchanged: only ``AWS_ENDPOINT_URL`` differs.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable

import pyarrow.parquet as pq

from elt_sdk import layout, logs
from elt_sdk.aws import handlers
from elt_sdk.local.endpoint import EmbeddedEndpoint
from elt_sdk.local.esm import queue_depth
from elt_sdk.local.function import COMMITTER, INGEST, TRANSFORM, FunctionProcesses, FunctionSpec
from elt_sdk.local.provision import Resources, provision
from elt_sdk.settings import Settings


UPLOAD_PART_BYTES = 8 << 20
TRANSFORM_PROCESSES = 2
"""The transform function's pollers (``workers``) are shared by up to this many processes (measured on two
cores, 1,000 small objects: two processes of two pollers 18.2-18.7 s, three of one 19.4-19.6 s,
one of four 19.4 s)."""


@dataclass
class Upload:
    path: Path
    key: str


class LocalRuntime:
    """``with LocalRuntime(settings) as rt:`` — the deployed pipeline's stand-in, running."""

    def __init__(self, settings: Settings, *, workers: int = 2, log_stream: IO[str] | None = None, port: int = 0):
        self.settings = settings
        self.workers = workers
        self.log_stream = log_stream
        self.endpoint = EmbeddedEndpoint(settings.region, port=port, own_process=True)
        self.resources: Resources | None = None
        self.ingest: FunctionProcesses | None = None
        self.esm: FunctionProcesses | None = None
        self.committer: FunctionProcesses | None = None
        self._iceberg_dir: str | None = None
        self._functions: list[FunctionProcesses] = []
        self._log_handler = None
        self._saved_env: dict[str, str] = {}
        self.uploaded = 0
        self.expected = 0
        self.started = time.time()
        self._count_lock = threading.Lock()

    def start(self) -> "LocalRuntime":
        self._saved_env = dict(os.environ)
        self._log_handler = logs.attach(self.log_stream) if self.log_stream is not None else None
        self.endpoint.start()
        cfg = self.settings
        catalog = ""
        if cfg.silver_format == "iceberg":  # the tables' catalog: sqlite, for as long as the runtime runs
            self._iceberg_dir = tempfile.mkdtemp(prefix="elt-iceberg-")
            catalog = f"sqlite:///{self._iceberg_dir}/catalog.db"
        self.resources = provision(cfg, self.endpoint.client, iceberg_catalog=catalog)
        os.environ.update(self.resources.handler_environment(cfg))  # the functions' environment, inherited
        handlers.reset()
        res = self.resources
        # each one kept as it starts: a later one failing to start leaves none behind (stop() ends them)
        self.ingest = self._start(FunctionSpec(INGEST, res.events_queue_url, self.ingest_function,
                                               cfg.ingest_timeout_s))
        self.esm = self._start(FunctionSpec(TRANSFORM, res.queue_url, self.transform_function, cfg.transform_timeout_s,
                                            cfg.region, cfg.batch_size, pollers=self.workers),
                               processes=TRANSFORM_PROCESSES)
        if res.commit_queue_url:  # the committer: one poller, as reserved concurrency 1
            self.committer = self._start(FunctionSpec(COMMITTER, res.commit_queue_url, f"{cfg.name_prefix}-committer",
                                                      cfg.commit_timeout_s, cfg.region, cfg.commit_batch_size))
        return self

    def _start(self, spec: FunctionSpec, processes: int = 1) -> FunctionProcesses:
        function = FunctionProcesses(spec, self.log_stream, processes=processes, sqs=self.endpoint.client("sqs"))
        self._functions.append(function)
        return function

    @property
    def error(self) -> BaseException | None:
        """The first error that stopped the pollers, if any (a long-running stack reports it)."""
        return next((f.error for f in self._functions if f.error is not None), None)

    @property
    def ingest_function(self) -> str:
        return f"{self.settings.name_prefix}-ingest"

    @property
    def transform_function(self) -> str:
        return f"{self.settings.name_prefix}-transform"

    def deliver_again(self, key: str, timeout_s: float = 60.0) -> None:
        """S3 delivers events at least once: send the event already handled for ``key`` again."""
        deadline = time.time() + timeout_s
        while key not in self.ingest.delivered:
            if self.error is not None:
                raise self.error
            if time.time() > deadline:
                raise TimeoutError(f"no S3 event for {key} within {timeout_s:.0f}s")
            time.sleep(0.02)
        self.endpoint.client("sqs").send_message(QueueUrl=self.resources.events_queue_url,
                                                 MessageBody=self.ingest.delivered[key])
        with self._count_lock:  # one more event for ingest to handle (and skip)
            self.uploaded += 1
            self.expected += 1

    def upload(self, path: Path, key: str) -> None:
        s3 = self.endpoint.client("s3")
        if path.stat().st_size <= UPLOAD_PART_BYTES:  # one request, as a producer's PUT is
            s3.put_object(Bucket=self.resources.bronze_bucket, Key=key, Body=path.read_bytes())
        else:
            s3.upload_file(str(path), self.resources.bronze_bucket, key)
        with self._count_lock:
            self.uploaded += 1

    def upload_many(self, uploads: "list[Upload]", concurrency: int = 8,
                    on_progress: Callable[[dict[str, int]], None] | None = None) -> None:
        """Upload files as many producers would: several at once (the pipeline works meanwhile)."""
        from concurrent.futures import ThreadPoolExecutor

        self.expected += len(uploads)
        shown = 0.0
        with ThreadPoolExecutor(concurrency, thread_name_prefix="elt-upload") as pool:
            for _ in pool.map(lambda up: self.upload(up.path, up.key), uploads):
                if self.error is not None:
                    raise self.error
                if on_progress and time.time() - shown > 0.25:
                    shown = time.time()
                    on_progress(self.progress())

    def progress(self) -> dict[str, int]:
        # objects named by the events ingest handled (S3's test event names none), so never 13/12
        ingested = sum(r.get("objects", 0) for r in self.ingest.stats.results) + self.ingest.stats.failed
        return {"objects": max(self.expected, self.uploaded), "uploaded": self.uploaded,
                "ingested": min(ingested, self.uploaded),
                "messages": sum(r.get("messages", 0) for r in self.ingest.stats.results),
                "transformed": self.esm.stats.succeeded, "retried": self.esm.stats.failed,
                "seconds": round(time.time() - self.started, 1)}

    def wait(self, timeout_s: float, on_progress: Callable[[dict[str, int]], None] | None = None) -> None:
        """Until every upload's event was ingested and both queues are empty."""
        sqs = self.endpoint.client("sqs")
        deadline = time.time() + timeout_s
        while True:
            if self.error is not None:
                raise self.error
            p = self.progress()
            if on_progress:
                on_progress(p)
            if p["ingested"] >= self.uploaded and queue_depth(sqs, self.resources.events_queue_url) == 0 \
                    and queue_depth(sqs, self.resources.queue_url) == 0 \
                    and (not self.resources.commit_queue_url or queue_depth(sqs, self.resources.commit_queue_url) == 0):
                return
            if time.time() > deadline:
                raise TimeoutError(f"the queues did not drain within {timeout_s:.0f}s: {p}")
            time.sleep(0.25)

    def stop_functions(self) -> float:
        """Stop the functions after their invocations in progress; the CPU seconds they used. Their
        accounts are complete afterwards (``LocalPipeline.run`` reads them then), but for a process
        that would not stop within 30 s: it is killed, and its last counts are lost with it."""
        for f in self._functions:
            f.request_stop()
        deadline = time.time() + 30
        running = list(self._functions)
        while running and time.time() < deadline:
            self.endpoint.wake()  # again until all are done: a poll may have begun after a wake
            running = [f for f in running if not f.join(0.1)]
        for f in running:  # an invocation that would not end: the process goes, as a timed-out Lambda's
            f.kill()
        return sum(f.cpu_s for f in self._functions)

    def stop(self) -> None:
        self.stop_functions()
        handlers.reset()
        self.endpoint.stop()
        if self._iceberg_dir:
            shutil.rmtree(self._iceberg_dir, ignore_errors=True)
        os.environ.clear()
        os.environ.update(self._saved_env)
        if self._log_handler is not None:
            logs.detach(self._log_handler)

    def __enter__(self) -> "LocalRuntime":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@dataclass
class LocalRunResult:
    objects: int = 0
    ingest: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, dict[str, int]] = field(default_factory=dict)
    dlq: list[dict[str, Any]] = field(default_factory=list)
    ingest_given_up: int = 0
    transform_invocations: int = 0
    seconds: float = 0.0
    out: str = ""
    failed_objects: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)
    """AWS requests the endpoint served from the start to the drain, by operation."""
    fast_path: dict[str, int] = field(default_factory=dict)
    """Of which answered by the endpoint's fast path (``local/fast_path.py``), by operation."""
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds until the drain: this process and its functions' (``pipeline``), and the
    endpoint's (``endpoint``)."""

    @property
    def totals(self) -> dict[str, int]:
        keys = ("records_in", "written", "quarantined")
        return {k: sum(d[k] for d in self.datasets.values()) for k in keys}

    def to_json(self) -> dict[str, Any]:
        return {"objects": self.objects, "ingest": self.ingest, "datasets": self.datasets, **self.totals,
                "skipped": self.ingest.get("skipped", 0), "dlq": len(self.dlq), "ingest_failed": self.ingest_given_up,
                "transform_invocations": self.transform_invocations, "seconds": round(self.seconds, 2),
                "out": self.out, "requests": {"total": sum(self.requests.values()), "by_operation": self.requests,
                             "fast_path": self.fast_path},
                "cpu_s": self.cpu_s}


OWNED_MARKER = ".elt-local-run.json"
"""Written into every output folder ``local run`` fills: only such a folder is ever replaced."""


class OutputFolderError(ValueError):
    """The output folder holds files ``local run`` did not write."""


def check_output_folder(out: Path) -> None:
    """``local run`` replaces OUT only if OUT is empty or was written by ``local run``."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / OWNED_MARKER).is_file())):
        raise OutputFolderError(f"{out} exists and was not written by 'elt-sdk local run'; choose another --out "
                                "or move it away (nothing in it was touched)")


class LocalPipeline:
    """``elt-sdk local run``: upload, drain, copy out, count. Results are gathered in a fresh
    folder beside OUT and swapped in at the end, so an interrupted run leaves OUT as it was."""

    def __init__(self, settings: Settings, *, workers: int = 2, out: Path = Path("elt-out"), timeout_s: float = 900.0):
        self.settings = settings
        self.workers = workers
        self.out = out
        self.timeout_s = timeout_s

    def run(self, uploads: list[Upload], *, duplicate_events: list[Upload] = (),
            on_progress: Callable[[dict[str, int]], None] | None = None) -> LocalRunResult:
        check_output_folder(self.out)
        started, cpu_started = time.time(), time.process_time()
        fresh = self.out.with_name(f".{self.out.name}.partial-{os.getpid()}")
        shutil.rmtree(fresh, ignore_errors=True)
        (fresh / "logs").mkdir(parents=True)
        (fresh / OWNED_MARKER).write_text(json.dumps({"complete": False, "started_at": started}))
        try:
            with (fresh / "logs" / "pipeline.jsonl").open("w") as log_file, \
                    LocalRuntime(self.settings, workers=self.workers, log_stream=log_file) as rt:
                rt.upload_many(list(uploads), on_progress=on_progress)
                for up in duplicate_events:  # the same S3 event delivered twice: ingest skips it
                    rt.deliver_again(up.key)
                rt.wait(self.timeout_s, on_progress)
                served = rt.endpoint.stats()
                functions_cpu_s = rt.stop_functions()
                result = LocalRunResult(objects=len(uploads), out=str(self.out))
                result.requests, result.fast_path = served.get("requests", {}), served.get("fast_path", {})
                result.cpu_s = {"pipeline": round(time.process_time() - cpu_started + functions_cpu_s, 2)}
                if "cpu_s" in served:
                    result.cpu_s["endpoint"] = served["cpu_s"]
                for counts in rt.ingest.stats.results:
                    for k, v in counts.items():
                        result.ingest[k] = result.ingest.get(k, 0) + v
                result.ingest_given_up = len(rt.ingest.given_up)
                result.transform_invocations = rt.esm.stats.invocations
                collect(rt, fresh, result)
            result.seconds = time.time() - started
            (fresh / OWNED_MARKER).write_text(json.dumps({"complete": True, "started_at": started,
                                                          "seconds": round(result.seconds, 2)}))
            _swap_in(fresh, self.out)
            if self.settings.silver_format == "iceberg":  # the copied tables, registered where they now are
                from elt_sdk.iceberg.read import register_copies

                register_copies(self.out)
        finally:
            shutil.rmtree(fresh, ignore_errors=True)
        return result


def _swap_in(fresh: Path, out: Path) -> None:
    """Replace ``out`` (empty, absent, or a previous run's) with ``fresh``."""
    check_output_folder(out)
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    fresh.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def collect(rt: LocalRuntime, out: Path, result: LocalRunResult) -> None:
    """Copy silver (with its commit records), quarantine and the DLQ out; count rows from what was
    actually written."""
    s3, sqs, res = rt.endpoint.client("s3"), rt.endpoint.client("sqs"), rt.resources
    iceberg = rt.settings.silver_format == "iceberg"
    areas = [(res.quarantine_bucket or res.silver_bucket, layout.QUARANTINE_PREFIX)]
    if not iceberg:  # Iceberg silver is copied table by table, below
        areas.insert(0, (res.silver_bucket, layout.SILVER_PREFIX))
        # the commit records too, so OUT is what 'transform --out' writes: compact and repair work on it
        areas += [(res.silver_bucket, f"{layout.META_PREFIX}objects/"),
                  (res.silver_bucket, f"{layout.META_PREFIX}partitions/")]
    by_bucket: dict[str, list[str]] = {}
    for bucket, prefix in areas:
        by_bucket.setdefault(bucket, []).append(prefix)
    for bucket, prefixes in by_bucket.items():
        try:  # one request per bucket
            rt.endpoint.download(bucket, prefixes, out)
        except OSError:  # the server could not answer it, or not to the end: one GET per object
            _download_by_gets(s3, bucket, prefixes, out)
    silver, quarantine = out / layout.SILVER_PREFIX, out / layout.QUARANTINE_PREFIX
    names = {p.name for base in (silver, quarantine) if base.exists() for p in base.iterdir()
             if p.is_dir() and p.name != layout.FAILED}
    written_by_table: dict[str, int] = {}
    if iceberg:  # the tables' current snapshots, as tables of OUT's own catalog (OUT/iceberg.db)
        from elt_sdk.iceberg.catalog import from_environment
        from elt_sdk.iceberg.read import copy_tables

        written_by_table = copy_tables(from_environment(), out)
        names |= set(written_by_table)
    for name in sorted(names):
        written = written_by_table.get(name, 0) if iceberg else \
            sum(pq.ParquetFile(f).metadata.num_rows for f in (silver / name).rglob("*.parquet")) \
            if (silver / name).exists() else 0
        quarantined = sum(1 for f in (quarantine / name).rglob("*.jsonl") for line in f.open("rb") if line.strip()) \
            if (quarantine / name).exists() else 0
        result.datasets[name] = {"records_in": written + quarantined, "written": written, "quarantined": quarantined}
    result.failed_objects = sorted(p.name for p in (quarantine / layout.FAILED).glob("*.json")) \
        if (quarantine / layout.FAILED).exists() else []
    (out / "dlq").mkdir(parents=True, exist_ok=True)
    result.dlq = drain_messages(sqs, res.dlq_url)
    if res.commit_dlq_url:  # Iceberg: commits that will never land are dead letters too
        result.dlq += [{**m, "queue": "commits"} for m in drain_messages(sqs, res.commit_dlq_url)]
    with (out / "dlq" / "messages.jsonl").open("w") as fh:
        for m in result.dlq:
            fh.write(json.dumps(m) + "\n")
    with (out / "dlq" / "ingest-failed-events.jsonl").open("w") as fh:
        for event in rt.ingest.given_up:
            fh.write(json.dumps(event) + "\n")


def _download_by_gets(s3: Any, bucket: str, prefixes: list[str], out: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    keys = [obj["Key"] for prefix in prefixes
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for obj in page.get("Contents", [])]

    def fetch(key: str) -> None:
        target = (out / key).resolve()
        if not target.is_relative_to(out.resolve()):
            raise ValueError(f"s3://{bucket}/{key}: a key that would land outside {out}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    with ThreadPoolExecutor(8, thread_name_prefix="elt-collect") as pool:
        list(pool.map(fetch, keys))


def drain_messages(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Read every message of a queue (leaving them there, invisible for a while)."""
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   MessageAttributeNames=["All"], VisibilityTimeout=60,
                                   WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return out
        out.extend({"message_id": m["MessageId"], "body": m["Body"],
                    "receive_count": m.get("Attributes", {}).get("ApproximateReceiveCount"),
                    "error": m.get("MessageAttributes", {}).get("elt_error", {}).get("StringValue")} for m in msgs)
