"""Load the integrity key ring from Secrets Manager or SSM through Powertools parameters
(cached, so a warm Lambda does not call the service on every request).

The secret is JSON: {"current": "k2", "keys": {"k1": "<base64>", "k2": "<base64>"}}, or the
flat form CloudFormation generates, {"current": "k1", "k1": "<base64>"}; each key at least
32 bytes. Key material never appears in errors or logs.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from prtrace.integrity import KeyRing, UnknownKey

DEFAULT_MAX_AGE_S = 300


class KeyRingUnavailable(RuntimeError):
    pass


def parse_key_ring(raw: str | bytes) -> KeyRing:
    try:
        document = orjson.loads(raw)
        entries = document["keys"] if "keys" in document else _flat_entries(document)
        keys = {str(k): base64.b64decode(v, validate=True) for k, v in entries.items()}
        return KeyRing(current_id=str(document["current"]), keys=keys)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        # Say what is wrong with the shape, never echo the content.
        raise KeyRingUnavailable(
            f"integrity key secret is malformed ({type(exc).__name__}); expected "
            '{"current": id, "keys": {id: base64}}'
        ) from None
    except (ValueError, UnknownKey) as exc:  # UnknownKey: "current" names no listed key
        raise KeyRingUnavailable(f"integrity key secret is invalid: {exc}") from None


def _flat_entries(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != "current"}


def load_key_ring(
    *,
    secret_name: str | None = None,
    parameter_name: str | None = None,
    max_age_s: int = DEFAULT_MAX_AGE_S,
) -> KeyRing:
    try:
        if secret_name:
            raw = parameters.get_secret(secret_name, max_age=max_age_s)
        elif parameter_name:
            raw = parameters.get_parameter(parameter_name, decrypt=True, max_age=max_age_s)
        else:
            raw = None
    except GetParameterError as exc:
        where = secret_name or parameter_name
        raise KeyRingUnavailable(
            f"integrity key {where!r} could not be read: {type(exc.__cause__ or exc).__name__}"
        ) from None
    if raw is None:
        raise KeyRingUnavailable(
            "no integrity key configured: set PRTRACE_KEY_SECRET_NAME "
            "(Secrets Manager) or PRTRACE_KEY_PARAMETER_NAME (SSM)"
        )
    if not isinstance(raw, (str, bytes)):
        raise KeyRingUnavailable("integrity key secret is not a string")
    return parse_key_ring(raw)


def new_key_ring_secret(key_id: str = "k1") -> str:
    """A fresh secret value, for provisioning (CLI, local cloud)."""
    import secrets

    key = base64.b64encode(secrets.token_bytes(32)).decode()
    return orjson.dumps({"current": key_id, "keys": {key_id: key}}).decode()
