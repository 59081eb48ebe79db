"""``elt-sdk verify``: the acceptance checklist on the embedded endpoint, and on a stack's outputs."""
from __future__ import annotations

import json
import subprocess
import sys

from elt_sdk.aws.deployed import DeployedTarget
from elt_sdk.local.endpoint import EmbeddedEndpoint
from elt_sdk.local.provision import provision
from elt_sdk.settings import Settings
from elt_sdk.verify import run_checklist


def test_verify_on_the_embedded_endpoint(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "elt_sdk.cli", "verify", "--json"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    checks = json.loads(proc.stdout)["checks"]
    assert [c["step"] for c in checks] == list(range(9))
    assert all(c["status"] == "OK" for c in checks), checks
    assert checks[8]["detail"].startswith("OK: second invoke skipped")


def test_verify_reads_a_stacks_outputs_and_reports_what_is_missing(registry):
    """A CloudFormation stack on moto whose outputs name real (moto) resources but functions that
    do not exist: the checklist must find the resources and fail on the lambdas."""
    with EmbeddedEndpoint("us-east-2") as ep:
        settings = Settings(name_prefix="deployed")
        res = provision(settings, ep.client)
        outputs = {"BronzeBucket": res.bronze_bucket, "SilverBucket": res.silver_bucket, "QueueUrl": res.queue_url,
                   "DlqUrl": res.dlq_url, "IdempotencyTable": res.table, "IngestLambda": "deployed-ingest",
                   "TransformLambda": "deployed-transform"}
        template = {"Resources": {"Handle": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                    "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
        ep.client("cloudformation").create_stack(StackName="elt-sdk", TemplateBody=json.dumps(template))
        target = DeployedTarget(stack_name="elt-sdk", region="us-east-2", endpoint_url=ep.url)
        assert target.outputs["ingest_lambda"] == "deployed-ingest"
        assert target.outputs["idempotency_table"] == res.table
        checks = {c.step: c for c in run_checklist(target, registry, window_s=1)}
        assert checks[1].status == "OK"
        assert checks[3].status == "FAIL" and "deployed-ingest" in checks[3].detail
        assert checks[4].status == "OK" and "ENABLED" in checks[4].detail
        assert checks[5].status == "OK"
        assert checks[6].status == "OK"
        assert checks[7].status == "FAIL"  # nothing transforms: there is no function
        ep.client("cloudformation").create_stack(StackName="partial", TemplateBody=json.dumps(
            {"Resources": template["Resources"], "Outputs": {"BronzeBucket": {"Value": "b"}}}))
        partial = run_checklist(DeployedTarget(stack_name="partial", region="us-east-2", endpoint_url=ep.url), registry)
        assert partial[-1].step == 1 and partial[-1].status == "FAIL" and "silver_bucket" in partial[-1].detail
