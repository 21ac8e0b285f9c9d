"""Loading the integrity key ring from Secrets Manager or an SSM SecureString (moto), and
refusing malformed secrets without ever echoing their content."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import boto3
import orjson
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from prtrace.adapters.keys import (
    KeyRingUnavailable,
    load_key_ring,
    new_key_ring_secret,
    parse_key_ring,
)
from prtrace.integrity import KeyRing

KEY_1 = bytes(range(32))
KEY_2 = bytes(range(100, 148))
SECRET = orjson.dumps(
    {
        "current": "k2",
        "keys": {"k1": base64.b64encode(KEY_1).decode(), "k2": base64.b64encode(KEY_2).decode()},
    }
).decode()
SECRET_NAME = "prtrace/integrity-keys"
PARAMETER_NAME = "/prtrace/integrity-keys"


def _forget_powertools_state() -> None:
    # Powertools caches values and, per provider, a boto3 client made outside moto.
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()


@pytest.fixture
def aws() -> Iterator[None]:
    _forget_powertools_state()
    with mock_aws():
        yield
    _forget_powertools_state()


def put_secret(value: str) -> None:
    boto3.client("secretsmanager").create_secret(Name=SECRET_NAME, SecretString=value)


def put_parameter(value: str) -> None:
    boto3.client("ssm").put_parameter(Name=PARAMETER_NAME, Value=value, Type="SecureString")


def assert_ring(ring: KeyRing) -> None:
    assert ring.current_id == "k2"
    assert ring.current == KEY_2
    assert ring.get("k1") == KEY_1


@pytest.mark.usefixtures("aws")
def test_loads_from_secrets_manager() -> None:
    put_secret(SECRET)
    assert_ring(load_key_ring(secret_name=SECRET_NAME))


@pytest.mark.usefixtures("aws")
def test_loads_from_an_ssm_secure_string() -> None:
    put_parameter(SECRET)
    assert_ring(load_key_ring(parameter_name=PARAMETER_NAME))


@pytest.mark.usefixtures("aws")
def test_secrets_manager_wins_when_both_are_configured() -> None:
    put_secret(SECRET)
    put_parameter(new_key_ring_secret("other"))
    assert_ring(load_key_ring(secret_name=SECRET_NAME, parameter_name=PARAMETER_NAME))


@pytest.mark.usefixtures("aws")
def test_the_value_is_cached_between_calls() -> None:
    put_secret(SECRET)
    load_key_ring(secret_name=SECRET_NAME)
    boto3.client("secretsmanager").put_secret_value(
        SecretId=SECRET_NAME, SecretString=new_key_ring_secret("rotated")
    )
    assert load_key_ring(secret_name=SECRET_NAME).current_id == "k2"  # within max_age
    parameters.clear_caches()  # what max_age expiring does
    assert load_key_ring(secret_name=SECRET_NAME).current_id == "rotated"


def _short_key_secret() -> str:
    return orjson.dumps(
        {"current": "k1", "keys": {"k1": base64.b64encode(b"s3cr3t!").decode()}}
    ).decode()


MALFORMED = {
    "not_json": "s3cr3t-material-not-json",
    "a_list": '["s3cr3t-material"]',
    "no_keys": '{"current": "k1", "secret": "s3cr3t-material"}',
    "no_current": '{"keys": {"k1": "czNjcjN0LW1hdGVyaWFs"}}',
    "keys_not_an_object": '{"current": "k1", "keys": ["s3cr3t-material"]}',
    "not_base64": '{"current": "k1", "keys": {"k1": "s3cr3t-material!!"}}',
    "key_not_a_string": '{"current": "k1", "keys": {"k1": 12345678}}',
    "non_ascii_key": '{"current": "k1", "keys": {"k1": "s3cr3t-matériel"}}',
    "short_key": _short_key_secret(),
    "unknown_current": orjson.dumps(
        {"current": "k9", "keys": {"k1": base64.b64encode(b"s3cr3t-material" * 3).decode()}}
    ).decode(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_secrets_are_refused_without_echoing_them(name: str) -> None:
    raw = MALFORMED[name]
    with pytest.raises(KeyRingUnavailable) as caught:
        parse_key_ring(raw)
    message = str(caught.value)
    assert message.startswith("integrity key secret is")
    for leak in (
        "s3cr3t",
        "czNjcjN0",
        "matériel",
        "12345678",
        base64.b64encode(b"s3cr3t!").decode(),
    ):
        assert leak not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__  # no chained exception to log either


@pytest.mark.usefixtures("aws")
def test_a_malformed_stored_secret_is_refused_without_echoing_it() -> None:
    put_secret(MALFORMED["not_base64"])
    with pytest.raises(KeyRingUnavailable, match="malformed") as caught:
        load_key_ring(secret_name=SECRET_NAME)
    assert "s3cr3t" not in str(caught.value)


def test_no_configuration_is_a_clear_error() -> None:
    with pytest.raises(KeyRingUnavailable) as caught:
        load_key_ring()
    assert "PRTRACE_KEY_SECRET_NAME" in str(caught.value)
    assert "PRTRACE_KEY_PARAMETER_NAME" in str(caught.value)
    with pytest.raises(KeyRingUnavailable, match="no integrity key configured"):
        load_key_ring(secret_name="", parameter_name="")


def test_new_key_ring_secret_round_trips() -> None:
    ring = parse_key_ring(new_key_ring_secret("k7"))
    assert ring.current_id == "k7"
    assert len(ring.current) == 32
    assert parse_key_ring(new_key_ring_secret()).current != ring.current


def test_bytes_are_accepted() -> None:
    assert_ring(parse_key_ring(SECRET.encode()))


def test_missing_secret_is_a_clear_key_ring_error():
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()
    with mock_aws(), pytest.raises(KeyRingUnavailable, match="could not be read"):
        load_key_ring(secret_name="prtrace/nowhere")
    parameters.base.DEFAULT_PROVIDERS.clear()


def test_the_flat_form_cloudformation_generates_is_a_key_ring() -> None:
    # 64 alphanumerics, as the stack's SecretStringGenerator makes them: valid base64.
    material = "A1b2C3d4" * 8
    ring = parse_key_ring(orjson.dumps({"current": "k1", "k1": material}))
    assert ring.current_id == "k1"
    assert ring.keys["k1"] == base64.b64decode(material)
    assert len(ring.keys["k1"]) == 48
