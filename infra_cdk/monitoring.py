"""Alarms on what an operator must act on: function errors and throttles, API 5xx, and
pipeline executions that failed, timed out or were aborted."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra_cdk.config import StackConfig

PERIOD = Duration.minutes(5)


class MonitoringConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self._topic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
            if config.alarm_topic_arn
            else None
        )
        self.alarms: list[cloudwatch.Alarm] = []

    def watch_function(self, name: str, function: lambda_.IFunction) -> None:
        self._alarm(f"{name}Errors", function.metric_errors(period=PERIOD), "errors")
        self._alarm(f"{name}Throttles", function.metric_throttles(period=PERIOD), "throttles")

    def watch_api(self, api: apigw.HttpApi) -> None:
        self._alarm("Api5xx", api.metric_server_error(period=PERIOD), "5xx responses")

    def watch_state_machine(self, state_machine: sfn.StateMachine) -> None:
        self._alarm(
            "PipelineFailed",
            state_machine.metric_failed(period=PERIOD),
            "failed pipeline executions (the trace records the stage)",
        )
        self._alarm("PipelineTimedOut", state_machine.metric_timed_out(period=PERIOD), "timeouts")
        self._alarm("PipelineAborted", state_machine.metric_aborted(period=PERIOD), "aborts")

    def _alarm(self, construct_id: str, metric: cloudwatch.Metric, what: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric.with_(statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"prtrace: {what} in the last 5 minutes",
        )
        if self._topic is not None:
            alarm.add_alarm_action(actions.SnsAction(self._topic))
        self.alarms.append(alarm)
