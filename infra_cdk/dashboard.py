"""The operations dashboard: alarm states, ingest rate, API answers, pipeline and stage
durations, QA verdicts, the judge's availability and token spend, DynamoDB throttles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final, get_args

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra_cdk.config import StackConfig
from infra_cdk.lambdas import ServiceFunction
from infra_cdk.monitoring import judge_unavailable_metric, throttle_events
from prtrace import cloudwatch_names as names
from prtrace.qa.report import Verdict

PERIOD: Final = Duration.minutes(5)
WIDTH: Final = 8  # three widgets a row (the grid is 24 wide)


def _metric(name: str, service: str, label: str, **dimensions: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=names.NAMESPACE,
        metric_name=name,
        dimensions_map={"service": service, **dimensions},
        statistic="Sum",
        period=PERIOD,
        label=label,
    )


def _graph(
    title: str,
    left: Sequence[cloudwatch.IMetric],
    *,
    right: Sequence[cloudwatch.IMetric] = (),
    stacked: bool = False,
) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title, left=list(left), right=list(right), stacked=stacked, width=WIDTH
    )


class OperationsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        api: apigw.HttpApi,
        api_functions: Mapping[str, ServiceFunction],
        pipeline_steps: Mapping[str, ServiceFunction],
        state_machine: sfn.StateMachine,
        tables: Mapping[str, dynamodb.ITable],
        alarms: Sequence[cloudwatch.IAlarm],
    ) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{config.prefix}-operations"
        )
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24)
        )
        self.dashboard.add_widgets(
            _graph(
                "Ingest: chunks and events stored",
                [_metric(names.CHUNKS_STORED, names.API_SERVICE, "chunks")],
                right=[_metric(names.EVENTS_STORED, names.API_SERVICE, "events")],
            ),
            _graph(
                "API requests, 4xx and 5xx",
                [
                    api.metric_count(period=PERIOD, statistic="Sum", label="requests"),
                    api.metric_client_error(period=PERIOD, statistic="Sum", label="4xx"),
                    api.metric_server_error(period=PERIOD, statistic="Sum", label="5xx"),
                ],
            ),
            _graph(
                "API function durations (p99, ms)",
                [
                    fn.function.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, fn in api_functions.items()
                ],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "Pipeline executions",
                [
                    state_machine.metric_started(period=PERIOD, statistic="Sum", label="started"),
                    state_machine.metric_succeeded(period=PERIOD, statistic="Sum", label="ended"),
                    state_machine.metric_failed(period=PERIOD, statistic="Sum", label="failed"),
                    state_machine.metric_timed_out(
                        period=PERIOD, statistic="Sum", label="timed out"
                    ),
                ],
            ),
            _graph(
                "Pipeline execution time (ms)",
                [
                    state_machine.metric_time(period=PERIOD, statistic=stat, label=stat)
                    for stat in ("p50", "p99", "Maximum")
                ],
            ),
            _graph(
                "Pipeline step durations (p99, ms)",
                [
                    fn.function.metric_duration(period=PERIOD, statistic="p99", label=name)
                    for name, fn in pipeline_steps.items()
                ],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "QA verdicts",
                [
                    _metric(
                        names.QA_VERDICT,
                        names.RECORD_SERVICE,
                        verdict,
                        **{names.VERDICT_DIMENSION: verdict},
                    )
                    for verdict in get_args(Verdict)
                ],
                stacked=True,
            ),
            _graph(
                "Judge: model unavailable",
                [judge_unavailable_metric().with_(label="traces judged offline")],
            ),
            _graph(
                "Judge tokens and cost",
                [
                    _metric(names.JUDGE_PROMPT_TOKENS, names.JUDGE_SERVICE, "prompt tokens"),
                    _metric(
                        names.JUDGE_COMPLETION_TOKENS, names.JUDGE_SERVICE, "completion tokens"
                    ),
                ],
                right=[_metric(names.JUDGE_COST_USD, names.JUDGE_SERVICE, "cost (USD)")],
            ),
        )
        self.dashboard.add_widgets(
            _graph(
                "DynamoDB throttled requests",
                [throttle_events(name, table).with_(label=name) for name, table in tables.items()],
            ),
        )
