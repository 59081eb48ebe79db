"""One way to say which stack an operational command acts on (``@target_options``).

- nothing: the local stack running in this folder (``elt-sdk local up``);
- ``--stack-name`` / ``--region`` / ``--profile``: a deployed stack, its resources read from its
  CloudFormation outputs (default stack name: the ``name_prefix`` setting);
- ``--endpoint-url URL``: an endpoint (an emulator, the local stack of another folder), its
  resources by the names the settings give them, or from ``--stack-name``'s outputs there.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import click

from elt_sdk.cli.context import UsageProblem, state


@dataclass
class TargetSpec:
    stack_name: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None

    @property
    def given(self) -> bool:
        return any((self.stack_name, self.region, self.profile, self.endpoint_url))

    @property
    def deployed(self) -> bool:
        return any((self.stack_name, self.region, self.profile))

    def resolve(self) -> Any:
        """The ``StackTarget``; a usage error (exit 2) when there is none to act on."""
        from botocore.exceptions import BotoCoreError, ClientError

        from elt_sdk.local import stack

        settings = state().settings
        if self.deployed:
            from elt_sdk.aws.deployed import DeployedTarget

            name = self.stack_name or settings.name_prefix
            try:
                return DeployedTarget(stack_name=name, region=self.region, profile=self.profile,
                                      endpoint_url=self.endpoint_url, settings=settings)
            except (BotoCoreError, ClientError) as exc:
                raise UsageProblem(f"cannot read stack {name!r}: {exc}") from None
        if self.endpoint_url:
            from elt_sdk.aws.target import by_settings_names

            try:
                return by_settings_names(settings, endpoint_url=self.endpoint_url)
            except (BotoCoreError, ClientError) as exc:
                raise UsageProblem(f"cannot reach {self.endpoint_url}: {exc}") from None
        try:
            return stack.running().target()
        except stack.StaleStack as exc:
            raise UsageProblem(str(exc)) from None
        except stack.NotRunning:
            raise UsageProblem("no stack to act on: start one here with 'elt-sdk local up --detach', or name a "
                               "deployed one with --stack-name/--region/--profile, or give --endpoint-url") from None

    def local_running(self) -> bool:
        """Is a local stack running in this folder (and no other target named)?"""
        from elt_sdk.local import stack

        if self.given:
            return False
        state_ = stack.read_state()
        return state_ is not None and state_.alive


def target_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add the targeting options to a command; it receives them as ``target: TargetSpec``."""
    @functools.wraps(fn)
    def wrapper(*args: Any, stack_name: str | None, region: str | None, profile: str | None,
                endpoint_url: str | None, **kwargs: Any) -> Any:
        return fn(*args, target=TargetSpec(stack_name, region, profile, endpoint_url), **kwargs)

    for decorator in reversed((
        click.option("--stack-name", default=None, metavar="NAME",
                     help="A deployed stack (its CloudFormation outputs name the resources). Default target: the "
                          "local stack running in this folder."),
        click.option("--region", default=None, help="Region of the deployed stack."),
        click.option("--profile", default=None, help="AWS profile for the deployed stack."),
        click.option("--endpoint-url", default=None, metavar="URL",
                     help="An AWS endpoint (an emulator, another folder's local stack); resources by the settings' "
                          "names, or from --stack-name's outputs there."),
    )):
        wrapper = decorator(wrapper)
    return wrapper
