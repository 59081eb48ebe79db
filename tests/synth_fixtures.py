"""Session-scoped synthesized stacks, shared by the deploy tests (each synth takes ~7-10 s).

Registered in ``conftest.py``; aws_cdk is imported only when a test asks for a stack.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"

ALL_ON = {"architecture": "x86_64", "glue_enabled": "true", "observability_enabled": "true", "ops_enabled": "true",
          "ops_schedule": "rate(1 day)", "quality_enabled": "true", "quality_auto_trigger": "true",
          "compaction_enabled": "true", "alarm_email": "oncall@example.com", "transform_timeout_s": "90",
          "transform_reserved_concurrency": "20", "batch_size": "7", "bucket_kms_key": "create"}


def synth(outdir: Path, context: dict) -> tuple[Any, Any]:
    """(stack, Template) of the app built with ``context`` (``stack_name`` defaults to elt-sdk)."""
    sys.path.insert(0, str(DEPLOY))
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from elt_deploy.stack import build_app

    app = cdk.App(context={"stack_name": "elt-sdk", **context}, outdir=str(outdir))
    stack = build_app(app, DEPLOY)
    return stack, Template.from_stack(stack)


@pytest.fixture(scope="session")
def default_stack(tmp_path_factory):
    """Every default (arm64, S3-managed keys, observability only)."""
    return synth(tmp_path_factory.mktemp("synth-default"), {})


@pytest.fixture(scope="session")
def all_on_stack(tmp_path_factory):
    """Every optional module, x86_64 (the Lambda-like run's asset), a customer-managed KMS key."""
    return synth(tmp_path_factory.mktemp("synth-all"), ALL_ON)


@pytest.fixture(scope="session")
def second_stack(tmp_path_factory):
    """Another stack with every module, as a second deployment in the same account and region."""
    return synth(tmp_path_factory.mktemp("synth-second"), {
        **ALL_ON, "stack_name": "analytics-prod",
        "bucket_kms_key": "arn:aws:kms:us-east-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "quarantine_readers": "arn:aws:iam::123456789012:role/QuarantineAnalyst"})


ICEBERG = {"architecture": "x86_64", "silver_format": "iceberg", "iceberg_maintenance_schedule": "rate(1 day)",
           "bucket_kms_key": "create", "glue_enabled": "true"}


@pytest.fixture(scope="session")
def iceberg_stack(tmp_path_factory):
    """silver_format = iceberg (x86_64, the Lambda-like run's asset): the committer, its queues, the
    maintenance function, the iceberg asset."""
    return synth(tmp_path_factory.mktemp("synth-iceberg"), ICEBERG)
