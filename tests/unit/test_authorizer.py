"""The HTTP API authorizer: `decide()` against the in-memory token store, and the Lambda
handler end to end with real API Gateway v2 REQUEST authorizer events and DynamoDB in moto.
Every refusal looks the same, and neither the answer nor the logs ever carry the secret."""

from __future__ import annotations

import importlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
from moto import mock_aws

from functions.authorizer import handler as authorizer
from local_cloud.gateway import authorizer_event, http_api_event
from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTokenStore
from prtrace.adapters.memory import MemoryTokenStore
from prtrace.adapters.wiring import build_token_store
from prtrace.clock import utc_now
from prtrace.settings import ConfigurationError
from prtrace.tokens import TokenRecord, issue_token, parse_token
from tests.in_process_gateway import LambdaContext

NAMES = ResourceNames()
NOW = "2026-11-25T10:00:00.000Z"
DENIED = {"isAuthorized": False}


def _secret(token: str) -> str:
    parsed = parse_token(token)
    assert parsed is not None
    return parsed[1]


def _issue(
    store: MemoryTokenStore | DynamoTokenStore,
    tenant: str = "acme",
    scopes: tuple[str, ...] = ("ingest", "read"),
    *,
    now: str = NOW,
    expires_at: str | None = None,
) -> tuple[str, TokenRecord]:
    token, record = issue_token(tenant, list(scopes), now=now, expires_at=expires_at)
    store.put_token(record)
    return token, record


@pytest.fixture
def logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[io.StringIO]:
    """Everything the authorizer would ship to CloudWatch, at DEBUG: its own JSON log lines
    (the Powertools handler's stream) plus any library logging that reaches the root."""
    buffer = io.StringIO()
    monkeypatch.setattr(authorizer.logger.registered_handler, "stream", buffer)
    previous = authorizer.logger.log_level
    authorizer.logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield buffer
    authorizer.logger.setLevel(previous)


# ---- decide() with the in-memory store ------------------------------------------------


@pytest.fixture
def memory() -> MemoryTokenStore:
    return MemoryTokenStore()


@pytest.mark.parametrize("prefix", ["Bearer ", "bearer ", "BEARER  ", ""])
def test_valid_token_is_authorized_with_tenant_scopes_and_token_id(memory, prefix):
    token, record = _issue(memory, "acme", ("read", "ingest"))
    answer = authorizer.decide(f"{prefix}{token}", memory, NOW)
    assert answer == {
        "isAuthorized": True,
        "context": {"tenant": "acme", "scopes": "ingest,read", "token_id": record.token_id},
    }


def test_context_names_the_tokens_own_tenant(memory):
    _issue(memory, "acme")
    token, record = _issue(memory, "globex", ("admin",))
    answer = authorizer.decide(f"Bearer {token}", memory, NOW)
    assert answer["context"] == {"tenant": "globex", "scopes": "admin", "token_id": record.token_id}


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer ",
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer prt_0123456789abcdef",
        "Bearer prt_0123456789abcdef_" + "a" * 63,  # secret one hex digit short
        "Bearer prt_0123456789abcdef_" + "a" * 65,
        "Bearer prt_0123456789ABCDEF_" + "a" * 64,  # ids and secrets are lower-case hex
        "Bearer prt_0123456789abcdeg_" + "a" * 64,
        "Bearer xyz_0123456789abcdef_" + "a" * 64,
        "Token prt_0123456789abcdef_" + "a" * 64,
    ],
)
def test_missing_or_malformed_header_is_denied(memory, header):
    _issue(memory)
    assert authorizer.decide(header, memory, NOW) == DENIED


def test_malformed_token_is_denied_without_a_store_lookup(memory):
    class Exploding(MemoryTokenStore):
        def get_token(self, token_id: str) -> TokenRecord | None:
            raise AssertionError("looked up a malformed token")

    assert authorizer.decide("Bearer nonsense", Exploding(), NOW) == DENIED


def test_unknown_token_id_is_denied(memory):
    token, record = _issue(memory)
    unknown = token.replace(record.token_id, "f" * 16 if record.token_id != "f" * 16 else "e" * 16)
    assert authorizer.decide(f"Bearer {unknown}", memory, NOW) == DENIED


def test_wrong_secret_is_denied(memory):
    token, _ = _issue(memory)
    secret = _secret(token)
    other = "0" if secret[-1] != "0" else "1"
    assert authorizer.decide(f"Bearer {token[:-1]}{other}", memory, NOW) == DENIED


def test_secret_of_another_token_is_denied(memory):
    first, first_record = _issue(memory)
    second, _ = _issue(memory)
    forged = f"prt_{first_record.token_id}_{_secret(second)}"
    assert authorizer.decide(f"Bearer {forged}", memory, NOW) == DENIED
    assert authorizer.decide(f"Bearer {first}", memory, NOW)["isAuthorized"] is True


def test_revoked_token_is_denied(memory):
    token, record = _issue(memory)
    assert authorizer.decide(f"Bearer {token}", memory, NOW)["isAuthorized"] is True
    memory.revoke_token(record.token_id, NOW)
    assert authorizer.decide(f"Bearer {token}", memory, NOW) == DENIED


def test_token_is_denied_from_the_moment_it_expires(memory):
    token, _ = _issue(memory, now="2026-11-01T00:00:00Z", expires_at="2026-11-25T10:00:00Z")
    assert (
        authorizer.decide(f"Bearer {token}", memory, "2026-11-25T09:59:59.999Z")["isAuthorized"]
        is True
    )
    assert authorizer.decide(f"Bearer {token}", memory, "2026-11-25T10:00:00.000Z") == DENIED
    assert authorizer.decide(f"Bearer {token}", memory, "2026-12-01T00:00:00.000Z") == DENIED


def test_stored_record_with_a_tampered_hash_is_denied(memory):
    token, record = _issue(memory)
    memory.tokens[record.token_id] = replace(record, secret_sha256="0" * 64)
    assert authorizer.decide(f"Bearer {token}", memory, NOW) == DENIED


def test_answers_and_logs_never_carry_the_secret(memory, logs, caplog, capsys):
    good, good_record = _issue(memory)
    revoked, revoked_record = _issue(memory)
    memory.revoke_token(revoked_record.token_id, NOW)
    wrong = good[:-1] + ("0" if good[-1] != "0" else "1")
    answers = [authorizer.decide(f"Bearer {t}", memory, NOW) for t in (good, revoked, wrong)]

    assert [a["isAuthorized"] for a in answers] == [True, False, False]
    text = logs.getvalue()
    assert "denied" in text  # the capture works: refusals are logged ...
    assert revoked_record.token_id in text  # ... with the token id, which is not secret
    captured = capsys.readouterr()
    everything = json.dumps(answers) + text + caplog.text + captured.out + captured.err
    for token in (good, revoked, wrong):
        assert _secret(token) not in everything
    assert good_record.secret_sha256 not in everything


# ---- lambda_handler end to end: v2 REQUEST authorizer events, DynamoDB in moto -------


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> Iterator[DynamoTokenStore]:
    with mock_aws():
        provision(NAMES)
        monkeypatch.setenv("PRTRACE_TOKENS_TABLE", NAMES.tokens_table)
        authorizer.token_store.cache_clear()
        yield build_token_store(NAMES.tokens_table)
        authorizer.token_store.cache_clear()


def invoke(authorization: str | None, *, header: str = "Authorization") -> dict[str, object]:
    headers = {"User-Agent": "prtrace-tests/1.0", "Content-Type": "application/json"}
    if authorization is not None:
        headers[header] = authorization
    request = http_api_event(
        "POST", "https://api.local/v1/traces?dry=1", headers, b"{}", route_key="POST /v1/traces"
    )
    event = authorizer_event(request)
    assert event["type"] == "REQUEST"
    assert event["version"] == "2.0"
    return authorizer.lambda_handler(event, LambdaContext())


def test_handler_authorizes_a_live_token_from_dynamodb(tokens):
    token, record = _issue(tokens, "acme", ("ingest", "read"), now=utc_now())
    answer = invoke(f"Bearer {token}")
    assert answer == {
        "isAuthorized": True,
        "context": {"tenant": "acme", "scopes": "ingest,read", "token_id": record.token_id},
    }


def test_handler_reads_the_header_whatever_its_case(tokens):
    # API Gateway lower-cases v2 header names; the event builder does the same.
    token, _ = _issue(tokens, now=utc_now())
    assert invoke(f"Bearer {token}", header="AUTHORIZATION")["isAuthorized"] is True


def test_handler_denies_every_bad_credential(tokens):
    now = utc_now()
    live, _ = _issue(tokens, now=now)
    revoked, revoked_record = _issue(tokens, now=now)
    tokens.revoke_token(revoked_record.token_id, now)
    expired, _ = _issue(tokens, now="2026-01-01T00:00:00Z", expires_at="2026-01-02T00:00:00Z")
    unknown = f"prt_{'0' * 16}_{_secret(live)}"
    wrong = live[:-1] + ("0" if live[-1] != "0" else "1")
    cases = {
        "missing header": None,
        "empty header": "",
        "malformed": "Bearer prt_short_secret",
        "unknown id": f"Bearer {unknown}",
        "wrong secret": f"Bearer {wrong}",
        "revoked": f"Bearer {revoked}",
        "expired": f"Bearer {expired}",
    }
    answers = {name: invoke(value) for name, value in cases.items()}
    assert answers == dict.fromkeys(cases, DENIED)
    assert invoke(f"Bearer {live}")["isAuthorized"] is True  # the table was reachable


@pytest.fixture
def event_logging_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The handler module as Lambda would load it with POWERTOOLS_LOGGER_LOG_EVENT=true
    (Powertools reads the variable when the handler is decorated, i.e. at import)."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    importlib.reload(authorizer)
    yield
    monkeypatch.delenv("POWERTOOLS_LOGGER_LOG_EVENT")
    importlib.reload(authorizer)


def test_handler_never_logs_or_returns_the_secret(tokens, logs, caplog, capsys):
    now = utc_now()
    live, _ = _issue(tokens, now=now)
    revoked, revoked_record = _issue(tokens, now=now)
    tokens.revoke_token(revoked_record.token_id, now)
    wrong = live[:-1] + ("0" if live[-1] != "0" else "1")
    answers = [invoke(f"Bearer {t}") for t in (live, revoked, wrong)]

    assert [a["isAuthorized"] for a in answers] == [True, False, False]
    text = logs.getvalue()
    assert "denied" in text
    assert revoked_record.token_id in text
    assert "GetItem" in caplog.text  # botocore's DEBUG logging was captured too
    captured = capsys.readouterr()
    everything = json.dumps(answers) + text + caplog.text + captured.out + captured.err
    for token in (live, revoked, wrong):
        assert _secret(token) not in everything


def test_handler_without_table_configuration_fails_closed(tokens, monkeypatch):
    token, _ = _issue(tokens, now=utc_now())
    monkeypatch.delenv("PRTRACE_TOKENS_TABLE")
    authorizer.token_store.cache_clear()
    with pytest.raises(ConfigurationError, match="PRTRACE_TOKENS_TABLE"):
        invoke(f"Bearer {token}")


def test_operator_enabled_event_logging_does_not_leak_the_bearer_token(
    tokens, event_logging_on, logs, caplog, capsys
):
    token, _ = _issue(tokens, now=utc_now())
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
    assert invoke(f"Bearer {token}")["isAuthorized"] is True
    assert invoke(f"Bearer {wrong}") == DENIED
    captured = capsys.readouterr()
    everything = logs.getvalue() + caplog.text + captured.out + captured.err
    assert "denied" in logs.getvalue()  # the handler's logging was captured
    assert _secret(token) not in everything
    assert _secret(wrong) not in everything
