"""Dashboard and alarms: function errors and throttles, DLQ depth, oldest message age, and the
quarantine ratio per dataset from the transform's EMF metrics; optionally an SNS topic."""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from elt_deploy.core import Pipeline, unique_name

PERIOD = Duration.minutes(5)


class Observability(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, pipeline: Pipeline, queue: sqs.IQueue, dlq: sqs.IQueue,
                 ingest_failures: sqs.IQueue, functions: dict[str, lambda_.IFunction], commit_dlq: sqs.IQueue | None = None):
        super().__init__(scope, construct_id)
        cfg = pipeline.settings
        self.topic = None
        if cfg.alarm_email:
            self.topic = sns.Topic(self, "Alarms", display_name="elt-sdk alarms", enforce_ssl=True)
            self.topic.add_subscription(subs.EmailSubscription(cfg.alarm_email))
            pipeline.output("alarm_topic", self.topic.topic_arn, "SNS topic of the alarms")
        pipeline.alarm_topic = self.topic
        self.alarms: list[cw.Alarm] = []
        fns = functions
        for name, fn in fns.items():
            self._alarm(f"{name.title()}Errors", fn.metric_errors(period=PERIOD, statistic="Sum"), 1,
                        f"{name} function errors")
            self._alarm(f"{name.title()}Throttles", fn.metric_throttles(period=PERIOD, statistic="Sum"), 1,
                        f"{name} function throttled")
        self._alarm("DlqVisible", dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"),
                    1, "messages in the DLQ: objects that failed every retry")
        if commit_dlq is not None:  # silver_format = iceberg
            self._alarm("CommitDlqVisible", commit_dlq.metric_approximate_number_of_messages_visible(
                period=PERIOD, statistic="Maximum"), 1, "commit messages in the committer's DLQ: objects whose rows "
                "never became visible")
        self._alarm("IngestFailures", ingest_failures.metric_approximate_number_of_messages_visible(
            period=PERIOD, statistic="Maximum"), 1, "S3 events ingest gave up on")
        self._alarm("OldestMessageAge", queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                    300, "the transform is falling behind (oldest message > 300 s)", op=cw.ComparisonOperator.GREATER_THAN_THRESHOLD)
        ratio_widgets = []
        for ds in sorted(pipeline.registry.datasets):
            dims = {"dataset": ds}
            quarantined = cw.Metric(namespace=cfg.metrics_namespace, metric_name="RecordsQuarantined", dimensions_map=dims,
                                    statistic="Sum", period=PERIOD)
            records_in = cw.Metric(namespace=cfg.metrics_namespace, metric_name="RecordsIn", dimensions_map=dims,
                                   statistic="Sum", period=PERIOD)
            q, rin = f"q_{ds}", f"rin_{ds}"  # ids must differ between expressions on one graph
            ratio = cw.MathExpression(expression=f"IF({rin} > 0, {q} / {rin}, 0)", using_metrics={q: quarantined, rin: records_in},
                                      label=f"{ds} quarantine ratio", period=PERIOD)
            self._alarm(f"QuarantineRatio{''.join(w.title() for w in ds.split('_'))}", ratio, cfg.quarantine_alarm_ratio,
                        f"{ds}: more than {cfg.quarantine_alarm_ratio:.0%} of records quarantined",
                        op=cw.ComparisonOperator.GREATER_THAN_THRESHOLD)
            ratio_widgets.append(ratio)
        self.dashboard_name = unique_name(pipeline.stack, "pipeline")  # e.g. elt-sdk-pipeline
        self.dashboard = cw.Dashboard(self, "Dashboard", dashboard_name=self.dashboard_name)
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Invocations / errors", left=[m for fn in fns.values() for m in
                                                                (fn.metric_invocations(period=PERIOD), fn.metric_errors(period=PERIOD))]),
            cw.GraphWidget(title="Duration p95", left=[fn.metric_duration(period=PERIOD, statistic="p95") for fn in fns.values()]),
            cw.GraphWidget(title="Queue", left=[queue.metric_approximate_number_of_messages_visible(period=PERIOD),
                                                dlq.metric_approximate_number_of_messages_visible(period=PERIOD)],
                           right=[queue.metric_approximate_age_of_oldest_message(period=PERIOD)]),
        )
        self.dashboard.add_widgets(
            cw.GraphWidget(title="Records in / written / quarantined", left=[
                cw.Metric(namespace=cfg.metrics_namespace, metric_name=m, dimensions_map={"dataset": ds}, statistic="Sum", period=PERIOD)
                for ds in sorted(pipeline.registry.datasets) for m in ("RecordsIn", "RecordsWritten", "RecordsQuarantined")]),
            cw.GraphWidget(title="Quarantine ratio", left=ratio_widgets),
            cw.AlarmStatusWidget(title="Alarms", alarms=self.alarms),
        )
        pipeline.output("dashboard", self.dashboard_name, "CloudWatch dashboard")

    def _alarm(self, name: str, metric: cw.IMetric, threshold: float, description: str,
               op: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD) -> cw.Alarm:
        alarm = cw.Alarm(self, name, metric=metric, threshold=threshold, evaluation_periods=1, comparison_operator=op,
                         alarm_description=description, treat_missing_data=cw.TreatMissingData.NOT_BREACHING)
        if self.topic is not None:
            alarm.add_alarm_action(cw_actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm
