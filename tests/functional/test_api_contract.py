"""Schemathesis against the in-process API: every operation fuzzed with valid and invalid
data, and stateful sequences along the links it infers (create → chunks → finalize → get),
with all of its checks: no 5xx, status codes, content types, headers and bodies as the
committed OpenAPI document says, invalid data refused. Bounded to stay a fast test.

The API is the real handler behind the real authorizer, with DynamoDB and S3 in moto,
reached through the same in-process gateway as the other functional tests, here wrapped
as a WSGI app so schemathesis can call it without a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.config._checks import (
    NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
    POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
)

from functions.api.openapi import COMMITTED_PATH
from tests.functional.conftest import make_token
from tests.in_process_gateway import InProcessGateway

DOCUMENT: dict[str, Any] = orjson.loads(COMMITTED_PATH.read_bytes())
DOCUMENT["servers"] = [{"url": "https://api.local"}]

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class GatewayApp:
    """WSGI in front of the in-process gateway (set per test: each has its own moto)."""

    gateway: InProcessGateway | None = None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        assert self.gateway is not None, "the contract tests set the gateway first"
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else None
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        # The path as sent (still percent-encoded), as API Gateway's rawPath is.
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ["PATH_INFO"]
        path = raw.split("?", 1)[0]
        query = environ.get("QUERY_STRING")
        url = f"https://api.local{path}" + (f"?{query}" if query else "")
        response = self.gateway.request(environ["REQUEST_METHOD"], url, headers, body)
        start_response(f"{response.status} -", list(response.headers.items()))
        return [response.body]


APP = GatewayApp()
# 413 is a refusal too: bodies have byte limits (64 KiB, chunks 4 MiB) that the field
# schemas cannot say, and generated data can exceed them whether it is valid or not.
CONFIG = schemathesis.Config.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
            },
            "positive_data_acceptance": {
                "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, "413"]
            },
        }
    }
)
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)
schema.app = APP


# Rules the server enforces that JSON Schema cannot say (docs/schema.md marks them "(server)"):
# generated valid bodies are made to follow them, so a 422 for one of these is not taken
# for a valid request refused. Invalid bodies are left as generated.
VALID_TS = "2026-01-02T03:04:05.678Z"


def _follow_server_rules(value: Any) -> Any:
    if isinstance(value, list):
        return [_follow_server_rules(item) for item in value]
    if not isinstance(value, dict):
        return value
    value = {key: _follow_server_rules(item) for key, item in value.items()}
    if isinstance(value.get("sha256"), str) and "uri" in value:  # a BlobRef names its digest
        value["uri"] = f"artifact://sha256/{value['sha256']}"
    if isinstance(value.get("ts"), str):  # a real calendar date and time
        value["ts"] = VALID_TS
    if "diff" in value and "diff_ref" in value and value["diff"] is not None:
        value["diff_ref"] = None  # inline or by reference, not both
    if "change" in value:  # old_path for a rename only
        rename = value["change"] == "rename"
        value["old_path"] = (value.get("old_path") or "old") if rename else None
    return value


@schema.hook
def map_case(context: Any, case: Any) -> Any:
    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return case
    case.body = _follow_server_rules(case.body)
    first = (case.path_parameters or {}).get("chunk_seq")
    if isinstance(case.body, dict) and isinstance(first, int):
        # a chunk's events: contiguous seqs from at least its chunk seq, ids unique in it
        for index, event in enumerate(case.body.get("events") or []):
            if isinstance(event, dict):
                event["seq"] = first + index
                event["event_id"] = f"e{index}"
    return case


@schema.auth(refresh_interval=None)
class BearerToken:
    """The token of the running test (each test has its own moto, so its own token)."""

    token: str | None = None

    def get(self, case: Any, context: Any) -> str:
        # Asked once at collection too, before any test issued a token.
        return BearerToken.token or "prt_none_issued"

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def api(gateway: InProcessGateway, export_machine: str) -> Iterator[None]:
    APP.gateway = gateway
    BearerToken.token = make_token("acme", ["ingest", "read"])
    yield
    APP.gateway, BearerToken.token = None, None


@schema.parametrize()
@FUZZ
def test_every_operation_conforms_to_the_document(case: Any, api: None) -> None:
    case.call_and_validate()


@pytest.mark.slow
def test_sequences_of_calls_conform_to_the_document(api: None) -> None:
    schema.as_state_machine().run(
        settings=settings(
            max_examples=40,
            stateful_step_count=6,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
    )
