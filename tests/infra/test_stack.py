"""The synthesized template has the properties the operators' stack promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from infra_cdk.api import api_routes
from infra_cdk.app import build_app
from infra_cdk.config import ConfigError, StackConfig
from prtrace.api_paths import PUBLIC_PATHS
from tests.infra import template_queries as q


def _resources(template: Template, resource_type: str) -> dict[str, Any]:
    return template.find_resources(resource_type)


# ---- storage -------------------------------------------------------------------------


def test_the_data_bucket_is_encrypted_private_versioned_and_logged(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": Match.object_like({"LogFilePrefix": "data/"}),
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {"AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 3}}
                        )
                    ]
                )
            },
        },
    )


def test_every_bucket_refuses_plain_http(template: Template) -> None:
    buckets = _resources(template, "AWS::S3::Bucket")
    policies = _resources(template, "AWS::S3::BucketPolicy")
    guarded = set()
    for policy in policies.values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}:
                assert statement["Effect"] == "Deny"
                guarded.add(policy["Properties"]["Bucket"]["Ref"])
    assert guarded == set(buckets)


def test_tables_are_on_demand_with_point_in_time_recovery(template: Template) -> None:
    tables = _resources(template, "AWS::DynamoDB::Table")
    assert len(tables) == 3
    for table in tables.values():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
    keys = sorted(
        tuple(k["AttributeName"] for k in t["Properties"]["KeySchema"]) for t in tables.values()
    )
    # Must match prtrace.adapters.dynamodb and Powertools' idempotency layer.
    assert keys == [("id",), ("pk", "sk"), ("token_id",)]


def test_idempotency_records_expire(template: Template) -> None:
    template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "expiration", "Enabled": True},
        },
    )


def test_stored_data_survives_stack_deletion_unless_the_stage_says_otherwise(
    template: Template,
) -> None:
    for logical_id in ("StorageData", "StorageTraces", "StorageTokens", "StorageIntegrityKey"):
        matches = [
            r for k, r in template.to_json()["Resources"].items() if k.startswith(logical_id)
        ]
        assert matches, logical_id
        assert matches[0]["DeletionPolicy"] == "Retain"


def test_the_integrity_key_is_generated_in_the_key_ring_form(template: Template) -> None:
    template.has_resource_properties(
        "AWS::SecretsManager::Secret",
        {
            "GenerateSecretString": {
                "SecretStringTemplate": '{"current": "k1"}',
                "GenerateStringKey": "k1",
                "ExcludePunctuation": True,
                "IncludeSpace": False,
                "PasswordLength": 64,
            }
        },
    )


# ---- API -----------------------------------------------------------------------------


def test_every_api_operation_has_a_route_and_only_probes_are_public(template: Template) -> None:
    routes = _resources(template, "AWS::ApiGatewayV2::Route")
    served = {r["Properties"]["RouteKey"]: r["Properties"] for r in routes.values()}
    expected = {f"{method.value} {path}" for method, path in api_routes()}
    assert set(served) == expected
    assert "POST /v1/traces/{trace_id}/finalize" in served
    for route_key, props in served.items():
        path = route_key.split(" ", 1)[1]
        if path in PUBLIC_PATHS:
            assert props.get("AuthorizationType", "NONE") == "NONE"
        else:
            assert props["AuthorizationType"] == "CUSTOM", route_key


def test_the_authorizer_caches_simple_answers_per_token(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "REQUEST",
            "EnableSimpleResponses": True,
            "AuthorizerPayloadFormatVersion": "2.0",
            "IdentitySource": ["$request.header.Authorization"],
            "AuthorizerResultTtlInSeconds": StackConfig().token_cache_ttl_s,
        },
    )


def test_the_stage_is_throttled_and_writes_json_access_logs(template: Template) -> None:
    stage = next(iter(_resources(template, "AWS::ApiGatewayV2::Stage").values()))["Properties"]
    defaults = StackConfig()
    assert stage["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": defaults.throttle_burst,
        "ThrottlingRateLimit": defaults.throttle_rate_rps,
    }
    access = stage["AccessLogSettings"]
    assert "Fn::GetAtt" in access["DestinationArn"]
    fields = json.loads(access["Format"])
    assert {"requestId", "status", "routeKey", "latencyMs", "tenant"} <= set(fields)


def test_integrations_use_payload_format_2(template: Template) -> None:
    for integration in _resources(template, "AWS::ApiGatewayV2::Integration").values():
        assert integration["Properties"]["PayloadFormatVersion"] == "2.0"


# ---- functions and least privilege -----------------------------------------------------


def test_each_function_has_its_own_role_layers_and_tracing(template: Template) -> None:
    functions = _resources(template, "AWS::Lambda::Function")
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()]
    # authorizer, API, assemble, QA grant, judge, record, sweeper
    assert len(roles) == len(set(roles)) == 7
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 2
        assert "LoggingConfig" in props


def test_no_role_uses_a_managed_policy(template: Template) -> None:
    for role in _resources(template, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_the_authorizer_can_only_read_one_token_item(template: Template) -> None:
    data = [s for s in q.statements(template, "AuthorizerRole") if "xray" not in str(s["Action"])]
    data = [s for s in data if not any(a.startswith("logs:") for a in q.actions(s))]
    assert len(data) == 1
    assert q.actions(data[0]) == ["dynamodb:GetItem"]
    assert data[0]["Resource"]["Fn::GetAtt"][0].startswith("StorageTokens")


def test_the_api_role_has_no_wildcard_actions_and_no_token_table_access(
    template: Template,
) -> None:
    statements = q.statements(template, "ApiRole")
    actions = [a for s in statements for a in q.actions(s)]
    assert not [a for a in actions if a.endswith("*")]
    assert "dynamodb:DeleteItem" not in [
        a for s in statements if "StorageTraces" in json.dumps(s["Resource"]) for a in q.actions(s)
    ]  # chunks and traces are never deleted by the API
    assert "StorageTokens" not in json.dumps(statements)
    s3_writes = [s for s in statements if "s3:PutObject" in q.actions(s)]
    assert len(s3_writes) == 1  # what each object kind may be is test_pipeline's question
    listing = next(s for s in statements if "s3:ListBucket" in q.actions(s))
    prefixes = listing["Condition"]["StringLike"]["s3:prefix"]
    assert all(p.startswith("tenants/") for p in prefixes)
    assert "tenants/_readyz/" in prefixes  # the readiness probe's listing


def test_errors_throttles_5xx_and_failed_executions_raise_alarms(template: Template) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    # DynamoDB throttles (read + write) are metric math: those alarms name no one metric.
    functions = len(_resources(template, "AWS::Lambda::Function"))
    # Rates, sums of two metrics and quota shares are metric math: those name no one metric.
    metrics = sorted(a["Properties"].get("MetricName", "<math>") for a in alarms.values())
    assert metrics == sorted(
        ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"]  # pipeline
        + ["ExecutionsFailed"]  # dataset exports (timed out or aborted: math)
        + ["Errors", "Throttles", "Duration"] * functions
        + ["Latency", "JudgeUnavailable", "JudgeOfflineFallback"]
        + ["QaTaskExited", "QaTaskOutOfMemory", "QaTaskFailedToStart"]
        + ["FailedInvocations"] * 3  # execution ended, hourly sweep, QA task stops
        + ["<math>"] * 3  # DynamoDB throttles, one per table
        + ["<math>"] * 2  # API 5xx and 4xx rates
        + ["<math>"] * 3  # exports timed out or aborted, account and unreserved concurrency
        + ["<math>"]  # the judge's tokens in 24 h
    )


def test_outputs_name_what_clients_and_the_local_cloud_need(template: Template) -> None:
    outputs = template.to_json()["Outputs"]
    assert {
        "ApiEndpoint",
        "DataBucketName",
        "TracesTableName",
        "TokensTableName",
        "IdempotencyTableName",
        "IntegrityKeySecretArn",
        "PipelineStateMachineArn",
    } <= set(outputs)


# ---- checks on the whole template -------------------------------------------------------


def test_cfn_lint_is_clean(template_file: Path) -> None:
    # W3005: CDK adds an explicit DependsOn on roles it also references; harmless.
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--ignore-checks",
            "W3005",
            "--",
            str(template_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_cdk_nag_reports_nothing_unacknowledged(synthesized: tuple[App, Path]) -> None:
    _, outdir = synthesized
    report = json.loads((outdir / "validation-report.json").read_text())
    failures = [
        violation
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
    ]
    assert failures == []


def test_cdk_nag_is_really_checking(tmp_path: Path) -> None:
    """An unencrypted, unlogged, HTTP-reachable bucket must fail the synth."""
    from aws_cdk import Validations
    from cdk_nag import AwsSolutionsChecks

    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Careless")
    s3.Bucket(stack, "Open")
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed") as failed:
        app.synth()
    assert "AwsSolutions-S1'" in str(failed.value)  # no access logs
    assert "AwsSolutions-S10'" in str(failed.value)  # plain HTTP allowed


# ---- configuration --------------------------------------------------------------------


def test_context_wins_over_environment_and_strings_are_coerced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRTRACE_STAGE", "dev")
    monkeypatch.setenv("PRTRACE_LOG_RETENTION_DAYS", "90")
    monkeypatch.setenv("PRTRACE_ALARM_EMAILS", "a@example.com, b@example.org")
    monkeypatch.setenv("PRTRACE_API_RESERVED_CONCURRENCY", "none")
    config = StackConfig.resolve({"stage": "prod", "token_cache_ttl_s": "60"})
    assert (config.stage, config.token_cache_ttl_s, config.log_retention_days) == ("prod", 60, 90)
    assert config.alarm_emails == ("a@example.com", "b@example.org")
    assert config.api_reserved_concurrency is None


def test_a_bad_variable_is_named_as_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRTRACE_THROTTLE_BURST", "lots")
    with pytest.raises(ConfigError, match=r"throttle_burst \(-c throttle_burst= or PRTRACE_"):
        StackConfig.resolve({})


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"stage": "Prod!"}, "stage"),
        ({"log_retention_days": "31"}, "log_retention_days"),
        ({"token_cache_ttl_s": "7200"}, "token_cache_ttl_s"),
        ({"throttle_rate_rps": "fast"}, "throttle_rate_rps"),
        ({"destroy_data_on_delete": "maybe"}, "destroy_data_on_delete"),
        ({"alarm_topic_arn": "not-an-arn"}, "alarm_topic_arn"),
    ],
)
def test_bad_configuration_fails_naming_the_setting(context: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        StackConfig.resolve(context)


def test_a_bad_setting_stops_the_synth_before_anything_is_built() -> None:
    with pytest.raises(ConfigError, match="token_cache_ttl_s"):
        build_app({"token_cache_ttl_s": "-1"}, build_deps=False)


def test_a_dev_stage_can_be_torn_down_completely(tmp_path: Path) -> None:
    app = build_app(
        {"stage": "scratch", "destroy_data_on_delete": "true", "token_cache_ttl_s": "0"},
        build_deps=False,
        outdir=str(tmp_path),
    )
    template = Template.from_stack(app.node.find_child("prtrace-scratch"))  # type: ignore[arg-type]
    for logical_id, resource in template.to_json()["Resources"].items():
        if logical_id.startswith(("StorageData", "StorageTraces")):
            assert resource.get("DeletionPolicy", "Delete") == "Delete"
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer", {"AuthorizerResultTtlInSeconds": 0}
    )
