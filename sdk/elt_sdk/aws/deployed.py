"""A deployed stack as a target: its CloudFormation outputs name the resources."""
from __future__ import annotations

from elt_sdk import layout
from elt_sdk.aws.target import DEPLOYED, StackTarget, outputs_by_name
from elt_sdk.settings import Settings


class DeployedTarget(StackTarget):
    """``stack_name`` in ``region`` (with ``profile``); ``endpoint_url`` for a stack on an emulator."""

    def __init__(self, *, stack_name: str, region: str | None = None, profile: str | None = None,
                 endpoint_url: str | None = None, bronze_prefix: str = layout.BRONZE_PREFIX,
                 settings: Settings | None = None):
        settings = settings or Settings(bronze_prefix=bronze_prefix)
        super().__init__(DEPLOYED, "", {}, settings, endpoint_url=endpoint_url, profile=profile, region=region)
        self.region = region or self.session.region_name or settings.region
        self._session = None  # rebuilt with the resolved region
        self.stack_name = stack_name
        stacks = self.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
        raw = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
        self.outputs = outputs_by_name(raw)
        self.region = self.outputs.get("region") or self.region
        self.description = f"stack {stack_name} in {self.region}" + (f" at {endpoint_url}" if endpoint_url else "")
