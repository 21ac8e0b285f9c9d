"""HTTP API Lambda authorizer (simple responses): bearer token -> tenant and scopes.

It authenticates only. Scopes are checked by the API per route, because API Gateway caches
an authorizer's answer per token, not per route.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerResponseV2,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from prtrace.adapters.wiring import build_token_store
from prtrace.api_paths import IDENTITY_HEADER
from prtrace.clock import utc_now
from prtrace.ports import TokenStore
from prtrace.settings import tokens_table_from_env
from prtrace.tokens import authenticate, parse_token

logger = Logger(service="prtrace-authorizer")


@cache
def token_store() -> TokenStore:
    return build_token_store(tokens_table_from_env())


def decide(authorization: str | None, store: TokenStore, now: str) -> dict[str, Any]:
    denied = APIGatewayAuthorizerResponseV2(authorize=False).asdict()
    parsed = parse_token(authorization or "")
    if parsed is None:
        logger.info("denied: missing or malformed bearer token")
        return denied
    token_id, secret = parsed
    caller = authenticate(store.get_token(token_id), secret, now=now)
    if caller is None:
        logger.info("denied: unknown, revoked or expired token", extra={"token_id": token_id})
        return denied
    return APIGatewayAuthorizerResponseV2(
        authorize=True,
        context={
            "tenant": caller.tenant,
            "scopes": ",".join(sorted(caller.scopes)),
            "token_id": caller.token_id,
        },
    ).asdict()


@event_source(data_class=APIGatewayAuthorizerEventV2)
@logger.inject_lambda_context(log_event=False)  # the event holds the bearer token
def lambda_handler(event: APIGatewayAuthorizerEventV2, context: LambdaContext) -> dict[str, Any]:
    headers = event.headers or {}
    return decide(headers.get(IDENTITY_HEADER.lower()), token_store(), utc_now())
