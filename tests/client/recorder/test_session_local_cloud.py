"""Recording real sessions with the `prtrace` CLI in a git repository (a copy of the buggy
example) against the local cloud, then reading back what the server stored.

The local cloud is started once for this module.
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from local_cloud.cloud import LocalCloudInfo
from prtrace_client.client import PIPELINE_STATUSES
from prtrace_client.redaction import load_redaction_key, redaction_key_path
from tests.client.recorder.conftest import run_git
from tests.local_cloud import Api, aws, make_token, new_tenant

BUG = "if current is not None and not merged:"
FIX = "if current is not None:"
FAILING = "tests/test_ranges.py::test_merge_keeps_last_interval"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]

# Realistic credentials (valid formats, not real keys).
AWS_KEY_ID = "AKIAQ3EGRX7PVN2LKD5T"
AWS_SECRET = "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"
GITHUB_PAT = "ghp_" + "R8mV2kQz7LwX4pN9sT1yB6cJ3hF5dG0aE2uK"
SLACK = "xoxb-" + "2948175623-4829173645182-q8Zr2mKp5VnX7wLt3JsY9Hd"
DB_PASSWORD = "Tr0ub4dor&3-horse"
BEARER = "4f9a1c7e2b8d0a3f6e5c9b1d7a2e8f0c"
PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
SECRETS = [AWS_KEY_ID, AWS_SECRET, GITHUB_PAT, SLACK, DB_PASSWORD, BEARER, PEM_BODY]


@pytest.fixture
def api(cloud: LocalCloudInfo) -> Iterator[Api]:
    tenant = new_tenant()
    client = Api(cloud.endpoint, make_token(cloud, tenant, ["ingest", "read"]), tenant)
    yield client
    client.close()


@pytest.fixture
def cli_env(
    cloud: LocalCloudInfo, api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prtrace` processes (and the git hook they install) find the API and the outbox
    through the environment only."""
    assert api.token is not None
    monkeypatch.setenv("PRTRACE_ENDPOINT", cloud.endpoint)
    monkeypatch.setenv("PRTRACE_TOKEN", api.token)
    monkeypatch.setenv("PRTRACE_OUTBOX", str(tmp_path / "outbox.db"))
    monkeypatch.setenv("PRTRACE_CONFIG", str(tmp_path / "no-config.toml"))


def prtrace(repo: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "prtrace_cli.main", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == expect, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def stored_objects(cloud: LocalCloudInfo, api: Api, trace_id: str) -> dict[str, bytes]:
    s3 = aws(cloud, "s3")
    bucket = cloud.stack.outputs["DataBucketName"]
    prefix = f"tenants/{api.tenant}/traces/{trace_id}/"
    found: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            found[key.removeprefix(prefix)] = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return found


def stored_events(objects: dict[str, bytes]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for name in sorted(k for k in objects if k.startswith("chunks/")):
        events += orjson.loads(objects[name])["events"]
    return events


def artifact(objects: dict[str, bytes], ref: dict[str, Any]) -> bytes:
    data = objects[f"artifacts/sha256/{ref['sha256']}"]
    assert hashlib.sha256(data).hexdigest() == ref["sha256"]
    return data


def archive_file(archive: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def stop(repo: Path) -> dict[str, Any]:
    answer = orjson.loads(prtrace(repo, "record", "stop", "--json").stdout)
    assert answer["delivered"] is True, answer
    assert answer["trace_id"].startswith("tr_")
    return dict(answer)


@pytest.mark.usefixtures("cli_env")
def test_a_recorded_fix_reaches_the_server_with_its_events_in_order(
    buggy_repo: Path, cloud: LocalCloudInfo, api: Api
) -> None:
    prtrace(buggy_repo, "record", "start", "--title", "merge() drops the last interval")
    failing = prtrace(buggy_repo, "run", "--", *PYTEST, expect=1)
    assert "1 failed, 5 passed" in failing.stdout  # the output is shown live
    merge = buggy_repo / "ranges" / "merge.py"
    merge.write_text(merge.read_text().replace(BUG, FIX))
    prtrace(buggy_repo, "note", "the open interval is only kept when nothing was merged",
            "--kind", "decision")  # fmt: skip
    prtrace(buggy_repo, "run", "--", *PYTEST)
    run_git(buggy_repo, "commit", "-q", "-am", "Keep the last interval when merging")
    head = run_git(buggy_repo, "rev-parse", "HEAD").strip()

    answer = stop(buggy_repo)

    trace_id = answer["trace_id"]
    view = api.trace(trace_id)
    assert view["status"] in PIPELINE_STATUSES[1:]  # finalizing, or further down the pipeline
    assert view["events_received"] == 5
    assert view["finalize"]["redactions"] == 0
    assert view["metadata"]["task"]["title"] == "merge() drops the last interval"
    assert view["metadata"]["repository"]["base_commit"] != head

    objects = stored_objects(cloud, api, trace_id)
    events = stored_events(objects)
    assert [e["type"] for e in events] == [
        "test_run", "file_edit", "rationale_note", "test_run", "commit",
    ]  # fmt: skip
    assert [e["seq"] for e in events] == [0, 1, 2, 3, 4]
    first_run, edit, note, second_run, commit = (e["payload"] for e in events)
    assert (first_run["failed"], first_run["passed"], first_run["failing_tests"]) == (
        1, 5, [FAILING],
    )  # fmt: skip
    assert first_run["command"] == PYTEST
    assert (edit["path"], edit["change"], edit["lines_added"], edit["lines_removed"]) == (
        "ranges/merge.py", "modify", 1, 1,
    )  # fmt: skip
    assert f"-    {BUG}\n+    {FIX}\n" in edit["diff"]
    assert note == {
        "kind": "decision",
        "text": "the open interval is only kept when nothing was merged",
    }
    assert (second_run["failed"], second_run["passed"], second_run["failing_tests"]) == (
        6 - 6,
        6,
        [],
    )
    assert b"test_merge_keeps_last_interval" in artifact(objects, second_run["report_ref"])
    assert commit["sha"] == head
    assert commit["files"] == ["ranges/merge.py"]
    assert commit["message"] == "Keep the last interval when merging"
    assert f"+    {FIX}" in artifact(objects, commit["diff_ref"]).decode()

    snapshots = view["finalize"]["snapshots"]
    base = artifact(objects, snapshots["base"])
    final = artifact(objects, snapshots["final"])
    assert BUG in archive_file(base, "ranges/merge.py").decode()
    assert FIX in archive_file(final, "ranges/merge.py").decode()
    assert BUG not in archive_file(final, "ranges/merge.py").decode()

    # The session is over: no hook left behind, and another start is possible.
    assert not (buggy_repo / ".git" / "hooks" / "post-commit").exists()
    assert run_git(buggy_repo, "status", "--porcelain") == ""

    # The recorded trace goes through the whole pipeline: its snapshots are tested in the
    # sandbox (the fix resolves the failing test) and the session is judged.
    view = api.wait(trace_id)
    assert view["status"] == "complete", view
    assert view["outcome"]["qa"]["verdict"] == "resolved"
    assert view["outcome"]["qa"]["fail_to_pass"]["ids"] == [FAILING]
    assert len(view["outcome"]["judge"]["scores"]) == 6


@pytest.mark.usefixtures("cli_env")
def test_secrets_in_outputs_diffs_notes_and_commits_never_reach_the_server(
    buggy_repo: Path, cloud: LocalCloudInfo, api: Api
) -> None:
    prtrace(buggy_repo, "record", "start", "--title", "rotate credentials",
            "--description", f"the CI token {GITHUB_PAT} leaked in logs")  # fmt: skip
    # Command output on stdout and stderr.
    leak = (
        f"import sys; print('AWS_ACCESS_KEY_ID={AWS_KEY_ID}'); "
        f"print('aws_secret_access_key = {AWS_SECRET}'); "
        f"print('Authorization: Bearer {BEARER}', file=sys.stderr); "
        f"print({PEM!r})"
    )
    printed = prtrace(buggy_repo, "run", "--", sys.executable, "-c", leak)
    assert AWS_SECRET in printed.stdout  # the terminal shows everything, unredacted
    # A diff, then a commit holding the secret, then its removal.
    settings = buggy_repo / "ranges" / "settings.py"
    settings.write_text(f'SLACK_TOKEN = "{SLACK}"\nDB_PASSWORD = "{DB_PASSWORD}"\n')
    (buggy_repo / ".env").write_text(f"GITHUB_TOKEN={GITHUB_PAT}\n")  # excluded entirely
    prtrace(buggy_repo, "note", f"the slack token {SLACK} must be rotated")
    run_git(buggy_repo, "add", "ranges/settings.py")
    run_git(buggy_repo, "commit", "-q", "-m", f"Add settings (password: {DB_PASSWORD})")
    # A failing test whose assertion message prints a secret (pytest output and JUnit).
    (buggy_repo / "tests" / "test_token.py").write_text(
        f'def test_token():\n    assert "{GITHUB_PAT}" == "rotated"\n'
    )
    prtrace(buggy_repo, "run", "--", *PYTEST, expect=1)
    (buggy_repo / "tests" / "test_token.py").unlink()
    run_git(buggy_repo, "rm", "-q", "ranges/settings.py")
    run_git(buggy_repo, "commit", "-q", "-m", "Drop settings")

    answer = stop(buggy_repo)

    view = api.trace(answer["trace_id"])
    objects = stored_objects(cloud, api, answer["trace_id"])
    events = stored_events(objects)
    assert [e["type"] for e in events] == [
        "cmd_run", "file_edit", "rationale_note", "commit", "file_edit", "test_run",
        "file_edit", "file_edit", "commit",
    ]  # fmt: skip
    readable = [orjson.dumps(view)]
    for name, data in objects.items():
        readable.append(data)
        if name.startswith("artifacts/") and data[:2] == b"\x1f\x8b":
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                for member in tar.getmembers():
                    handle = tar.extractfile(member)
                    if handle is not None:
                        readable.append(handle.read())
            readable.append(gzip.decompress(data))
    stored = b"\n".join(readable)
    for secret in SECRETS:
        assert secret.encode() not in stored, f"{secret[:8]}… reached the server"
    # Each secret left a marker naming its keyed hash instead, under the installation's
    # key (beside the config file), never the secret's bare SHA-256.
    key = load_redaction_key(redaction_key_path())
    for kind, secret in [
        ("aws-access-key-id", AWS_KEY_ID),
        ("aws-secret-key", AWS_SECRET),
        ("bearer-token", BEARER),
        ("private-key", PEM),
        ("slack-token", SLACK),
        ("assigned-secret", DB_PASSWORD),
        ("github-token", GITHUB_PAT),
    ]:
        digest = hmac.new(key, secret.encode(), hashlib.sha256).hexdigest()
        assert f"[REDACTED:{kind}:hmac-sha256={digest}]".encode() in stored, kind
    assert ".env" not in {e["payload"].get("path") for e in events}
    assert answer["redactions"] == view["finalize"]["redactions"]
    assert view["finalize"]["redactions"] >= 10
    assert view["metadata"]["task"]["description"].startswith("the CI token [REDACTED:github")
    assert os.environ["PRTRACE_OUTBOX"]  # the outbox stays local; only redacted data left it


@pytest.mark.usefixtures("cli_env")
def test_the_recorder_delivers_chunks_while_the_session_runs(
    buggy_repo: Path, cloud: LocalCloudInfo, api: Api
) -> None:
    fast = [sys.executable, "-m", "prtrace_cli.fast"]
    prtrace(buggy_repo, "record", "start", "--title", "live", "--deliver-every", "1")
    for n in range(3):
        subprocess.run([*fast, "run", "--", "echo", str(n)], cwd=buggy_repo, check=True)

    # Visible through the API before `record stop`: the trace and its first chunks.
    deadline = time.monotonic() + 60
    while True:
        status = orjson.loads(prtrace(buggy_repo, "record", "status", "--json").stdout)
        # The API stores a chunk before the recorder reads its receipt: wait for both.
        delivered = status["trace_id"] and status["delivered"] == 3
        if delivered and api.trace(status["trace_id"])["events_received"] == 3:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.25)
    assert (status["journaled"], status["delivered"], status["pending"]) == (3, 3, 0)
    assert status["recorder"]["live"] is True
    assert status["last_error"] is None

    subprocess.run([*fast, "run", "--", "echo", "3"], cwd=buggy_repo, check=True)
    answer = stop(buggy_repo)
    assert answer["trace_id"] == status["trace_id"]
    events = stored_events(stored_objects(cloud, api, answer["trace_id"]))
    assert [e["seq"] for e in events] == [0, 1, 2, 3]  # each once, in order
    assert [e["payload"]["argv"] for e in events] == [["echo", str(n)] for n in range(4)]


CRASH_COMMANDS = 5_000
KILL_AT = (1_500, 3_500)  # the recorder is SIGKILLed before these commands
CUT_AT, RESTORE_AT = 2_200, 2_900  # the network is down for these commands
THROUGH_WRAPPER_EVERY = 500  # and every command a dead recorder could not take


def test_a_long_session_survives_killed_recorders_and_a_network_cut(
    buggy_repo: Path,
    cloud: LocalCloudInfo,
    api: Api,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """5,000 recorded commands delivered while they run, the recorder SIGKILLed twice and
    the API unreachable for a while: every event stored exactly once, in order, and the
    trace completes. Most commands are driven through the fast client's wire from this
    process (5,000 interpreters would take minutes); every 500th, and every one after a
    kill until a new recorder serves, goes through the real `prtrace run` wrapper."""
    from prtrace_client.recorder import protocol
    from tests.client.integration.proxy import FaultProxy, Rule
    from tests.client.recorder.test_recorder_process import _alive, recorder_pid

    proxy = FaultProxy(cloud.endpoint)
    proxy.start()
    try:
        token = api.http.headers["authorization"].removeprefix("Bearer ")
        monkeypatch.setenv("PRTRACE_ENDPOINT", proxy.url)
        monkeypatch.setenv("PRTRACE_TOKEN", token)
        monkeypatch.setenv("PRTRACE_OUTBOX", str(tmp_path / "outbox.db"))
        monkeypatch.setenv("PRTRACE_CONFIG", str(tmp_path / "no-config.toml"))
        prtrace(buggy_repo, "record", "start", "--title", "crash", "--deliver-every", "1")
        directory = str(buggy_repo / ".git" / "prtrace")
        wrapper = [sys.executable, "-m", "prtrace_cli.fast", "run", "--"]
        through_wrapper = kills = 0
        cut: Rule | None = None
        cut_at = 0.0
        trace_id = None
        for n in range(CRASH_COMMANDS):
            if n in KILL_AT:
                pid = recorder_pid(buggy_repo)
                os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                while _alive(pid):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                kills += 1
            if n == CUT_AT:
                status = orjson.loads(prtrace(buggy_repo, "record", "status", "--json").stdout)
                trace_id = status["trace_id"]
                assert api.trace(trace_id)["events_received"] > 0  # delivered while running
                cut = proxy.add(Rule("*", ".*", "refuse"))
                cut_at = time.monotonic()
            if n == RESTORE_AT:
                assert cut is not None
                time.sleep(max(0.0, cut_at + 3.0 - time.monotonic()))  # a few delivery ticks
                cut.times = 0
            argv = ["true", str(n)]
            if n % THROUGH_WRAPPER_EVERY == 0:
                subprocess.run([*wrapper, *argv], cwd=buggy_repo, check=True, timeout=120)
                through_wrapper += 1
                continue
            try:
                begun = protocol.request(
                    directory, {"op": "begin", "argv": argv, "cwd": str(buggy_repo)}
                )
            except protocol.RecorderUnavailable:  # killed: the wrapper records it, revives one
                done = subprocess.run(
                    [*wrapper, *argv], cwd=buggy_repo, timeout=120, capture_output=True
                )
                assert done.returncode == 0, done.stderr
                through_wrapper += 1
                continue
            header = {"op": "end", "run": begun["run"], "exit_code": n % 3, "duration_ms": 1}
            protocol.request(directory, header | {"out": 0, "err": 0})
        assert kills == 2
        assert any(entry.action == "refuse" for entry in proxy.log)  # the cut was felt

        # Delivered live: the API has every event before `record stop`.
        deadline = time.monotonic() + 60
        while api.trace(trace_id)["events_received"] != CRASH_COMMANDS:
            assert time.monotonic() < deadline, api.trace(trace_id)["events_received"]
            time.sleep(0.25)
        answer = stop(buggy_repo)
    finally:
        proxy.stop()
    assert answer["trace_id"] == trace_id
    events = stored_events(stored_objects(cloud, api, trace_id))
    assert [e["seq"] for e in events] == list(range(CRASH_COMMANDS))  # each once, in order
    assert [e["payload"]["argv"] for e in events] == [
        ["true", str(n)] for n in range(CRASH_COMMANDS)
    ]
    assert through_wrapper >= CRASH_COMMANDS // THROUGH_WRAPPER_EVERY + 2  # + after kills
    view = api.wait(trace_id)
    assert view["status"] == "complete", view
