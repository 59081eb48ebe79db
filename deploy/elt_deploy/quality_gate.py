"""Quality gate (Step Functions): run the dataset's quality rules on a partition, succeed or
notify and fail; optionally started by the transform's ``silver_partition_ready`` events."""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from elt_deploy.core import QUALITY_PREFIX, READ, FunctionSpec, Pipeline
from elt_sdk import layout
from elt_sdk.settings import ENV_SILVER_BUCKET

# A partition is downloaded to /tmp to be checked: room for large partitions (Lambda's default is 512 MiB).
EPHEMERAL_MB = 4096


class QualityGate(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline: Pipeline):
        super().__init__(scope, construct_id)
        p, cfg = pipeline, pipeline.settings
        self.check = p.function(FunctionSpec("QualityCheck", "elt_sdk.aws.quality_gate.handler", 1024, 300,
                                             ephemeral_mb=EPHEMERAL_MB),
                                {ENV_SILVER_BUCKET: p.silver.bucket_name, "ELT_QUALITY_QUARANTINE_MARKER": "true"})
        p.list_bucket(self.check, p.silver)
        p.objects(self.check, p.silver, READ, [layout.SILVER_PREFIX])
        p.objects(self.check, p.silver, ["s3:PutObject"], [QUALITY_PREFIX])
        self.topic = p.alarm_topic or sns.Topic(self, "Failures", display_name="elt-sdk quality gate", enforce_ssl=True)
        run = tasks.LambdaInvoke(self, "RunRules", lambda_function=self.check, payload_response_only=True)
        notify = tasks.SnsPublish(self, "NotifyFailure", topic=self.topic,
                                  message=sfn.TaskInput.from_json_path_at("$"),
                                  subject="elt-sdk quality gate failed")
        failed = sfn.Fail(self, "GateFailed", error="QualityGateFailed", cause="quality rules failed")
        passed = sfn.Succeed(self, "GatePassed")
        definition = run.next(sfn.Choice(self, "Passed?")
                              .when(sfn.Condition.boolean_equals("$.passed", True), passed)
                              .otherwise(notify.next(failed)))
        self.state_machine = sfn.StateMachine(self, "StateMachine", definition_body=sfn.DefinitionBody.from_chainable(definition),
                                              timeout=Duration.minutes(30))
        if cfg.quality_auto_trigger:
            events.Rule(self, "OnPartitionReady",
                        # this stack's partitions only: another stack's transform may share the bus
                        event_pattern=events.EventPattern(source=["elt-sdk"], detail_type=["silver_partition_ready"],
                                                          detail={"bucket": [p.silver.bucket_name]}),
                        targets=[targets.SfnStateMachine(self.state_machine,
                                                         input=events.RuleTargetInput.from_event_path("$.detail"))])
        p.output("quality_check_lambda", self.check.function_name)
        p.output("quality_gate_state_machine", self.state_machine.state_machine_arn, "quality gate: rules on a partition")
