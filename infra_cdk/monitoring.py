"""Alarms on what an operator must act on, and where they go.

Every alarm notifies one SNS topic: the operator's (`alarm_topic_arn`), or else the stack's
own, encrypted and subscribed by `alarm_emails`. Alarms: function errors, throttles and
durations near the timeout; API 5xx; pipeline executions that failed, timed out or were
aborted; DynamoDB throttles; the judge's model unreachable. A monthly cost budget
(`monthly_budget_usd`) notifies the same topic.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.lambdas import ServiceFunction
from prtrace import cloudwatch_names as names

PERIOD: Final = Duration.minutes(5)
# A function whose slowest invocation took this share of its timeout is about to time out
# (a timed-out pipeline step fails its trace; a timed-out API call is a 5xx).
DURATION_ALARM_SHARE: Final = 0.8
# The SDKs retry throttled requests, so a few go unseen; this many in 5 minutes reach
# clients as retries and latency (a hot partition, or traffic above twice its old peak).
DYNAMODB_THROTTLE_THRESHOLD: Final = 10
# Budget notifications: spend so far above 80% of the limit, forecast above 100%.
BUDGET_ACTUAL_PERCENT: Final = 80
BUDGET_FORECAST_PERCENT: Final = 100
# The services that publish to the alarm topic.
PUBLISHERS: Final = ("cloudwatch.amazonaws.com", "budgets.amazonaws.com")


def judge_unavailable_metric() -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=names.NAMESPACE,
        metric_name=names.JUDGE_UNAVAILABLE,
        dimensions_map={"service": names.JUDGE_SERVICE},
        statistic="Sum",
        period=PERIOD,
    )


class MonitoringConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self.topic: sns.ITopic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
            if config.alarm_topic_arn
            else self._own_topic(config)
        )
        self._action = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []
        self.budget = self._budget(config) if config.monthly_budget_usd > 0 else None

    def _own_topic(self, config: StackConfig) -> sns.Topic:
        account = Stack.of(self).account
        same_account = {"StringEquals": {"aws:SourceAccount": account}}
        # A customer managed key: CloudWatch and Budgets cannot use the AWS managed SNS key.
        key = kms.Key(
            self,
            "AlarmTopicKey",
            enable_key_rotation=True,
            description=f"{config.prefix}: encrypts the alarm topic",
            # It protects messages in flight only: nothing stored outlives the stack with it.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                principals=[iam.ServicePrincipal(p) for p in PUBLISHERS],
                resources=["*"],  # in a key policy, "*" is this key
                conditions=same_account,
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"{config.prefix} alarms",
            master_key=key,
            enforce_ssl=True,
        )
        # The topic's policy replaces the default one, so the publishers are named.
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                actions=["sns:Publish"],
                principals=[iam.ServicePrincipal(p) for p in PUBLISHERS],
                resources=[topic.topic_arn],
                conditions=same_account,
            )
        )
        for address in config.alarm_emails:
            topic.add_subscription(subscriptions.EmailSubscription(address))
        return topic

    def _budget(self, config: StackConfig) -> budgets.CfnBudget:
        subscriber = budgets.CfnBudget.SubscriberProperty(
            subscription_type="SNS", address=self.topic.topic_arn
        )
        return budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=f"{config.prefix}-monthly",
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(
                    amount=config.monthly_budget_usd, unit="USD"
                ),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        notification_type=kind,
                        comparison_operator="GREATER_THAN",
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=[subscriber],
                )
                for kind, percent in (
                    ("ACTUAL", BUDGET_ACTUAL_PERCENT),
                    ("FORECASTED", BUDGET_FORECAST_PERCENT),
                )
            ],
        )

    def watch_function(self, name: str, service: ServiceFunction) -> None:
        function = service.function
        self._alarm(
            f"{name}Errors", function.metric_errors(period=PERIOD, statistic="Sum"), "errors"
        )
        self._alarm(
            f"{name}Throttles",
            function.metric_throttles(period=PERIOD, statistic="Sum"),
            "throttles",
        )
        timeout_ms = service.timeout.to_milliseconds()
        self._alarm(
            f"{name}DurationNearTimeout",
            function.metric_duration(period=PERIOD, statistic="Maximum"),
            f"an invocation used {DURATION_ALARM_SHARE:.0%} or more of the {timeout_ms} ms timeout",
            threshold=round(timeout_ms * DURATION_ALARM_SHARE),
        )

    def watch_api(self, api: apigw.HttpApi) -> None:
        self._alarm(
            "Api5xx", api.metric_server_error(period=PERIOD, statistic="Sum"), "5xx responses"
        )

    def watch_state_machine(self, state_machine: sfn.StateMachine) -> None:
        self._alarm(
            "PipelineFailed",
            state_machine.metric_failed(period=PERIOD, statistic="Sum"),
            "failed pipeline executions (the trace records the stage)",
        )
        self._alarm(
            "PipelineTimedOut",
            state_machine.metric_timed_out(period=PERIOD, statistic="Sum"),
            "timeouts",
        )
        self._alarm(
            "PipelineAborted",
            state_machine.metric_aborted(period=PERIOD, statistic="Sum"),
            "aborts",
        )

    def watch_table(self, name: str, table: dynamodb.ITable) -> None:
        self._alarm(
            f"{name}TableThrottles",
            throttle_events(name, table),
            f"{DYNAMODB_THROTTLE_THRESHOLD} or more throttled requests",
            threshold=DYNAMODB_THROTTLE_THRESHOLD,
        )

    def watch_judge(self) -> None:
        self._alarm(
            "JudgeUnavailable",
            judge_unavailable_metric(),
            "traces judged offline because the model could not be reached",
        )

    def _alarm(
        self, construct_id: str, metric: cloudwatch.IMetric, what: str, *, threshold: float = 1
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"prtrace: {what} in the last 5 minutes",
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)  # so the on-call also learns it cleared
        self.alarms.append(alarm)


def throttle_events(name: str, table: dynamodb.ITable) -> cloudwatch.MathExpression:
    """Read and write throttle events of a table (either may publish no data point).
    `name` keeps the expression's ids apart from another table's on one graph."""
    read, write = f"r{name.lower()}", f"w{name.lower()}"
    return cloudwatch.MathExpression(
        expression=f"FILL({read}, 0) + FILL({write}, 0)",
        using_metrics={
            read: table.metric("ReadThrottleEvents", statistic="Sum", period=PERIOD),
            write: table.metric("WriteThrottleEvents", statistic="Sum", period=PERIOD),
        },
        label="throttled requests",
        period=PERIOD,
    )
