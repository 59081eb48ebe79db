"""Ops workflow (Step Functions): replay by S3 copy -> wait -> poll silver, looping until enough
new Parquet appears or the attempts run out; optionally on an EventBridge schedule."""
from __future__ import annotations

import json

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from elt_deploy.core import READ, FunctionSpec, Pipeline
from elt_sdk import layout
from elt_sdk.settings import ENV_BRONZE_BUCKET, ENV_SILVER_BUCKET


class OpsWorkflow(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline: Pipeline):
        super().__init__(scope, construct_id)
        p, cfg = pipeline, pipeline.settings
        env = {ENV_BRONZE_BUCKET: p.bronze.bucket_name, ENV_SILVER_BUCKET: p.silver.bucket_name}
        # replay copies bronze objects under the replay prefix; poll lists silver (no pyarrow: light asset)
        self.replay = p.function(FunctionSpec("OpsReplay", "elt_sdk.aws.ops.replay_handler", 256, 300, asset="light"), env)
        p.list_bucket(self.replay, p.bronze)
        p.objects(self.replay, p.bronze, READ, [""])
        p.objects(self.replay, p.bronze, ["s3:PutObject"], [cfg.replay_prefix])
        self.poll = p.function(FunctionSpec("OpsPoll", "elt_sdk.aws.ops.poll_handler", 256, 60, asset="light"), env)
        p.list_bucket(self.poll, p.silver)

        replay = tasks.LambdaInvoke(self, "Replay", lambda_function=self.replay, payload_response_only=True)
        wait = sfn.Wait(self, "Wait", time=sfn.WaitTime.seconds_path("$.poll_interval_seconds"))
        poll = tasks.LambdaInvoke(self, "PollSilver", lambda_function=self.poll, payload_response_only=True)
        done = sfn.Succeed(self, "SilverUpdated")
        gave_up = sfn.Fail(self, "SilverNotUpdated", error="SilverNotUpdated",
                           cause="no new silver Parquet within the attempts")
        check = (sfn.Choice(self, "Enough?")
                 .when(sfn.Condition.boolean_equals("$.ready", True), done)
                 .when(sfn.Condition.number_greater_than_equals_json_path("$.attempt", "$.max_attempts"), gave_up)
                 .otherwise(wait))
        definition = replay.next(wait).next(poll).next(check)
        self.state_machine = sfn.StateMachine(self, "StateMachine", definition_body=sfn.DefinitionBody.from_chainable(definition),
                                              timeout=Duration.hours(6))
        if cfg.ops_schedule:
            default_input = {"src_prefix": cfg.bronze_prefix, "dest_prefix_base": cfg.replay_prefix.rstrip("/"),
                             "window_hours": 24, "silver_prefix": layout.SILVER_PREFIX.rstrip("/"), "record_type": "",
                             "min_parquet_objects": 1, "poll_interval_seconds": 30, "max_attempts": 20}
            events.Rule(self, "Schedule", schedule=events.Schedule.expression(cfg.ops_schedule),
                        targets=[targets.SfnStateMachine(self.state_machine,
                                                         input=events.RuleTargetInput.from_object(json.loads(json.dumps(default_input))))])
        p.output("ops_replay_lambda", self.replay.function_name)
        p.output("ops_poll_lambda", self.poll.function_name)
        p.output("ops_state_machine", self.state_machine.state_machine_arn, "ops workflow: replay, then poll silver")
