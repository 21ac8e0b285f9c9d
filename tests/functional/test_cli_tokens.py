"""`prtrace tokens ...` as users run it: the installed console script in a subprocess,
talking to moto's server through AWS_ENDPOINT_URL, output captured as a pipe would."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from local_cloud.resources import ResourceNames, provision
from prtrace.adapters.dynamodb import DynamoTokenStore
from prtrace.adapters.wiring import build_token_store
from prtrace.clock import utc_now
from prtrace.tokens import authenticate, issue_token, parse_token
from tests.moto_server import moto_server, reset

NAMES = ResourceNames()
PRTRACE = Path(sys.executable).with_name("prtrace")
TOKEN_LINE = re.compile(r"^prt_([0-9a-f]{16})_([0-9a-f]{64})$")
LONG_TENANT = "globex-research-and-development-division-emea"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def env(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The CLI's environment; the tokens table exists (provisioned through the endpoint)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("PRTRACE_TOKENS_TABLE", NAMES.tokens_table)
    provision(NAMES)
    variables = {
        k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "COLUMNS", "LINES")
    }  # a pipe: 80 columns
    variables.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    yield variables
    reset(endpoint)


@pytest.fixture
def store(env: dict[str, str]) -> DynamoTokenStore:
    return build_token_store(NAMES.tokens_table)


def prtrace(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert PRTRACE.exists(), PRTRACE
    return subprocess.run(
        [str(PRTRACE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stored_items() -> list[dict[str, object]]:
    db = boto3.client("dynamodb")
    return db.scan(TableName=NAMES.tokens_table, ConsistentRead=True)["Items"]


def table_rows(output: str) -> dict[str, list[str]]:
    """Rows of the rich table keyed by token id, cells stripped."""
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip("│").split("│")]
        if len(cells) == 6 and re.fullmatch(r"[0-9a-f]{16}", cells[0]):
            rows[cells[0]] = cells
    return rows


def test_create_list_revoke_round_trip(env, store):
    other_token, other = issue_token(LONG_TENANT, ["admin"], now=utc_now())
    store.put_token(other)

    created = prtrace(env, "tokens", "create", "--tenant", "acme", "--scopes", "ingest,read")
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    assert len(lines) == 1
    assert created.stdout == lines[0] + "\n"
    match = TOKEN_LINE.match(lines[0])
    assert match, created.stdout
    token_id, secret = match.groups()
    assert f"created token {token_id} for tenant acme" in created.stderr
    assert "not shown again" in created.stderr
    assert secret not in created.stderr

    (item,) = [i for i in stored_items() if i["token_id"] == {"S": token_id}]
    assert item["secret_sha256"] == {"S": hashlib.sha256(secret.encode()).hexdigest()}
    assert secret not in json.dumps(item)  # only the hash is stored
    assert set(item) == {
        "token_id",
        "tenant",
        "scopes",
        "secret_sha256",
        "created_at",
        "description",
    }
    assert (item["tenant"], item["scopes"]) == (
        {"S": "acme"},
        {"L": [{"S": "ingest"}, {"S": "read"}]},
    )
    principal = authenticate(store.get_token(token_id), secret, now=utc_now())
    assert principal is not None
    assert principal.tenant == "acme"

    listed = prtrace(env, "tokens", "list")
    assert listed.returncode == 0, listed.stderr
    rows = table_rows(listed.stdout)
    assert set(rows) == {token_id, other.token_id}  # full ids, even piped at 80 columns
    assert rows[token_id][1:3] == ["acme", "ingest,read"]
    assert rows[token_id][5] == "active"
    assert rows[other.token_id][1] == LONG_TENANT
    for hidden in (secret, _secret(other_token), item["secret_sha256"]["S"], other.secret_sha256):
        assert hidden not in listed.stdout + listed.stderr

    revoked = prtrace(env, "tokens", "revoke", token_id)
    assert revoked.returncode == 0, revoked.stderr
    assert re.fullmatch(rf"revoked {token_id} at \d{{4}}-\d\d-\d\dT[\d:.]+Z\n", revoked.stdout)
    record = store.get_token(token_id)
    assert record is not None
    assert record.revoked_at is not None
    assert authenticate(record, secret, now=utc_now()) is None
    assert (
        authenticate(store.get_token(other.token_id), _secret(other_token), now=utc_now())
        is not None
    )


def _secret(token: str) -> str:
    parsed = parse_token(token)
    assert parsed is not None
    return parsed[1]


def test_list_for_one_tenant_shows_its_tokens_and_their_state(env, store):
    now = utc_now()
    _, live = issue_token("acme", ["read"], now=now)
    _, gone = issue_token("acme", ["ingest"], now=now)
    _, old = issue_token(
        "acme", ["read"], now="2026-01-01T00:00:00Z", expires_at="2026-01-02T00:00:00Z"
    )
    _, foreign = issue_token("globex", ["admin"], now=now)
    for record in (live, gone, old, foreign):
        store.put_token(record)
    store.revoke_token(gone.token_id, now)

    listed = prtrace(env, "tokens", "list", "--tenant", "acme")
    assert listed.returncode == 0, listed.stderr
    rows = table_rows(listed.stdout)
    assert {k: v[5] for k, v in rows.items()} == {
        live.token_id: "active",
        gone.token_id: "revoked",
        old.token_id: "expired",
    }
    assert "globex" not in listed.stdout


def test_revoke_of_an_unknown_id_fails_clearly_and_creates_nothing(env):
    result = prtrace(env, "tokens", "revoke", "0123456789abcdef")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == "error: no token with id 0123456789abcdef"
    assert stored_items() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--tenant", "Acme_Corp"],
            "error: tenant 'Acme_Corp' must match ^[a-z0-9][a-z0-9-]{0,62}$",
        ),
        (
            ["--tenant", "acme", "--scopes", "ingest,write"],
            "error: scopes must be a non-empty subset of ingest, read, admin; "
            "got ['ingest', 'write']",
        ),
        (
            ["--tenant", "acme", "--scopes", " , "],
            "error: scopes must be a non-empty subset of ingest, read, admin; got []",
        ),
    ],
)
def test_create_with_bad_input_exits_2_with_the_reason(env, args, message):
    result = prtrace(env, "tokens", "create", *args)
    assert result.returncode == 2
    assert result.stdout == ""  # no token for a request that was refused
    assert result.stderr.strip() == message  # one readable line, brackets and all
    assert stored_items() == []


def test_missing_table_configuration_is_a_clear_error(env):
    unset = {k: v for k, v in env.items() if k != "PRTRACE_TOKENS_TABLE"}
    result = prtrace(unset, "tokens", "create", "--tenant", "acme")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip() == "error: set PRTRACE_TOKENS_TABLE or pass --table"
    assert stored_items() == []


def test_table_that_does_not_exist_is_a_clear_error_and_no_token_is_shown(env):
    result = prtrace(
        env | {"PRTRACE_TOKENS_TABLE": "prtrace-tokens-typo"},
        "tokens",
        "create",
        "--tenant",
        "acme",
    )
    assert result.returncode == 1
    assert result.stdout == ""  # the token was not stored, so it must not be handed out
    assert result.stderr.startswith("error: table prtrace-tokens-typo not found;")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert "prt_" not in result.stderr
