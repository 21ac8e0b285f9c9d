"""The AWS operations each Lambda's code makes, recorded while tests run its handler (and
the export task's, while tests run its `main`).

A pytest plugin: `pytest tests/functional -p tests.infra.aws_calls --record-aws-calls=PATH`
(`make iam-usage`) records every boto3 call, presigned URL and Powertools parameter read
made while a `functions.<name>.handler.lambda_handler` (or a task's
`functions.<name>.main.main`) is on the stack, under that function's name.
Calls made by the tests themselves (fixtures, seeding, checks) are outside any handler
and are not recorded. `recording()` does the same inside one test.

A call keeps only what IAM looks at: the operation, the parameters that name a resource,
and whether an object was missing (a read of a missing object answers 404 only to a
caller that may list it). Resource names are written as the environment variable that
configured them (`$PRTRACE_BUCKET`), so the record speaks of the function's settings, not
of the names a test happened to use; S3 keys as their shapes, with the ids of the layout
in prtrace.storage_keys replaced (`tenants/{tenant}/traces/{trace}/chunks/{seq}-{sha256}.json`).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import botocore.signers
import pytest
from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from botocore.client import BaseClient
from botocore.exceptions import ClientError

Call = dict[str, Any]

# The parameters that name what a call touches (DynamoDB, S3, Secrets Manager, SSM, SFN,
# KMS, CodeArtifact).
NAME_PARAMS = (
    "TableName", "Bucket", "SecretId", "Name", "stateMachineArn", "KeyId", "domain", "domainOwner"
)  # fmt: skip
SHAPE_PARAMS = ("Key", "Prefix")
PLAIN_PARAMS = ("IndexName",)
NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})

# A Lambda's handler, and a container task's entry point (the export task's).
_ENTRY_POINTS = {
    "lambda_handler": re.compile(r"functions\.(\w+)\.handler"),
    "main": re.compile(r"functions\.(\w+)\.main"),
}
_TRACE_PREFIX = re.compile(r"^tenants/[^/]+/traces/[^/]+/")
_EXPORT_PREFIX = re.compile(r"^tenants/[^/]+/exports/[^/]+/")
# The Parquet traces and events tables (prtrace.dataset.trace_table, event_table): tenant,
# date partition, trace.
_TABLE_KEY = re.compile(
    r"^tenants/[^/]+/parquet/(traces|events)/date=\d{4}-\d{2}-\d{2}/[^/]+\.parquet$"
)
_KEY_IDS = (
    (re.compile(r"[0-9a-f]{64}"), "{sha256}"),
    (re.compile(r"(?<=chunks/)\d{6}(?=-)"), "{seq}"),
)

# Powertools caches parameters per process, and here one process runs every function: a
# secret the API fetched would reach Assemble from the cache, with no call. So each read
# is recorded as the call a function's own process makes on its first read.
_PARAMETER_READS = {
    "SecretsProvider": ("secretsmanager", "GetSecretValue", "SecretId"),
    "SSMProvider": ("ssm", "GetParameter", "Name"),
}

_sinks: list[list[Call]] = []


def running_function() -> str | None:
    """The function whose handler is on the stack (functions/<name>/handler.py), or the
    container task whose `main` is (functions/<name>/main.py), if any."""
    frame = sys._getframe(1)
    while frame is not None:
        entry = _ENTRY_POINTS.get(frame.f_code.co_name)
        if entry:
            found = entry.fullmatch(str(frame.f_globals.get("__name__")))
            if found:
                return found.group(1)
        frame = frame.f_back  # type: ignore[assignment]
    return None


def configured_as(value: str) -> str:
    """`$NAME` of the one environment variable holding this value, else the value."""
    names = [k for k, v in os.environ.items() if v == value and k.startswith("PRTRACE_")]
    return f"${names[0]}" if len(names) == 1 else value


def key_shape(key: str) -> str:
    table = _TABLE_KEY.match(key)
    if table:
        return f"tenants/{{tenant}}/parquet/{table[1]}/date={{date}}/{{trace}}.parquet"
    if _EXPORT_PREFIX.match(key):
        return _EXPORT_PREFIX.sub("tenants/{tenant}/exports/{export}/", key)
    if not _TRACE_PREFIX.match(key):
        return key
    shape = _TRACE_PREFIX.sub("tenants/{tenant}/traces/{trace}/", key)
    for ids, placeholder in _KEY_IDS:
        shape = ids.sub(placeholder, shape)
    return shape


def describe(service: str, operation: str, params: dict[str, Any], outcome: str) -> Call:
    named: dict[str, Any] = {}
    for name in NAME_PARAMS:
        if isinstance(params.get(name), str):
            named[name] = configured_as(params[name])
    for name in SHAPE_PARAMS:
        if isinstance(params.get(name), str):
            named[name] = key_shape(params[name])
    if isinstance(params.get("executionArn"), str):  # the machine's setting, any execution
        machine = params["executionArn"].rpartition(":")[0]
        machine = machine.replace(":execution:", ":stateMachine:", 1)
        named["executionArn"] = f"{configured_as(machine)}:{{execution}}"
    for name in PLAIN_PARAMS:
        if name in params:
            named[name] = params[name]
    if "TransactItems" in params:  # one IAM action per item: Put -> PutItem, ...
        named["TransactItems"] = sorted(
            {
                f"{kind}:{configured_as(item[kind]['TableName'])}"
                for item in params["TransactItems"]
                for kind in item
            }
        )
    return {
        "service": service,
        "operation": operation,
        "params": named,
        "outcome": outcome,
    }


def _record(service: str, operation: str, params: dict[str, Any], outcome: str) -> None:
    if not _sinks:
        return
    function = running_function()
    if function is None:
        return
    call = {"function": function, **describe(service, operation, params, outcome)}
    for sink in _sinks:
        sink.append(call)


def _install() -> None:
    if getattr(BaseClient, "_aws_calls_installed", False):
        return
    make_api_call = BaseClient._make_api_call
    emit_api_params = BaseClient._emit_api_params
    get_parameter = BaseProvider.get

    def recorded_call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = self.meta.service_model.endpoint_prefix
        try:
            answer = make_api_call(self, operation, params)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            _record(service, operation, params, "not-found" if code in NOT_FOUND else code)
            raise
        _record(service, operation, params, "ok")
        return answer

    def recorded_presign(
        self: BaseClient, api_params: dict[str, Any], operation_model: Any, context: Any
    ) -> Any:
        if context.get("is_presign_request"):
            service = self.meta.service_model.endpoint_prefix
            _record(service, operation_model.name, api_params, "presigned")
        return emit_api_params(self, api_params, operation_model, context)

    def recorded_parameter(self: BaseProvider, name: str, *args: Any, **kwargs: Any) -> Any:
        read = _PARAMETER_READS.get(type(self).__name__)
        if read:
            service, operation, param = read
            _record(service, operation, {param: name}, "ok")
        return get_parameter(self, name, *args, **kwargs)

    # A presigned POST (its policy allows PutObject under a key prefix) is not signed
    # through _emit_api_params; S3 clients created from here on take this function.
    presign_post = botocore.signers.generate_presigned_post

    def recorded_presign_post(self: BaseClient, Bucket: str, Key: str, **kwargs: Any) -> Any:  # noqa: N803
        # The policy admits keys under a prefix (`<prefix>${filename}`); prtrace's are
        # content digests, recorded as such.
        key = Key.replace("${filename}", "0" * 64)
        _record("s3", "PutObject", {"Bucket": Bucket, "Key": key}, "presigned")
        sinks = _sinks[:]
        _sinks.clear()  # it serializes a CreateBucket request for the URL: not a call
        try:
            return presign_post(self, Bucket, Key, **kwargs)
        finally:
            _sinks.extend(sinks)

    botocore.signers.generate_presigned_post = recorded_presign_post  # type: ignore[assignment]
    BaseClient._make_api_call = recorded_call  # type: ignore[method-assign]
    BaseClient._emit_api_params = recorded_presign  # type: ignore[method-assign]
    BaseProvider.get = recorded_parameter  # type: ignore[method-assign]
    BaseClient._aws_calls_installed = True  # type: ignore[attr-defined]


@contextmanager
def recording() -> Iterator[list[Call]]:
    """The calls handlers make inside the block."""
    _install()
    calls: list[Call] = []
    _sinks.append(calls)
    try:
        yield calls
    finally:
        _sinks.remove(calls)


def unique(calls: list[Call]) -> list[Call]:
    by_text = {json.dumps(call, sort_keys=True): call for call in calls}
    return [by_text[text] for text in sorted(by_text)]


def usage_of(calls: list[Call]) -> dict[str, Any]:
    """The calls, once each, by function: the form of tests/infra/iam_usage.json."""
    functions: dict[str, list[Call]] = {}
    for call in unique(calls):
        function, rest = call["function"], {k: v for k, v in call.items() if k != "function"}
        functions.setdefault(function, []).append(rest)
    return {
        "about": "AWS calls each function's code made in tests/functional; "
        "regenerate with `make iam-usage`",
        "functions": dict(sorted(functions.items())),
    }


def write_usage(path: Path, calls: list[Call]) -> None:
    path.write_text(json.dumps(usage_of(calls), indent=1, sort_keys=True) + "\n")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-aws-calls",
        metavar="PATH",
        help="write the AWS calls each Lambda handler made to PATH (JSON)",
    )


_session_calls: list[Call] = []


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--record-aws-calls"):
        _install()
        _sinks.append(_session_calls)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Any:
    """A test marked `aws_calls_unrecorded` runs a handler outside the deployed configuration
    (a resource the stack does not have): what it calls is not the function's usage."""
    unrecorded = item.get_closest_marker("aws_calls_unrecorded") is not None
    if unrecorded and _session_calls in _sinks:
        _sinks.remove(_session_calls)
        try:
            return (yield)
        finally:
            _sinks.append(_session_calls)
    return (yield)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = session.config.getoption("--record-aws-calls")
    if path and exitstatus == 0:
        write_usage(Path(path), _session_calls)
