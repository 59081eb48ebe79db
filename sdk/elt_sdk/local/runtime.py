"""``elt-sdk local run``: the whole pipeline on the embedded endpoint.

Upload to bronze -> S3 notification -> ingest handler -> SQS -> transform handler (N pollers, as
the event source mapping) -> silver and quarantine in S3 -> copied out to a folder. The handlers
are the Lambda ones, unchanged: only ``AWS_ENDPOINT_URL`` differs.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow.parquet as pq

from elt_sdk import layout, logs
from elt_sdk.aws import handlers
from elt_sdk.local.endpoint import EmbeddedEndpoint
from elt_sdk.local.esm import AsyncInvoker, EventSourceMapping, queue_depth
from elt_sdk.local.provision import Resources, provision
from elt_sdk.settings import Settings


@dataclass
class Upload:
    path: Path
    key: str


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
    endpoint: str = ""

    @property
    def totals(self) -> dict[str, int]:
        keys = ("records_in", "written", "quarantined")
        return {k: sum(d[k] for d in self.datasets.values()) for k in keys}

    def to_json(self) -> dict[str, Any]:
        return {"objects": self.objects, "ingest": self.ingest, "datasets": self.datasets, **self.totals,
                "skipped": self.ingest.get("skipped", 0), "dlq": len(self.dlq), "ingest_failed": self.ingest_given_up,
                "transform_invocations": self.transform_invocations, "seconds": round(self.seconds, 2),
                "out": self.out}


class LocalPipeline:
    def __init__(self, settings: Settings, *, workers: int = 2, out: Path = Path("elt-out"),
                 timeout_s: float = 900.0):
        self.settings = settings
        self.workers = workers
        self.out = out
        self.timeout_s = timeout_s

    def run(self, uploads: list[Upload], *, duplicate_events: list[Upload] = (),
            on_progress: Callable[[dict[str, int]], None] | None = None) -> LocalRunResult:
        started = time.time()
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "logs").mkdir(exist_ok=True)
        log_file = (self.out / "logs" / "pipeline.jsonl").open("w")
        logs.configure(log_file)
        saved_env = dict(os.environ)
        try:
            with EmbeddedEndpoint(self.settings.region) as ep:
                res = provision(self.settings, ep.client)
                os.environ.update(res.handler_environment(self.settings))
                handlers.reset()
                return self._run(ep, res, uploads, list(duplicate_events), on_progress, started)
        finally:
            handlers.reset()
            os.environ.clear()
            os.environ.update(saved_env)
            logs.configure()
            log_file.close()

    def _run(self, ep: EmbeddedEndpoint, res: Resources, uploads: list[Upload], duplicates: list[Upload],
             on_progress: Callable[[dict[str, int]], None] | None, started: float) -> LocalRunResult:
        s3, sqs = ep.client("s3"), ep.client("sqs")
        cfg = self.settings
        for up in uploads + duplicates:  # a re-upload of identical bytes: S3 notifies again
            s3.upload_file(str(up.path), res.bronze_bucket, up.key)
        ingest = AsyncInvoker(sqs, res.events_queue_url, handlers.ingest_handler,
                              function_name=f"{cfg.name_prefix}-ingest", timeout_s=cfg.ingest_timeout_s)
        esm = EventSourceMapping(sqs, res.queue_url, handlers.transform_handler,
                                 function_name=f"{cfg.name_prefix}-transform", timeout_s=cfg.transform_timeout_s,
                                 batch_size=cfg.batch_size, region=cfg.region)
        stop = threading.Event()
        errors: list[BaseException] = []

        def loop(poll: Callable[[], int]) -> None:
            try:
                while not stop.is_set():
                    if poll() == 0:
                        time.sleep(0.05)
            except BaseException as exc:  # surfaced by the main thread
                errors.append(exc)
                stop.set()

        threads = [threading.Thread(target=loop, args=(ingest.poll_once,), daemon=True)]
        threads += [threading.Thread(target=loop, args=(esm.poll_once,), daemon=True) for _ in range(self.workers)]
        for t in threads:
            t.start()
        expected_events = len(uploads) + len(duplicates)
        deadline = time.time() + self.timeout_s
        try:
            while not stop.is_set():
                ingested = ingest.stats.succeeded + ingest.stats.failed
                enqueued = sum(r.get("messages", 0) for r in ingest.stats.results)
                progress = {"objects": len(uploads), "ingested": ingested, "messages": enqueued,
                            "transformed": esm.stats.succeeded, "retried": esm.stats.failed}
                if on_progress:
                    on_progress(progress)
                if ingested >= expected_events and queue_depth(sqs, res.events_queue_url) == 0 \
                        and queue_depth(sqs, res.queue_url) == 0:
                    break
                if time.time() > deadline:
                    raise TimeoutError(f"the queue did not drain within {self.timeout_s:.0f}s: {progress}")
                time.sleep(0.1)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        if errors:
            raise errors[0]
        result = LocalRunResult(objects=len(uploads), out=str(self.out), endpoint=ep.url)
        for counts in ingest.stats.results:
            for k, v in counts.items():
                result.ingest[k] = result.ingest.get(k, 0) + v
        result.ingest_given_up = len(ingest.given_up)
        result.transform_invocations = esm.stats.invocations
        self._collect(s3, sqs, res, result)
        if ingest.given_up:
            with (self.out / "dlq" / "ingest-failed-events.jsonl").open("w") as fh:
                for event in ingest.given_up:
                    fh.write(json.dumps(event) + "\n")
        result.seconds = time.time() - started
        return result

    def _collect(self, s3: Any, sqs: Any, res: Resources, result: LocalRunResult) -> None:
        """Copy silver, quarantine and the DLQ out; count rows from what was actually written."""
        for prefix in (layout.SILVER_PREFIX, layout.QUARANTINE_PREFIX):
            local = self.out / prefix
            if local.exists():
                for old in sorted(local.rglob("*"), reverse=True):
                    old.unlink() if old.is_file() else old.rmdir()
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=res.silver_bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    target = self.out / obj["Key"]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.download_file(res.silver_bucket, obj["Key"], str(target))
        silver, quarantine = self.out / layout.SILVER_PREFIX, self.out / layout.QUARANTINE_PREFIX
        names = {p.name for base in (silver, quarantine) if base.exists() for p in base.iterdir() if p.is_dir()}
        for name in sorted(names):
            written = sum(pq.ParquetFile(f).metadata.num_rows for f in (silver / name).rglob("*.parquet")) \
                if (silver / name).exists() else 0
            quarantined = sum(1 for f in (quarantine / name).rglob("*.jsonl") for line in f.open("rb") if line.strip()) \
                if (quarantine / name).exists() else 0
            result.datasets[name] = {"records_in": written + quarantined, "written": written, "quarantined": quarantined}
        (self.out / "dlq").mkdir(exist_ok=True)
        result.dlq = drain_messages(sqs, res.dlq_url)
        with (self.out / "dlq" / "messages.jsonl").open("w") as fh:
            for m in result.dlq:
                fh.write(json.dumps(m) + "\n")


def drain_messages(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Read every message of a queue (leaving them there, invisible for a while)."""
    out: list[dict[str, Any]] = []
    while True:
        msgs = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                   VisibilityTimeout=60, WaitTimeSeconds=0).get("Messages", [])
        if not msgs:
            return out
        out.extend({"message_id": m["MessageId"], "body": m["Body"],
                    "receive_count": m.get("Attributes", {}).get("ApproximateReceiveCount")} for m in msgs)
