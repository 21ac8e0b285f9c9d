"""The API's routes that answer without a token, and what API Gateway answers itself when
a route's authorizer refuses a request. The HTTP API deploys the public routes without the
authorizer and names the identity source below; the OpenAPI document lists the public
routes without a security requirement and documents the two refusals; the authorizer reads
the same header; the local cloud's HTTP gateway (and the tests' in-process one) skips the
authorizer for the public routes and answers refusals with `gateway_refusal`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# /v1/keys: the manifest signing keys (JWKS), which anyone verifying a bundle needs.
PUBLIC_PATHS: Final = frozenset({"/healthz", "/readyz", "/v1/keys"})

# The authorizer's identity source. API Gateway does not call the authorizer for a request
# without it and answers 401 itself; when the authorizer says no, API Gateway answers 403.
IDENTITY_HEADER: Final = "Authorization"
UNAUTHORIZED: Final = (401, "Unauthorized")  # no identity source: the authorizer not called
FORBIDDEN: Final = (403, "Forbidden")  # the authorizer answered isAuthorized: false


def gateway_refusal(verdict: Mapping[str, object] | None) -> tuple[int, str] | None:
    """API Gateway's own answer (status and the message of its `{"message": …}` body, not a
    problem document) to a request its route's authorizer did not let through: `verdict`
    is the authorizer's simple response, or None when the request lacked the identity
    source and the authorizer was not called. None: the request goes on to the
    integration."""
    if verdict is None:
        return UNAUTHORIZED
    if verdict.get("isAuthorized") is True:
        return None
    return FORBIDDEN
