"""A deployed stack as a ``verify`` target: its CloudFormation outputs name the resources."""
from __future__ import annotations

import json
from typing import Any

from elt_sdk import layout
from elt_sdk.verify import OUTPUTS


def _norm(key: str) -> str:
    return key.replace("_", "").lower()


class DeployedTarget:
    def __init__(self, *, stack_name: str, region: str | None = None, profile: str | None = None,
                 endpoint_url: str | None = None, bronze_prefix: str = layout.BRONZE_PREFIX):
        import boto3

        self.session = boto3.Session(profile_name=profile, region_name=region)
        self.endpoint_url = endpoint_url
        self.bronze_prefix = bronze_prefix
        stacks = self.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        raw = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        wanted = {_norm(k): k for k in OUTPUTS}
        self.outputs = {wanted[_norm(k)]: v for k, v in raw.items() if _norm(k) in wanted}
        self.description = f"stack {stack_name} in {self.session.region_name}" + (f" at {endpoint_url}" if endpoint_url else "")

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def describe_function(self, name: str) -> str:
        return self.client("lambda").get_function(FunctionName=name)["Configuration"]["FunctionArn"]

    def notification(self) -> tuple[bool, str]:
        arn = self.describe_function(self.outputs["ingest_lambda"])
        conf = self.client("s3").get_bucket_notification_configuration(Bucket=self.outputs["bronze_bucket"])
        for fn in conf.get("LambdaFunctionConfigurations", []):
            rules = {r["Name"].lower(): r["Value"] for r in fn.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
            if fn["LambdaFunctionArn"] == arn and rules.get("prefix") == self.bronze_prefix:
                return True, f"ObjectCreated on prefix {self.bronze_prefix} -> {arn}"
        return False, f"no notification to {arn} on prefix {self.bronze_prefix}"

    def invoke_ingest(self, event: dict[str, Any]) -> dict[str, Any]:
        resp = self.client("lambda").invoke(FunctionName=self.outputs["ingest_lambda"], Payload=json.dumps(event).encode())
        payload = json.loads(resp["Payload"].read() or b"{}")
        if resp.get("FunctionError"):
            raise RuntimeError(f"ingest failed: {payload}")
        return payload
