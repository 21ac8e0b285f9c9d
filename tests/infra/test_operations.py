"""Stage profiles, alarms that page someone, and evidence that cannot be rewritten, in the
synthesized templates: a dev stage (the session's template) and a prod stage."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra_cdk.app import build_app
from infra_cdk.config import ConfigError, StackConfig
from infra_cdk.monitoring import RUNBOOK, RUNBOOK_LINK
from tests.infra import template_queries as q

PROD_CONTEXT = {
    "stage": "prod",
    "alarm_emails": "oncall@example.com",
    "owner": "data-platform",
    "cost_centre": "cc-1234",
    "data_encryption": "customer-managed",
}


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """The prod profile's stack (cdk-nag runs during the synth and fails it on a finding)."""
    outdir = tmp_path_factory.mktemp("prod")
    app = build_app(PROD_CONTEXT, build_deps=False, outdir=str(outdir))
    app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    assert [v for p in report.get("pluginReports", []) for v in p.get("violations", [])] == []
    return Template.from_stack(app.node.find_child("prtrace-prod"))  # type: ignore[arg-type]


def _alarms(template: Template) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["AlarmName"]: r["Properties"]
        for r in template.find_resources("AWS::CloudWatch::Alarm").values()
    }


def _data_bucket(template: Template) -> dict[str, Any]:
    (bucket,) = [
        r["Properties"]
        for k, r in template.find_resources("AWS::S3::Bucket").items()
        if k.startswith("StorageData")
    ]
    return bucket  # type: ignore[no-any-return]


def _tables(template: Template) -> dict[str, dict[str, Any]]:
    return {
        k.removeprefix("Storage")[:-8]: r["Properties"]
        for k, r in template.find_resources("AWS::DynamoDB::Table").items()
    }


# ---- stage profiles ---------------------------------------------------------------------


def test_a_prod_stage_without_alarm_delivery_fails_naming_the_settings() -> None:
    with pytest.raises(ConfigError) as refused:
        build_app({"stage": "prod"}, build_deps=False)
    message = str(refused.value)
    assert "alarm_emails" in message
    assert "alarm_topic_arn" in message
    assert "PRTRACE_ALARM_EMAILS" in message
    # prod-<region> stages are prod too, and a profile can be chosen for any stage.
    with pytest.raises(ConfigError, match="alarm_emails"):
        StackConfig.resolve({"stage": "prod-eu"})
    with pytest.raises(ConfigError, match="alarm_topic_arn"):
        StackConfig.resolve({"stage": "staging", "stage_profile": "prod"})
    # Delivery through an operator's topic, or a deliberate opt-out, satisfies it.
    topic = "arn:aws:sns:eu-west-1:123456789012:on-call"
    assert StackConfig.resolve({"stage": "prod", "alarm_topic_arn": topic}).profile == "prod"
    assert not StackConfig.resolve(
        {"stage": "prod", "require_alarm_delivery": "false"}
    ).alarm_emails


def test_the_profile_sets_defaults_and_explicit_settings_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = StackConfig.resolve({"stage": "dev"})
    prod = StackConfig.resolve({"stage": "prod", "alarm_emails": "a@example.com"})
    assert (dev.profile, prod.profile) == ("dev", "prod")
    differs = {
        "log_retention_days": (30, 365),
        "judge_mode": ("auto", "openai"),
        "object_lock_mode": ("none", "governance"),
        "deletion_protection": (False, True),
        "backup_plan": (False, True),
        "require_alarm_delivery": (False, True),
        "monthly_budget_usd": (0, 500),
        "throttle_rate_rps": (20, 50),
    }
    for name, (in_dev, in_prod) in differs.items():
        assert (getattr(dev, name), getattr(prod, name)) == (in_dev, in_prod), name
    monkeypatch.setenv("PRTRACE_JUDGE_MODE", "auto")
    overridden = StackConfig.resolve(
        {"stage": "prod", "alarm_emails": "a@example.com", "object_lock_mode": "none"}
    )
    assert (overridden.judge_mode, overridden.object_lock_mode) == ("auto", "none")
    assert overridden.deletion_protection is True  # the rest still from the profile
    assert StackConfig.resolve({"stage": "dev", "stage_profile": "prod",
                                "alarm_emails": "a@example.com"}).backup_plan is True  # fmt: skip


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"stage_profile": "staging"}, "stage_profile"),
        ({"object_lock_mode": "forever"}, "object_lock_mode"),
        ({"data_encryption": "mine"}, "data_encryption"),
        ({"owner": "a<b>"}, "owner"),
        ({"judge_daily_token_budget": "-1"}, "judge_daily_token_budget"),
        # Objects must not be due to expire while their lock still holds them.
        (
            {
                "object_lock_mode": "governance",
                "object_lock_days": "400",
                "data_retention_days": "90",
            },
            "data_retention_days",
        ),
    ],
)
def test_bad_evidence_and_tag_settings_fail_naming_the_setting(
    context: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        StackConfig.resolve(context)


def test_every_taggable_resource_carries_the_stack_tags(prod: Template) -> None:
    expected = {
        "project": "prtrace",
        "stage": "prod",
        "stage-profile": "prod",
        "owner": "data-platform",
        "cost-centre": "cc-1234",
    }
    resources = prod.to_json()["Resources"]
    tagged = 0
    for logical_id, resource in resources.items():
        props = resource.get("Properties", {})
        tags = props.get("Tags") or props.get("BackupVaultTags") or props.get("BackupPlanTags")
        if tags is None:
            continue
        tagged += 1
        found = tags if isinstance(tags, dict) else {t["Key"]: t["Value"] for t in tags}
        assert expected.items() <= found.items(), logical_id
    assert tagged > 100
    for kind in ("AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::Lambda::Function",
                 "AWS::IAM::Role", "AWS::StepFunctions::StateMachine", "AWS::CloudWatch::Alarm",
                 "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::ECS::TaskDefinition"):  # fmt: skip
        for logical_id, resource in prod.find_resources(kind).items():
            assert "Tags" in resource["Properties"], logical_id


def test_a_dev_stage_is_tagged_without_owner_or_cost_centre(template: Template) -> None:
    _, bucket = next(iter(template.find_resources("AWS::S3::Bucket").items()))
    tags = {t["Key"]: t["Value"] for t in bucket["Properties"]["Tags"]}
    assert tags == {"project": "prtrace", "stage": "test", "stage-profile": "dev"}


# ---- alarms and the runbook -------------------------------------------------------------


def _slugs(markdown: str) -> set[str]:
    """The anchors GitHub (and MkDocs' toc) give the headings."""
    found = set()
    for line in markdown.splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            found.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return found


@pytest.mark.parametrize("which", ["dev", "prod"])
def test_every_alarm_names_a_runbook_entry_that_exists(
    which: str, template: Template, prod: Template
) -> None:
    anchors = _slugs(RUNBOOK.read_text())
    alarms = _alarms(prod if which == "prod" else template)
    named = set()
    for name, alarm in alarms.items():
        found = re.search(
            rf"Runbook: {re.escape(RUNBOOK_LINK)}#([a-z0-9-]+)$", alarm["AlarmDescription"]
        )
        assert found, name
        assert found.group(1) in anchors, (name, found.group(1))
        named.add(found.group(1))
    if which == "prod":
        # Not alarms in prod: the budget, and the fallback prod's `openai` mode cannot have.
        unused = anchors - named - {"monthly-budget", "judge-offline-fallback"}
        # Section headings group entries; every entry heading is some alarm's.
        sections = {"runbook", "functions", "api", "pipeline-and-exports", "qa-task"}
        sections |= {"storage", "judge", "account"}
        assert unused <= sections, unused - sections


def test_no_alarm_fires_on_a_single_data_point_by_accident(prod: Template) -> None:
    """Each alarm needs a rate, a count above one, several windows or an hour's window;
    and treats missing data (nothing happened) as not breaching."""
    once_is_enough = {"PipelineAborted", "ExportTimedOutOrAborted", "JudgeOfflineFallback",
                      "BackupJobFailed"}  # fmt: skip
    for name, alarm in _alarms(prod).items():
        assert alarm["TreatMissingData"] == "notBreaching", name
        short = name.removeprefix("prtrace-prod-")
        several_windows = alarm.get("DatapointsToAlarm", 1) >= 2
        if short in once_is_enough or short.endswith("FailedInvocations"):
            assert several_windows or _period(alarm) >= 3600, name
        else:
            assert alarm["Threshold"] > 1 or several_windows, name


def _period(alarm: dict[str, Any]) -> int:
    if "Period" in alarm:
        return int(alarm["Period"])
    return max(int(m["MetricStat"]["Period"]) for m in alarm["Metrics"] if "MetricStat" in m)


def test_the_missing_alarms_exist(prod: Template) -> None:
    alarms = {n.removeprefix("prtrace-prod-"): a for n, a in _alarms(prod).items()}
    expected = {
        "ExportFailed", "ExportTimedOutOrAborted", "QaTaskExited", "QaTaskOutOfMemory",
        "QaTaskFailedToStart", "Api5xxRate", "Api4xxRate", "ApiLatencyP99",
        "AccountConcurrency", "UnreservedConcurrency", "JudgeTokenBudget", "BackupJobFailed",
        "ExecutionEndedFailedInvocations", "SweepHourlyFailedInvocations",
        "QaTaskStoppedFailedInvocations", "BackupJobEndedFailedInvocations",
    }  # fmt: skip
    assert expected <= set(alarms), expected - set(alarms)
    # prod's judge mode is `openai`: a missing key fails the step (JudgeErrors), so there is
    # no silent fallback to watch.
    assert "JudgeOfflineFallback" not in alarms
    latency = alarms["ApiLatencyP99"]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Latency", "p99")
    rate = next(m for m in alarms["Api5xxRate"]["Metrics"] if m.get("ReturnData", True))
    assert rate["Expression"].startswith("IF(requests >= 20")
    quota = next(m for m in alarms["AccountConcurrency"]["Metrics"] if "Expression" in m)
    assert "SERVICE_QUOTA(usage)" in quota["Expression"]
    unreserved = json.dumps(alarms["UnreservedConcurrency"]["Metrics"])
    assert "UnreservedConcurrentExecutions" in unreserved
    assert "ClaimedAccountConcurrency" in unreserved
    tokens = alarms["JudgeTokenBudget"]
    assert tokens["Threshold"] == 30_000_000
    stats = [m["MetricStat"] for m in tokens["Metrics"] if "MetricStat" in m]
    assert {s["Metric"]["MetricName"] for s in stats} == {
        "JudgePromptTokens",
        "JudgeCompletionTokens",
    }
    assert {s["Period"] for s in stats} == {86400}


def test_the_silent_offline_fallback_raises_an_alarm_in_auto_mode(template: Template) -> None:
    (alarm,) = [a for n, a in _alarms(template).items() if n.endswith("-JudgeOfflineFallback")]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("prtrace", "JudgeOfflineFallback")
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "prtrace-judge"}]


def test_qa_task_stops_are_counted_from_ecs_events(prod: Template) -> None:
    rules = [
        r["Properties"]
        for r in prod.find_resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.ecs"]
    ]
    (rule,) = rules
    pattern = rule["EventPattern"]
    assert pattern["detail-type"] == ["ECS Task State Change"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    assert "prefix" in json.dumps(pattern["detail"]["taskDefinitionArn"])  # the QA family only
    (group_id, group) = next(
        (k, g)
        for k, g in prod.find_resources("AWS::Logs::LogGroup").items()
        if k.startswith("MonitoringOperationsEvents")
    )
    assert group["Properties"]["LogGroupName"] == "/aws/events/prtrace-prod-operations"
    filters = {
        f["Properties"]["MetricTransformations"][0]["MetricName"]: f["Properties"]
        for f in prod.find_resources("AWS::Logs::MetricFilter").values()
    }
    assert set(filters) == {"QaTaskExited", "QaTaskOutOfMemory", "QaTaskFailedToStart",
                            "BackupJobFailed"}  # fmt: skip
    assert "OutOfMemoryError" in filters["QaTaskOutOfMemory"]["FilterPattern"]
    assert "exitCode != 0" in filters["QaTaskExited"]["FilterPattern"]
    assert "TaskFailedToStart" in filters["QaTaskFailedToStart"]["FilterPattern"]
    for props in filters.values():
        assert props["LogGroupName"] == {"Ref": group_id}
    # Only the operations rules may write into the group.
    _, policy = q.one(prod, "AWS::Logs::ResourcePolicy")
    document = json.dumps(policy["Properties"]["PolicyDocument"])
    assert "events.amazonaws.com" in document
    assert "aws:SourceArn" in document


def test_prod_has_a_budget_and_dev_none(prod: Template, template: Template) -> None:
    _, budget = q.one(prod, "AWS::Budgets::Budget")
    assert budget["Properties"]["Budget"]["BudgetLimit"] == {"Amount": 500, "Unit": "USD"}
    assert template.find_resources("AWS::Budgets::Budget") == {}


# ---- evidence ---------------------------------------------------------------------------


def test_prod_locks_every_new_object_in_governance_mode(prod: Template) -> None:
    bucket = _data_bucket(prod)
    assert bucket["ObjectLockEnabled"] is True
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 365}},
    }


def test_dev_has_no_object_lock_and_expires_old_objects(template: Template) -> None:
    bucket = _data_bucket(template)
    assert "ObjectLockConfiguration" not in bucket
    rules = {r["Id"]: r for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert rules["expire"]["ExpirationInDays"] == 90
    assert [t["StorageClass"] for t in rules["age-to-colder-classes"]["Transitions"]] == [
        "STANDARD_IA"  # Glacier IR at 90 days would come with the expiry: left out
    ]


def test_prod_keeps_objects_in_colder_classes_and_never_expires_them(prod: Template) -> None:
    rules = {r["Id"]: r for r in _data_bucket(prod)["LifecycleConfiguration"]["Rules"]}
    assert "expire" not in rules
    transitions = rules["age-to-colder-classes"]["Transitions"]
    assert [(t["StorageClass"], t["TransitionInDays"]) for t in transitions] == [
        ("STANDARD_IA", 30),
        ("GLACIER_IR", 90),
    ]
    assert rules["expire-noncurrent"]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rules["abort-incomplete-multipart"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 3
    }
    assert rules["remove-expired-delete-markers"]["ExpiredObjectDeleteMarker"] is True


def test_a_retention_on_a_locked_bucket_expires_after_the_lock(tmp_path: Path) -> None:
    from infra_cdk.storage import lifecycle_rules

    config = StackConfig.resolve(
        {"object_lock_mode": "compliance", "object_lock_days": "30", "data_retention_days": "60"}
    )
    assert config.data_retention_days >= config.object_lock_days
    ids = {rule.id: rule for rule in lifecycle_rules(config.data_retention_days)}
    assert ids["expire"].expiration is not None
    assert ids["expire"].expiration.to_days() == 60


def test_prod_tables_are_protected_and_encrypted_with_the_customer_key(prod: Template) -> None:
    tables = _tables(prod)
    assert tables["Traces"]["DeletionProtectionEnabled"] is True
    assert tables["Tokens"]["DeletionProtectionEnabled"] is True
    assert "DeletionProtectionEnabled" not in tables["Idempotency"]  # 24 h records only
    (key_id,) = [k for k in prod.find_resources("AWS::KMS::Key") if k.startswith("StorageDataKey")]
    for table in tables.values():
        assert table["SSESpecification"] == {
            "SSEEnabled": True,
            "SSEType": "KMS",
            "KMSMasterKeyId": {"Fn::GetAtt": [key_id, "Arn"]},
        }
    encryption = _data_bucket(prod)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert encryption["BucketKeyEnabled"] is True
    key = prod.to_json()["Resources"][key_id]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    # Used through S3 and DynamoDB only, by this account's principals.
    via = next(s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Condition" in s)[
        "Condition"
    ]["StringEquals"]
    assert set(via) == {"kms:CallerAccount", "kms:ViaService"}
    assert len(via["kms:ViaService"]) == 2


def test_dev_tables_have_no_deletion_protection_and_aws_owned_keys(template: Template) -> None:
    for name, table in _tables(template).items():
        assert "DeletionProtectionEnabled" not in table, name
        assert table["SSESpecification"] == {"SSEEnabled": True}, name
    assert [
        k for k in template.find_resources("AWS::KMS::Key") if k.startswith("StorageDataKey")
    ] == []
    assert template.find_resources("AWS::Backup::BackupPlan") == {}


def test_prod_backs_up_the_traces_and_tokens_tables_daily(prod: Template) -> None:
    _, plan = q.one(prod, "AWS::Backup::BackupPlan")
    (rule,) = plan["Properties"]["BackupPlan"]["BackupPlanRule"]
    assert rule["ScheduleExpression"] == "cron(0 3 * * ? *)"
    assert rule["Lifecycle"] == {"DeleteAfterDays": 35}
    _, selection = q.one(prod, "AWS::Backup::BackupSelection")
    resources = json.dumps(selection["Properties"]["BackupSelection"]["Resources"])
    assert "StorageTraces" in resources
    assert "StorageTokens" in resources
    assert "StorageIdempotency" not in resources
    _, vault = q.one(prod, "AWS::Backup::BackupVault")
    assert vault["DeletionPolicy"] == "Retain"
