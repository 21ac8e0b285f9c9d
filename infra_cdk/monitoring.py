"""Alarms on what an operator must act on, and where they go.

Every alarm notifies one SNS topic: the operator's (`alarm_topic_arn`), or else the stack's
own, encrypted and subscribed by `alarm_emails`; a stage whose profile requires delivery
fails the synth without either (infra_cdk.config). Each alarm fires on a pattern, not on
one data point: a rate, a count over a window, or several windows in a row (`AlarmRule`),
and names its entry in the runbook (docs/RUNBOOK.md), which a test holds to.

The metrics here publish only when something happens (an error, a throttle, a stopped
task), so missing data is "nothing happened": every alarm treats it as not breaching.

QA tasks that exit non-zero, run out of memory or fail to start are counted from ECS's
task state change events: an EventBridge rule copies the QA task's stop events (and AWS
Backup's failed jobs) into a log group, whose metric filters count them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.lambdas import ServiceFunction, log_retention
from prtrace import cloudwatch_names as names

RUNBOOK: Final = Path(__file__).resolve().parents[1] / "docs" / "RUNBOOK.md"
RUNBOOK_LINK: Final = "docs/RUNBOOK.md"
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
# The API's rates are taken only over windows with enough requests to mean something.
API_5XX_MIN_REQUESTS: Final = 20
API_5XX_PERCENT: Final = 5
API_4XX_MIN_REQUESTS: Final = 50
API_4XX_PERCENT: Final = 30
API_P99_LATENCY_MS: Final = 3000
# Share of the account's Lambda concurrency quota (and of its unreserved pool) in use.
CONCURRENCY_PERCENT: Final = 80
# Metrics counted from the QA task's stop events and AWS Backup's job events.
QA_TASK_EXITED: Final = "QaTaskExited"
QA_TASK_OUT_OF_MEMORY: Final = "QaTaskOutOfMemory"
QA_TASK_FAILED_TO_START: Final = "QaTaskFailedToStart"
BACKUP_JOB_FAILED: Final = "BackupJobFailed"
OPERATIONS_EVENTS_SERVICE: Final = "operations-events"


@dataclass(frozen=True)
class AlarmRule:
    """When an alarm fires: `datapoints` of the last `windows` periods at or above
    `threshold`."""

    threshold: float
    period: Duration = PERIOD
    windows: int = 1
    datapoints: int = 1


# Errors the callers see at once: a burst lasting 10 of the last 15 minutes.
API_ERRORS: Final = AlarmRule(threshold=5, windows=3, datapoints=2)
# Pipeline steps run a few times an hour and Step Functions retries them: three errors in
# a quarter of an hour, twice within the hour.
STEP_ERRORS: Final = AlarmRule(threshold=3, period=Duration.minutes(15), windows=4, datapoints=2)
THROTTLES: Final = AlarmRule(threshold=5, windows=3, datapoints=2)
SUSTAINED: Final = AlarmRule(threshold=1, windows=3, datapoints=2)  # set threshold with_
HOURLY_FEW: Final = AlarmRule(threshold=2, period=Duration.hours(1))
QA_TASK_STOPS: Final = AlarmRule(threshold=3, period=Duration.hours(1))


def _rule(base: AlarmRule, threshold: float) -> AlarmRule:
    return AlarmRule(threshold, base.period, base.windows, base.datapoints)


def judge_unavailable_metric(period: Duration = PERIOD) -> cloudwatch.Metric:
    return _prtrace_metric(names.JUDGE_UNAVAILABLE, names.JUDGE_SERVICE, period)


def _prtrace_metric(name: str, service: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=names.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service},
        statistic="Sum",
        period=period,
    )


def qa_task_metric(name: str, period: Duration = PERIOD) -> cloudwatch.Metric:
    """A count from the operations events' metric filters (no dimensions: a filter with
    dimensions cannot publish a default value)."""
    return cloudwatch.Metric(
        namespace=names.NAMESPACE, metric_name=name, statistic="Sum", period=period
    )


class MonitoringConstruct(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, config: StackConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self.topic: sns.ITopic = (
            sns.Topic.from_topic_arn(self, "AlarmTopic", config.alarm_topic_arn)
            if config.alarm_topic_arn
            else self._own_topic(config)
        )
        self._action = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []
        # The operations events' log group, its resource policy and rules (made on first use).
        self._events_group: logs.LogGroup | None = None
        self._events_policy: logs.CfnResourcePolicy | None = None
        self.event_rules: list[events.CfnRule] = []
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

    # ---- functions, API, tables -----------------------------------------------------------

    def watch_function(self, name: str, service: ServiceFunction, *, serves_api: bool) -> None:
        """`serves_api`: callers wait on it (the API, the authorizer), so errors count at
        once; a pipeline step is retried and runs less often."""
        function = service.function
        errors = API_ERRORS if serves_api else STEP_ERRORS
        self._alarm(
            f"{name}Errors",
            function.metric_errors(period=errors.period, statistic="Sum"),
            f"{errors.threshold:g} or more errors per {_window(errors)}",
            errors,
            "function-errors",
        )
        self._alarm(
            f"{name}Throttles",
            function.metric_throttles(period=THROTTLES.period, statistic="Sum"),
            f"{THROTTLES.threshold:g} or more throttled invocations per {_window(THROTTLES)}",
            THROTTLES,
            "function-throttles",
        )
        timeout_ms = service.timeout.to_milliseconds()
        slow = _rule(SUSTAINED, round(timeout_ms * DURATION_ALARM_SHARE))
        self._alarm(
            f"{name}DurationNearTimeout",
            function.metric_duration(period=slow.period, statistic="Maximum"),
            f"an invocation used {DURATION_ALARM_SHARE:.0%} or more of the {timeout_ms} ms "
            f"timeout, in {_window(slow)}",
            slow,
            "function-duration-near-timeout",
        )

    def watch_api(self, api: apigw.HttpApi) -> None:
        rule = _rule(SUSTAINED, API_5XX_PERCENT)
        self._alarm(
            "Api5xxRate",
            _percent_of_requests(api, api.metric_server_error, API_5XX_MIN_REQUESTS),
            f"{API_5XX_PERCENT}% or more of the requests answered 5xx (windows of "
            f"{API_5XX_MIN_REQUESTS}+ requests), in {_window(rule)}",
            rule,
            "api-5xx-rate",
        )
        rule = AlarmRule(API_4XX_PERCENT, windows=3, datapoints=3)
        self._alarm(
            "Api4xxRate",
            _percent_of_requests(api, api.metric_client_error, API_4XX_MIN_REQUESTS),
            f"{API_4XX_PERCENT}% or more of the requests answered 4xx (windows of "
            f"{API_4XX_MIN_REQUESTS}+ requests), in {_window(rule)}",
            rule,
            "api-4xx-rate",
        )
        rule = AlarmRule(API_P99_LATENCY_MS, windows=3, datapoints=3)
        self._alarm(
            "ApiLatencyP99",
            api.metric_latency(period=rule.period, statistic="p99"),
            f"the API's p99 latency was {API_P99_LATENCY_MS} ms or more in {_window(rule)}",
            rule,
            "api-p99-latency",
        )

    def watch_table(self, name: str, table: dynamodb.ITable) -> None:
        rule = _rule(SUSTAINED, DYNAMODB_THROTTLE_THRESHOLD)
        self._alarm(
            f"{name}TableThrottles",
            throttle_events(name, table),
            f"{DYNAMODB_THROTTLE_THRESHOLD} or more throttled requests per 5 minutes, in "
            f"{_window(rule)}",
            rule,
            "table-throttles",
        )

    # ---- state machines, QA task, EventBridge ---------------------------------------------

    def watch_state_machine(self, state_machine: sfn.StateMachine) -> None:
        rule = AlarmRule(2, period=Duration.minutes(15), windows=4, datapoints=2)
        self._alarm(
            "PipelineFailed",
            state_machine.metric_failed(period=rule.period, statistic="Sum"),
            "2 or more failed pipeline executions per 15 minutes, twice within the hour "
            "(each trace records its stage)",
            rule,
            "pipeline-failed",
        )
        self._alarm(
            "PipelineTimedOut",
            state_machine.metric_timed_out(period=HOURLY_FEW.period, statistic="Sum"),
            "2 or more pipeline executions reached their time limit within an hour",
            HOURLY_FEW,
            "pipeline-timed-out",
        )
        # Only a person (or a deploy that replaced the state machine) aborts an execution.
        once = AlarmRule(1, period=Duration.hours(1))
        self._alarm(
            "PipelineAborted",
            state_machine.metric_aborted(period=once.period, statistic="Sum"),
            "a pipeline execution was aborted within the last hour",
            once,
            "pipeline-aborted",
        )

    def watch_export(self, state_machine: sfn.StateMachine) -> None:
        self._alarm(
            "ExportFailed",
            state_machine.metric_failed(period=HOURLY_FEW.period, statistic="Sum"),
            "2 or more dataset export executions failed within an hour",
            HOURLY_FEW,
            "export-failed",
        )
        # An export that runs into its 8-hour limit, or is stopped, is not a tenant's doing.
        once = AlarmRule(1, period=Duration.hours(1))
        self._alarm(
            "ExportTimedOutOrAborted",
            cloudwatch.MathExpression(
                expression="FILL(t, 0) + FILL(a, 0)",
                using_metrics={
                    "t": state_machine.metric_timed_out(period=once.period, statistic="Sum"),
                    "a": state_machine.metric_aborted(period=once.period, statistic="Sum"),
                },
                label="exports timed out or aborted",
                period=once.period,
            ),
            "a dataset export execution timed out or was aborted within the last hour",
            once,
            "export-timed-out-or-aborted",
        )

    def watch_qa_task(self, cluster: ecs.ICluster, task: ecs.TaskDefinition) -> None:
        """The QA task's stops, from ECS's events: a repository may legitimately crash its
        runner or exhaust the task's memory now and then (the trace records it as a QA
        outcome); several an hour mean the task is too small, or something attacks it."""
        stack = Stack.of(self)
        task_definitions = stack.format_arn(
            service="ecs", resource="task-definition", resource_name=f"{task.family}:"
        )
        first = "$.detail.containers[0]"
        ended = '$.detail.stopCode = "EssentialContainerExited"'
        oom = f'{first}.reason = "OutOfMemoryError*"'
        self._operations_events(
            "QaTaskStopped",
            "The QA task's stops -> operations events (exits, out of memory, failed starts)",
            {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {
                    "clusterArn": [cluster.cluster_arn],
                    "lastStatus": ["STOPPED"],
                    "taskDefinitionArn": [{"prefix": task_definitions}],
                },
            },
            {
                QA_TASK_EXITED: f"{{ ({ended}) && ({first}.exitCode != 0) && "
                f'({first}.reason != "OutOfMemoryError*") }}',
                QA_TASK_OUT_OF_MEMORY: f"{{ {oom} }}",
                QA_TASK_FAILED_TO_START: '{ $.detail.stopCode = "TaskFailedToStart" }',
            },
        )
        for metric, what, anchor in (
            (QA_TASK_EXITED, "QA tasks exited non-zero", "qa-task-exited"),
            (QA_TASK_OUT_OF_MEMORY, "QA tasks ran out of memory", "qa-task-out-of-memory"),
            (QA_TASK_FAILED_TO_START, "QA tasks failed to start", "qa-task-failed-to-start"),
        ):
            self._alarm(
                metric,
                qa_task_metric(metric, QA_TASK_STOPS.period),
                f"{QA_TASK_STOPS.threshold:g} or more {what} within an hour",
                QA_TASK_STOPS,
                anchor,
            )

    def watch_backups(self, vault_name: str) -> None:
        self._operations_events(
            "BackupJobEnded",
            "Backup jobs of this stack's vault that failed -> operations events",
            {
                "source": ["aws.backup"],
                "detail-type": ["Backup Job State Change"],
                "detail": {
                    "backupVaultName": [vault_name],
                    "state": ["FAILED", "ABORTED", "EXPIRED"],
                },
            },
            {BACKUP_JOB_FAILED: '{ $.source = "aws.backup" }'},
        )
        # One a day runs: a failed one is a day without a backup.
        once = AlarmRule(1, period=Duration.hours(6))
        self._alarm(
            "BackupJobFailed",
            qa_task_metric(BACKUP_JOB_FAILED, once.period),
            "a table backup job failed, was aborted or expired unstarted",
            once,
            "backup-job-failed",
        )

    def watch_rules(self, rules: Sequence[events.CfnRule]) -> None:
        """EventBridge counts a delivery as failed once the target's own retries are spent:
        each is an event lost (an execution's end, a sweep)."""
        rule_ = AlarmRule(1, period=Duration.hours(1), windows=3, datapoints=2)
        for rule in rules:
            # An L2 rule's resource is its child `Resource`: the rule's own id reads better.
            name = rule.node.scope.node.id if rule.node.id == "Resource" else rule.node.id  # type: ignore[union-attr]
            self._alarm(
                f"{name}FailedInvocations",
                cloudwatch.Metric(
                    namespace="AWS/Events",
                    metric_name="FailedInvocations",
                    dimensions_map={"RuleName": rule.ref},
                    statistic="Sum",
                    period=rule_.period,
                ),
                f"EventBridge gave up delivering events of rule {name} in 2 of the last 3 hours",
                rule_,
                "event-delivery-failed",
            )

    # ---- Lambda concurrency, judge ---------------------------------------------------------

    def watch_concurrency(self) -> None:
        """The account's Lambda concurrency against its quota (Service Quotas' usage metric),
        and the unreserved pool: the quota less what every function of the account has
        reserved (claimed minus unreserved in use)."""
        rule = _rule(SUSTAINED, CONCURRENCY_PERCENT)
        usage = cloudwatch.Metric(
            namespace="AWS/Usage",
            metric_name="ResourceCount",
            dimensions_map={
                "Service": "Lambda",
                "Type": "Resource",
                "Resource": "ConcurrentExecutions",
                "Class": "None",
            },
            statistic="Maximum",
            period=rule.period,
        )
        self._alarm(
            "AccountConcurrency",
            cloudwatch.MathExpression(
                expression="100 * usage / SERVICE_QUOTA(usage)",
                using_metrics={"usage": usage},
                label="% of the account's concurrency quota",
                period=rule.period,
            ),
            f"Lambda used {CONCURRENCY_PERCENT}% or more of the account's concurrency quota, "
            f"in {_window(rule)}",
            rule,
            "account-concurrency",
        )

        def account(metric_name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/Lambda",
                metric_name=metric_name,
                statistic="Maximum",
                period=rule.period,
            )

        self._alarm(
            "UnreservedConcurrency",
            cloudwatch.MathExpression(
                expression="100 * unreserved / (SERVICE_QUOTA(usage) - (claimed - unreserved))",
                using_metrics={
                    "usage": usage,
                    "unreserved": account("UnreservedConcurrentExecutions"),
                    "claimed": account("ClaimedAccountConcurrency"),
                },
                label="% of the unreserved pool in use",
                period=rule.period,
            ),
            f"functions without reserved concurrency (the pipeline steps) used "
            f"{CONCURRENCY_PERCENT}% or more of the unreserved pool, in {_window(rule)}",
            rule,
            "unreserved-concurrency",
        )

    def watch_judge(self) -> None:
        rule = AlarmRule(3, period=Duration.hours(1))
        self._alarm(
            "JudgeUnavailable",
            judge_unavailable_metric(rule.period),
            "3 or more traces within an hour judged offline because the model could not be reached",
            rule,
            "judge-unavailable",
        )
        config = self._config
        if config.judge_mode == "auto":
            # Not transient: no key in the secret means every trace from now on; one shows it.
            once = AlarmRule(1, period=Duration.hours(1))
            self._alarm(
                "JudgeOfflineFallback",
                _prtrace_metric(names.JUDGE_OFFLINE_FALLBACK, names.JUDGE_SERVICE, once.period),
                f"traces scored by the offline judge: no OpenAI key in {config.openai_secret_name}",
                once,
                "judge-offline-fallback",
            )
        if config.judge_daily_token_budget > 0:
            day = AlarmRule(config.judge_daily_token_budget, period=Duration.days(1))
            self._alarm(
                "JudgeTokenBudget",
                judge_tokens(day.period),
                f"the judge's model used {config.judge_daily_token_budget} tokens or more in "
                "24 hours (judge_daily_token_budget)",
                day,
                "judge-token-budget",
            )

    # ---- the parts ------------------------------------------------------------------------

    def _operations_events(
        self, rule_id: str, description: str, pattern: dict[str, object], filters: dict[str, str]
    ) -> events.CfnRule:
        """An EventBridge rule delivering into the operations events log group, and one
        metric filter per count. L1 resources: the L2 log group target installs its
        resource policy through a custom resource (a Lambda function)."""
        group, policy = self._events_log_group()
        stack = Stack.of(self)
        target = stack.format_arn(
            service="logs",
            resource="log-group",
            resource_name=group.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        rule = events.CfnRule(
            self,
            rule_id,
            description=description,
            event_pattern=pattern,
            targets=[events.CfnRule.TargetProperty(arn=target, id="operations-events")],
        )
        self.event_rules.append(rule)
        # Only these rules may write into the group.
        policy.policy_document = stack.to_json_string(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                        "Resource": group.log_group_arn,
                        "Condition": {
                            "ArnEquals": {"aws:SourceArn": [r.attr_arn for r in self.event_rules]}
                        },
                    }
                ],
            }
        )
        for metric, pattern_text in filters.items():
            logs.MetricFilter(
                self,
                f"{metric}Filter",
                log_group=group,
                filter_pattern=logs.FilterPattern.literal(pattern_text),
                metric_namespace=names.NAMESPACE,
                metric_name=metric,
                metric_value="1",
                default_value=0,
            )
        return rule

    def _events_log_group(self) -> tuple[logs.LogGroup, logs.CfnResourcePolicy]:
        """The log group EventBridge delivers operations events into, and its resource
        policy (an account-wide one: CloudWatch Logs allows 10 per region)."""
        if self._events_group is None or self._events_policy is None:
            self._events_group = logs.LogGroup(
                self,
                "OperationsEvents",
                # EventBridge delivers only into groups under /aws/events/.
                log_group_name=f"/aws/events/{self._config.prefix}-operations",
                retention=log_retention(self._config),
                removal_policy=RemovalPolicy.DESTROY,
            )
            self._events_policy = logs.CfnResourcePolicy(
                self,
                "OperationsEventsPolicy",
                policy_name=f"{self._config.prefix}-operations-events",
                policy_document="{}",  # set as rules are added
            )
        return self._events_group, self._events_policy

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        what: str,
        rule: AlarmRule,
        anchor: str,
    ) -> None:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_name=f"{self._config.prefix}-{construct_id}",
            metric=metric,
            threshold=rule.threshold,
            evaluation_periods=rule.windows,
            datapoints_to_alarm=rule.datapoints,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # These metrics publish only when something happens: no data is nothing wrong.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=f"prtrace: {what}. Runbook: {RUNBOOK_LINK}#{anchor}",
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)  # so the on-call also learns it cleared
        self.alarms.append(alarm)


def _window(rule: AlarmRule) -> str:
    minutes = int(rule.period.to_minutes())
    span = f"{minutes} minutes" if minutes < 60 else f"{minutes // 60} hour(s)"
    if rule.windows == 1:
        return span
    return f"{rule.datapoints} of the last {rule.windows} windows of {span}"


def _percent_of_requests(
    api: apigw.HttpApi, answers: Callable[..., cloudwatch.Metric], min_requests: int
) -> cloudwatch.MathExpression:
    """`answers`: api.metric_server_error or api.metric_client_error."""
    return cloudwatch.MathExpression(
        expression=f"IF(requests >= {min_requests}, 100 * FILL(answers, 0) / requests, 0)",
        using_metrics={
            "requests": api.metric_count(period=PERIOD, statistic="Sum"),
            "answers": answers(period=PERIOD, statistic="Sum"),
        },
        label="% of requests",
        period=PERIOD,
    )


def judge_tokens(period: Duration) -> cloudwatch.MathExpression:
    return cloudwatch.MathExpression(
        expression="FILL(prompt, 0) + FILL(completion, 0)",
        using_metrics={
            "prompt": _prtrace_metric(names.JUDGE_PROMPT_TOKENS, names.JUDGE_SERVICE, period),
            "completion": _prtrace_metric(
                names.JUDGE_COMPLETION_TOKENS, names.JUDGE_SERVICE, period
            ),
        },
        label="judge tokens",
        period=period,
    )


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
