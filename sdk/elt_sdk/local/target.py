"""A pipeline on the embedded endpoint as a target: one running in this process (``verify``'s
fresh pipeline), or the local stack another process serves (``local up``, ``local/stack.py``)."""
from __future__ import annotations

from elt_sdk.aws.target import LOCAL, StackTarget
from elt_sdk.local.runtime import LocalRuntime


def functions(settings_prefix: str, where: str) -> dict[str, str]:
    """How ``verify`` describes the local functions: their handler and where it runs."""
    return {f"{settings_prefix}-ingest": f"elt_sdk.aws.handlers.ingest_handler, {where}",
            f"{settings_prefix}-transform": f"elt_sdk.aws.handlers.transform_handler, {where}"}


class LocalTarget(StackTarget):
    """The pipeline ``runtime`` runs from this process (its functions in child processes)."""

    def __init__(self, runtime: LocalRuntime):
        res = runtime.resources
        outputs = {"bronze_bucket": res.bronze_bucket, "silver_bucket": res.silver_bucket,
                   "quarantine_bucket": res.quarantine_bucket or res.silver_bucket, "queue_url": res.queue_url,
                   "dlq_url": res.dlq_url, "idempotency_table": res.table, "events_queue_url": res.events_queue_url,
                   "ingest_lambda": runtime.ingest_function, "transform_lambda": runtime.transform_function,
                   **res.iceberg_outputs()}
        super().__init__(LOCAL, f"embedded endpoint {runtime.endpoint.url}", outputs, runtime.settings,
                         endpoint_url=runtime.endpoint.url,
                         functions=functions(runtime.settings.name_prefix, "in child processes of this one"))
        self.rt = runtime
