"""Operations in the operators' template: every alarm reaches someone, the dashboard shows
the pipeline's health and cost, functions keep their reserved concurrency, and a monthly
budget exists when one is configured."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra_cdk.app import build_app
from infra_cdk.config import ConfigError, StackConfig
from tests.infra import template_queries as q

OPERATOR_TOPIC = "arn:aws:sns:eu-west-1:123456789012:on-call"
EMAILS = ("ops@example.com", "oncall@example.org")


def _synth(tmp_path: Path, **context: str) -> Template:
    """A synth with these settings; cdk-nag runs during it and fails it on any finding."""
    app = build_app({"stage": "ops", **context}, build_deps=False, outdir=str(tmp_path))
    app.synth()
    return Template.from_stack(app.node.find_child("prtrace-ops"))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return _synth(
        tmp_path_factory.mktemp("configured"),
        alarm_emails=",".join(EMAILS),
        monthly_budget_usd="250",
        judge_reserved_concurrency="4",
        api_reserved_concurrency="none",
        judge_models="gpt-4.1,claude-compatible-model",
    )


@pytest.fixture(scope="module")
def operator_topic(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return _synth(
        tmp_path_factory.mktemp("operator-topic"),
        alarm_topic_arn=OPERATOR_TOPIC,
        monthly_budget_usd="40.5",
    )


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        k: r["Properties"] for k, r in template.find_resources("AWS::CloudWatch::Alarm").items()
    }


def _functions(template: Template) -> dict[str, dict[str, Any]]:
    """Lambda properties by the construct name the logical id starts with (Api, Judge...)."""
    found = {}
    for logical_id, resource in template.find_resources("AWS::Lambda::Function").items():
        name = logical_id.removeprefix("Pipeline").split("Function")[0]
        found[name] = resource["Properties"]
    assert set(found) == {"Authorizer", "Api", "Assemble", "QaGrant", "Judge", "Record", "Sweeper"}
    return found


def _function_ids(template: Template) -> dict[str, str]:
    ids = template.find_resources("AWS::Lambda::Function")
    return {
        logical_id.removeprefix("Pipeline").split("Function")[0]: logical_id for logical_id in ids
    }


# ---- the alarm topic --------------------------------------------------------------------


def test_the_stack_has_an_encrypted_alarm_topic_that_refuses_plain_http(template: Template) -> None:
    topic_id, topic = q.one(template, "AWS::SNS::Topic")
    key_id = topic["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    key = template.to_json()["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True
    _, policy = q.one(template, "AWS::SNS::TopicPolicy")
    assert policy["Properties"]["Topics"] == [{"Ref": topic_id}]
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    deny = [s for s in statements if s["Effect"] == "Deny"]
    assert deny
    assert deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # CloudWatch and Budgets must be able to publish to it, and to use its key.
    publishers = {"cloudwatch.amazonaws.com", "budgets.amazonaws.com"}
    allow = next(s for s in statements if s["Effect"] == "Allow")
    assert allow["Action"] == "sns:Publish"
    assert set(allow["Principal"]["Service"]) == publishers
    key_grant = next(
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if "Service" in s.get("Principal", {})
    )
    assert set(key_grant["Principal"]["Service"]) == publishers
    assert set(key_grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}


def test_every_alarm_notifies_the_stack_topic_when_it_fires_and_clears(template: Template) -> None:
    topic_id, _ = q.one(template, "AWS::SNS::Topic")
    alarms = _alarms(template)
    assert len(alarms) >= 20
    for logical_id, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}], logical_id
        assert alarm["OKActions"] == [{"Ref": topic_id}], logical_id
    assert template.to_json()["Outputs"]["AlarmTopicArn"]["Value"] == {"Ref": topic_id}


def test_nobody_is_subscribed_unless_configured(template: Template) -> None:
    assert template.find_resources("AWS::SNS::Subscription") == {}


def test_configured_addresses_are_subscribed_by_email(configured: Template) -> None:
    topic_id, _ = q.one(configured, "AWS::SNS::Topic")
    subscriptions = configured.find_resources("AWS::SNS::Subscription").values()
    assert sorted(
        (s["Properties"]["Protocol"], s["Properties"]["Endpoint"]) for s in subscriptions
    ) == sorted(("email", address) for address in EMAILS)
    assert all(s["Properties"]["TopicArn"] == {"Ref": topic_id} for s in subscriptions)


def test_an_operator_topic_replaces_the_stack_topic(operator_topic: Template) -> None:
    assert operator_topic.find_resources("AWS::SNS::Topic") == {}
    # No topic key; the one key left is the manifest signing key (infra_cdk/provenance.py).
    keys = operator_topic.find_resources("AWS::KMS::Key").values()
    assert [k["Properties"]["KeyUsage"] for k in keys] == ["SIGN_VERIFY"]
    alarms = _alarms(operator_topic)
    assert len(alarms) >= 20
    for logical_id, alarm in alarms.items():
        assert alarm["AlarmActions"] == [OPERATOR_TOPIC], logical_id
        assert alarm["OKActions"] == [OPERATOR_TOPIC], logical_id


# ---- alarms -----------------------------------------------------------------------------


def test_every_function_alarms_at_80_percent_of_its_timeout(template: Template) -> None:
    functions, ids = _functions(template), _function_ids(template)
    duration = {
        alarm["Dimensions"][0]["Value"]["Ref"]: alarm
        for alarm in _alarms(template).values()
        if alarm.get("MetricName") == "Duration"
    }
    assert set(duration) == set(ids.values())
    for name, props in functions.items():
        alarm = duration[ids[name]]
        assert alarm["Namespace"] == "AWS/Lambda"
        assert alarm["Statistic"] == "Maximum"
        assert alarm["Threshold"] == props["Timeout"] * 1000 * 0.8, name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert duration[ids["Judge"]]["Threshold"] == 480_000  # 600 s timeout


def test_every_table_alarms_on_read_and_write_throttles(template: Template) -> None:
    tables = set(template.find_resources("AWS::DynamoDB::Table"))
    watched = set()
    for alarm in _alarms(template).values():
        queries = alarm.get("Metrics", [])
        stats = [m["MetricStat"] for m in queries if "MetricStat" in m]
        if not stats or stats[0]["Metric"]["Namespace"] != "AWS/DynamoDB":
            continue
        assert sorted(s["Metric"]["MetricName"] for s in stats) == [
            "ReadThrottleEvents",
            "WriteThrottleEvents",
        ]
        assert {s["Stat"] for s in stats} == {"Sum"}
        (table,) = {s["Metric"]["Dimensions"][0]["Value"]["Ref"] for s in stats}
        expression = next(m for m in queries if m.get("ReturnData", True))["Expression"]
        assert expression.startswith("FILL(")
        assert alarm["Threshold"] == 10
        watched.add(table)
    assert watched == tables


def test_an_unreachable_judge_model_raises_an_alarm(template: Template) -> None:
    judge = [a for a in _alarms(template).values() if a.get("MetricName") == "JudgeUnavailable"]
    assert len(judge) == 1
    assert judge[0]["Namespace"] == "prtrace"
    assert judge[0]["Dimensions"] == [{"Name": "service", "Value": "prtrace-judge"}]
    # Three traces within an hour: one slow answer is not an outage.
    assert (judge[0]["Statistic"], judge[0]["Threshold"], judge[0]["Period"]) == ("Sum", 3, 3600)


# ---- dashboard --------------------------------------------------------------------------


def _metric_names(widget: dict[str, Any]) -> set[str]:
    """Metric names a graph widget plots (a metric row is [namespace, name, dims..., opts])."""
    rows = widget["properties"].get("metrics", [])
    found = set()
    for row in rows:
        for index, item in enumerate(row):
            if isinstance(item, str) and index == 1 and row[0] != "...":
                found.add(item)
            if isinstance(item, dict) and "expression" in item:
                found.add(item["expression"])
    return found


def test_the_dashboard_shows_ingest_api_pipeline_qa_and_judge(template: Template) -> None:
    widgets = q.dashboard_widgets(template)
    by_title = {w["properties"].get("title"): w for w in widgets}
    alarm_widget = by_title["Alarms"]
    assert alarm_widget["type"] == "alarm"
    assert len(alarm_widget["properties"]["alarms"]) == len(_alarms(template))
    expected = {
        "Ingest: chunks and events stored": {"ChunksStored", "EventsStored"},
        "API requests, 4xx and 5xx": {"Count", "4xx", "5xx"},
        "API function durations (p99, ms)": {"Duration"},
        "Pipeline executions": {"ExecutionsStarted", "ExecutionsFailed"},
        "Pipeline execution time (ms)": {"ExecutionTime"},
        "Pipeline step durations (p99, ms)": {"Duration"},
        "QA verdicts": {"QaVerdict"},
        "Judge: model unavailable": {"JudgeUnavailable"},
        "Judge tokens and cost": {"JudgePromptTokens", "JudgeCompletionTokens", "JudgeCostUsd"},
    }
    for title, metrics in expected.items():
        assert title in by_title, title
        assert metrics <= _metric_names(by_title[title]), title
    steps = by_title["Pipeline step durations (p99, ms)"]["properties"]["metrics"]
    assert [row[-1]["label"] for row in steps] == [
        "Assemble",
        "QaGrant",
        "Judge",
        "Record",
        "Sweeper",
    ]
    verdicts = by_title["QA verdicts"]["properties"]["metrics"]
    assert sorted(row[-1]["label"] for row in verdicts) == ["error", "resolved", "unresolved"]
    throttles = by_title["DynamoDB throttled requests"]["properties"]["metrics"]
    assert sum("expression" in row[0] for row in throttles if isinstance(row[0], dict)) == 3


def test_the_dashboard_reads_the_metrics_the_functions_publish() -> None:
    """The names come from one module the handlers also use: a renamed metric moves both."""
    from functions.api import telemetry
    from functions.judge import handler as judge
    from functions.record import handler as record
    from prtrace import cloudwatch_names as names

    assert (telemetry.SERVICE, judge.SERVICE, record.SERVICE) == (
        names.API_SERVICE,
        names.JUDGE_SERVICE,
        names.RECORD_SERVICE,
    )
    assert judge.metrics.namespace == telemetry.metrics.namespace == names.NAMESPACE


# ---- reserved concurrency ---------------------------------------------------------------


def test_the_ingestion_functions_keep_reserved_concurrency_by_default(template: Template) -> None:
    defaults = StackConfig()
    reserved = {
        name: props.get("ReservedConcurrentExecutions")
        for name, props in _functions(template).items()
    }
    assert reserved == {
        "Authorizer": defaults.authorizer_reserved_concurrency,
        "Api": defaults.api_reserved_concurrency,
        "Assemble": None,
        "QaGrant": None,
        "Judge": None,
        "Record": None,
        "Sweeper": 1,
    }
    assert reserved["Authorizer"]
    assert reserved["Api"]


def test_reserved_concurrency_follows_the_configuration(configured: Template) -> None:
    functions = _functions(configured)
    assert functions["Judge"]["ReservedConcurrentExecutions"] == 4
    assert "ReservedConcurrentExecutions" not in functions["Api"]  # "none": unreserved
    assert functions["Authorizer"]["ReservedConcurrentExecutions"] == 10


# ---- budget -----------------------------------------------------------------------------


def test_no_budget_unless_a_limit_is_configured(template: Template) -> None:
    assert StackConfig().monthly_budget_usd == 0
    assert template.find_resources("AWS::Budgets::Budget") == {}


def test_a_configured_budget_notifies_the_alarm_topic(configured: Template) -> None:
    topic_id, _ = q.one(configured, "AWS::SNS::Topic")
    _, budget = q.one(configured, "AWS::Budgets::Budget")
    props = budget["Properties"]
    assert props["Budget"]["BudgetLimit"] == {"Amount": 250, "Unit": "USD"}
    assert (props["Budget"]["BudgetType"], props["Budget"]["TimeUnit"]) == ("COST", "MONTHLY")
    notifications = props["NotificationsWithSubscribers"]
    assert sorted(
        (n["Notification"]["NotificationType"], n["Notification"]["Threshold"])
        for n in notifications
    ) == [("ACTUAL", 80), ("FORECASTED", 100)]
    for notification in notifications:
        assert notification["Subscribers"] == [
            {"SubscriptionType": "SNS", "Address": {"Ref": topic_id}}
        ]


def test_a_budget_notifies_the_operator_topic_when_one_is_given(operator_topic: Template) -> None:
    _, budget = q.one(operator_topic, "AWS::Budgets::Budget")
    assert budget["Properties"]["Budget"]["BudgetLimit"]["Amount"] == 40.5
    addresses = {
        json.dumps(s["Address"])
        for n in budget["Properties"]["NotificationsWithSubscribers"]
        for s in n["Subscribers"]
    }
    assert addresses == {json.dumps(OPERATOR_TOPIC)}


# ---- configuration ----------------------------------------------------------------------


def test_settings_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "PRTRACE_ALARM_EMAILS": " a@example.com , b@example.org ",
        "PRTRACE_MONTHLY_BUDGET_USD": "75",
        "PRTRACE_API_RESERVED_CONCURRENCY": "None",
        "PRTRACE_JUDGE_RESERVED_CONCURRENCY": "3",
    }.items():
        monkeypatch.setenv(name, value)
    config = StackConfig.resolve({})
    assert config.alarm_emails == ("a@example.com", "b@example.org")
    assert config.monthly_budget_usd == 75
    assert config.reserved_concurrency("api") is None
    assert config.reserved_concurrency("judge") == 3


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"alarm_emails": "ops@example.com,not an address"}, "alarm_emails"),
        ({"alarm_emails": "Ops <ops@example.com>"}, "alarm_emails"),
        ({"alarm_emails": "a@example.com", "alarm_topic_arn": OPERATOR_TOPIC}, "alarm_emails"),
        ({"monthly_budget_usd": "-1"}, "monthly_budget_usd"),
        ({"monthly_budget_usd": "lots"}, "monthly_budget_usd"),
        ({"judge_reserved_concurrency": "0"}, "judge_reserved_concurrency"),
        ({"api_reserved_concurrency": "many"}, "api_reserved_concurrency"),
    ],
)
def test_bad_operations_settings_fail_naming_the_setting(
    context: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        StackConfig.resolve(context)


def test_the_judges_ensemble_models_reach_the_judge_function(configured: Template) -> None:
    judge = _functions(configured)["Judge"]
    variables = judge["Environment"]["Variables"]
    assert variables["PRTRACE_JUDGE_MODELS"] == "gpt-4.1,claude-compatible-model"
