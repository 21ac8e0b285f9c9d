"""The API's routes that answer without a token: the HTTP API deploys them without the
authorizer, the OpenAPI document lists them without a security requirement, and the
local gateway skips the authorizer for them."""

from __future__ import annotations

from typing import Final

# /v1/keys: the manifest signing keys (JWKS), which anyone verifying a bundle needs.
PUBLIC_PATHS: Final = frozenset({"/healthz", "/readyz", "/v1/keys"})
