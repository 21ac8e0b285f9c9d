"""The HTTP API: routes from the committed OpenAPI document, a caching Lambda authorizer,
stage throttling and JSON access logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra_cdk.assets import ROOT
from infra_cdk.config import StackConfig
from infra_cdk.lambdas import log_retention
from infra_cdk.nag import acknowledge
from prtrace.api_paths import IDENTITY_HEADER, PUBLIC_PATHS

OPENAPI_DOCUMENT: Final = ROOT / "functions" / "api" / "openapi.json"
# Probes answer without a token so load balancers and the local cloud can check readiness.
ACCESS_LOG_FORMAT: Final = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTime",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "tenant": "$context.authorizer.tenant",
}


def api_routes(document: Path = OPENAPI_DOCUMENT) -> list[tuple[apigw.HttpMethod, str]]:
    """(method, path) for every operation the API Lambda serves, in a stable order."""
    paths = json.loads(document.read_text())["paths"]
    return [
        (apigw.HttpMethod[method.upper()], path)
        for path in sorted(paths)
        for method in sorted(paths[path])
    ]


class HttpApiConstruct(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: StackConfig,
        api_function: lambda_.IFunction,
        authorizer_function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.api = apigw.HttpApi(
            self,
            "HttpApi",
            api_name=f"{config.prefix}-api",
            description="prtrace ingestion API",
            create_default_stage=False,
        )
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(config),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.stage = apigw.HttpStage(
            self,
            "DefaultStage",
            http_api=self.api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(
                rate_limit=config.throttle_rate_rps, burst_limit=config.throttle_burst
            ),
        )
        cfn_stage = self.stage.node.default_child
        assert isinstance(cfn_stage, apigw.CfnStage)
        cfn_stage.access_log_settings = apigw.CfnStage.AccessLogSettingsProperty(
            destination_arn=self.access_logs.log_group_arn,
            format=json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":")),
        )

        authorizer = authorizers.HttpLambdaAuthorizer(
            "TokenAuthorizer",
            authorizer_function,
            response_types=[authorizers.HttpLambdaResponseType.SIMPLE],
            identity_source=[f"$request.header.{IDENTITY_HEADER}"],
            results_cache_ttl=Duration.seconds(config.token_cache_ttl_s),
        )
        integration = integrations.HttpLambdaIntegration(
            "ApiIntegration",
            api_function,
            payload_format_version=apigw.PayloadFormatVersion.VERSION_2_0,
        )
        for method, path in api_routes():
            public = path in PUBLIC_PATHS
            routes = self.api.add_routes(
                path=path,
                methods=[method],
                integration=integration,
                authorizer=apigw.HttpNoneAuthorizer() if public else authorizer,
            )
            if public:
                for route in routes:
                    acknowledge(
                        route,
                        "AwsSolutions-APIG4",
                        "Health and readiness probes carry no data and need no token.",
                    )

    @property
    def url(self) -> str:
        return self.api.api_endpoint
