"""Quality gate (Step Functions): run the dataset's quality rules on a partition, succeed or
notify and fail; optionally started by the transform's ``silver_partition_ready`` events."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from elt_sdk import layout

if TYPE_CHECKING:
    from elt_deploy.stack import PipelineStack


class QualityGate(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, stack: "PipelineStack"):
        super().__init__(scope, construct_id)
        from elt_deploy.stack import FunctionSpec

        cfg = stack.settings
        self.check = stack.function(FunctionSpec("QualityCheck", "elt_sdk.aws.quality_gate.handler", 1024, 300),
                                    {"ELT_SILVER_BUCKET": stack.silver.bucket_name, "ELT_QUALITY_QUARANTINE_MARKER": "true"})
        stack.allow(self.check, ["s3:ListBucket"], [stack.silver.bucket_arn])
        stack.allow(self.check, ["s3:GetObject"], [stack.silver.arn_for_objects(layout.SILVER_PREFIX + "*")])
        stack.allow(self.check, ["s3:PutObject"], [stack.silver.arn_for_objects("quality/*")])
        self.topic = getattr(stack, "alarm_topic", None) or sns.Topic(self, "Failures", display_name="elt-sdk quality gate",
                                                                     enforce_ssl=True)
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
                        event_pattern=events.EventPattern(source=["elt-sdk"], detail_type=["silver_partition_ready"]),
                        targets=[targets.SfnStateMachine(self.state_machine,
                                                         input=events.RuleTargetInput.from_event_path("$.detail"))])
