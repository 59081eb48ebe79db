"""The running local pipeline as a ``verify`` target."""
from __future__ import annotations

from typing import Any

from elt_sdk.aws import handlers
from elt_sdk.local.esm import LambdaContext
from elt_sdk.local.runtime import LocalRuntime


class LocalTarget:
    def __init__(self, runtime: LocalRuntime):
        self.rt = runtime
        res = runtime.resources
        self.description = f"embedded endpoint {runtime.endpoint.url}"
        self.bronze_prefix = runtime.settings.bronze_prefix
        self.outputs = {"bronze_bucket": res.bronze_bucket, "silver_bucket": res.silver_bucket,
                        "queue_url": res.queue_url, "dlq_url": res.dlq_url, "idempotency_table": res.table,
                        "ingest_lambda": runtime.ingest_function, "transform_lambda": runtime.transform_function}

    def client(self, service: str) -> Any:
        return self.rt.endpoint.client(service)

    def describe_function(self, name: str) -> str:
        fn = {self.rt.ingest_function: handlers.ingest_handler, self.rt.transform_function: handlers.transform_handler}[name]
        return f"{name} ({fn.__module__}.{fn.__name__}, in-process)"

    def notification(self) -> tuple[bool, str]:
        conf = self.client("s3").get_bucket_notification_configuration(Bucket=self.outputs["bronze_bucket"])
        for q in conf.get("QueueConfigurations", []):
            rules = {r["Name"].lower(): r["Value"] for r in q.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
            if q["QueueArn"].endswith("-s3-events") and rules.get("prefix") == self.bronze_prefix:
                return True, f"ObjectCreated on prefix {self.bronze_prefix} -> {self.rt.ingest_function} " \
                             "(locally through the S3-events queue the runtime feeds it from)"
        return False, f"no notification on prefix {self.bronze_prefix}: {conf}"

    def invoke_ingest(self, event: dict[str, Any]) -> dict[str, Any]:
        return handlers.ingest_handler(event, LambdaContext(self.rt.ingest_function, self.rt.settings.ingest_timeout_s))
