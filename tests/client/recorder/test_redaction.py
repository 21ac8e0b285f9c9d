"""Secret redaction: realistic credentials are replaced by markers carrying their keyed hash
(HMAC-SHA256 under the installation's key); identifiers that only look random (git SHAs,
UUIDs, digests, code) are left alone."""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

import pytest

from prtrace_client.redaction import (
    MARKER_PATTERN,
    installation_key,
    load_redaction_key,
    marker,
    redact,
    redact_bytes,
    redaction_key_path,
)

AWS_KEY_ID = "AKIAQ3EGRX7PVN2LKD5T"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8Hk2Lm9T"
GITHUB_PAT = "ghp_" + "R8mV2kQz7LwX4pN9sT1yB6cJ3hF5dG0aE2uK"
GITHUB_FINE = "github_pat_11ABCDEFG0" + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUV"
GITLAB = "glpat-" + "xK9mP2vR7nQ4wL8sT3yZ"
SLACK = "xoxb-" + "2948175623-4829173645182-q8Zr2mKp5VnX7wLt3JsY9Hd"
OPENAI = "sk-proj-" + "Q7mZ2xV9kLp4Rt8NwB3yHc6JfD1sGa5E0uTi"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSIsImlhdCI6MTUxNjIzOTAyMn0."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)


def keyed(value: str) -> str:
    key = installation_key()
    assert key is not None
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        (f"export AWS_ACCESS_KEY_ID={AWS_KEY_ID}", "aws-access-key-id", AWS_KEY_ID),
        (f"aws_secret_access_key = {AWS_SECRET}", "aws-secret-key", AWS_SECRET),
        (f'"AwsSecretKey": "{AWS_SECRET}",', "aws-secret-key", AWS_SECRET),
        (f"cloning with token {GITHUB_PAT} ...", "github-token", GITHUB_PAT),
        (f"GH={GITHUB_FINE}", "github-token", GITHUB_FINE),
        (f"CI_TOKEN {GITLAB}", "gitlab-token", GITLAB),
        (f"slack: {SLACK}", "slack-token", SLACK),
        (f"client = OpenAI(api_key='{OPENAI}')", "openai-key", OPENAI),
        (f"token: {JWT}", "jwt", JWT),
        (
            "Authorization: Bearer 4f9a1c7e2b8d0a3f6e5c9b1d7a2e8f0c",
            "bearer-token",
            "4f9a1c7e2b8d0a3f6e5c9b1d7a2e8f0c",
        ),
        (
            "remote: https://deploy:Sup3r-S3cret!@git.example.com/app.git",
            "url-password",
            "Sup3r-S3cret!",
        ),
        (
            "DATABASE_URL=postgres://app:hunter2hunter2@db:5432/app",
            "url-password",
            "hunter2hunter2",
        ),
        ("DB_PASSWORD=correct-horse-42", "assigned-secret", "correct-horse-42"),
        ('"client_secret": "Zq8!mP2#vR7nQ4wL"', "assigned-secret", "Zq8!mP2#vR7nQ4wL"),
        ("api_key = 'abcd1234efgh5678'", "assigned-secret", "abcd1234efgh5678"),
        (f"key file:\n{PEM}\nend", "private-key", PEM),
    ],
)
def test_credentials_are_replaced_by_a_marker_with_their_keyed_hash(
    text: str, kind: str, secret: str
) -> None:
    result = redact(text)
    assert secret not in result.text
    assert marker(kind, secret) in result.text
    assert f"[REDACTED:{kind}:hmac-sha256={keyed(secret)}]" in result.text
    assert hashlib.sha256(secret.encode()).hexdigest() not in result.text
    assert result.count == 1
    assert result.kinds == (kind,)


def test_only_the_value_is_replaced_and_the_name_stays_readable() -> None:
    result = redact("remote: https://deploy:pw-9876543@git.example.com/x.git\nDB_PASSWORD=s3cr3t!x")
    assert result.text.startswith("remote: https://deploy:[REDACTED:url-password:hmac-")
    assert "@git.example.com/x.git\nDB_PASSWORD=[REDACTED:assigned-secret:hmac-" in result.text
    assert result.count == 2


def test_several_secrets_are_all_counted() -> None:
    text = f"{AWS_KEY_ID}\n{GITHUB_PAT}\n{SLACK}\n{JWT}\n"
    result = redact(text)
    assert result.count == 4
    assert len(MARKER_PATTERN.findall(result.text)) == 4
    for secret in (AWS_KEY_ID, GITHUB_PAT, SLACK, JWT):
        assert secret not in result.text


def test_redacting_twice_changes_nothing() -> None:
    once = redact(f"aws_secret_access_key={AWS_SECRET} password='pa55word!' {OPENAI}")
    assert once.count == 3
    twice = redact(once.text)
    assert twice.text == once.text
    assert twice.count == 0


@pytest.mark.parametrize(
    "text",
    [
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "request id 123e4567-e89b-12d3-a456-426614174000",
        "artifact://sha256/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        '"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"',
        "password = user_password",
        "secret = os.environ['APP_SECRET']",
        "api_key=None",
        'password: "<your password>"',
        "tests/test_ranges.py::test_merge_keeps_last_interval FAILED",
        "https://example.com/path?query=1",
        "git@github.com:example/repo.git",
        "pip install scikit-learn task-runner-long-name-for-testing",
        "tr_01JDQ6Z3Y0M7V8W9X0A1B2C3D4",
        "the secret ingredient is love",
    ],
)
def test_things_that_only_look_random_are_not_redacted(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.count == 0


def test_bytes_that_are_not_utf8_pass_through() -> None:
    data = b"\xff\xfe binary " + GITHUB_PAT.encode() + b" \x80 end"
    out, count = redact_bytes(data)
    assert count == 1
    assert GITHUB_PAT.encode() not in out
    assert out.startswith(b"\xff\xfe binary [REDACTED:github-token:hmac-sha256=")
    assert out.endswith(b"] \x80 end")


def test_the_installation_key_is_created_once_private_beside_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PRTRACE_CONFIG", str(tmp_path / "conf" / "config.toml"))
    path = redaction_key_path()
    assert path == tmp_path / "conf" / "redaction.key"
    key = load_redaction_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_redaction_key(path) == key  # read, never replaced
    assert [p.name for p in path.parent.iterdir()] == ["redaction.key"]


def test_a_weak_secret_cannot_be_found_from_its_marker_without_the_key() -> None:
    text = redact("password=letmein12345").text
    assert hashlib.sha256(b"letmein12345").hexdigest() not in text
    # Same secret, same installation: same marker; another key: another marker.
    assert redact("pwd=letmein12345").text.endswith(text.removeprefix("password="))
    other = redact("password=letmein12345", key=os.urandom(32)).text
    assert other != text
    assert MARKER_PATTERN.fullmatch(other.removeprefix("password="))


def test_without_a_usable_key_the_marker_carries_no_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("PRTRACE_CONFIG", str(blocker / "config.toml"))
    result = redact(f"token {GITHUB_PAT}")
    assert result.text == "token [REDACTED:github-token]"
    assert redact(result.text).count == 0
