"""`prtrace export` of the example trace from the local cloud, in all three formats: the
example is driven to complete through the API (offline judge), then exported by the CLI
through the public API. The SWE-bench instance's patch applies to the base snapshot
(examples/repo-buggy) with `git apply`, the events JSONL and Parquet read back, and a second
export of the same traces is byte-identical."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pandas
import pyarrow.parquet as pq
import pytest
from datasets import load_dataset
from typer.testing import CliRunner

from examples.snapshots import REPO, SKIPPED, TRACE_DIR, fixed_workspace
from local_cloud.cloud import LocalCloud, LocalCloudInfo
from prtrace.judge.rubric import DIMENSION_IDS
from prtrace_cli.main import app
from tests.e2e.pipeline_support import TraceClient
from tests.local_cloud import make_token, new_tenant

FAIL_TO_PASS = "tests/test_ranges.py::test_merge_keeps_last_interval"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloudInfo]:
    context = {"stage": "local", "destroy_data_on_delete": "true", "judge_mode": "offline"}
    state_dir = tmp_path_factory.mktemp("export-cloud")
    with LocalCloud(aws_port=0, api_port=0, state_dir=state_dir, context=context) as info:
        yield info


@pytest.fixture(scope="module")
def exported(cloud: LocalCloudInfo) -> tuple[TraceClient, str, str]:
    """A tenant with the example trace complete: (client, token, trace id)."""
    tenant = new_tenant()
    token = make_token(cloud, tenant, ["ingest", "read"])
    client = TraceClient(cloud.endpoint, token, tenant)
    trace_id = client.upload(TRACE_DIR)
    assert client.finalize(trace_id, TRACE_DIR).status_code == 202
    view, _ = client.wait(trace_id)
    assert view["status"] == "complete", view
    return client, token, trace_id


def run_export(
    cloud: LocalCloudInfo, token: str, out: Path, *args: str, usable_only: bool = False
) -> dict[str, Any]:
    """`prtrace export`; taking unusable instances too unless `usable_only` (the example
    trace does not say whether its tree was clean at record start: `base_unrecorded`)."""
    command = ["export", str(out), "--endpoint", cloud.endpoint, "--token", token, "--json"]
    command += [*args, *([] if usable_only else ["--include-unusable"])]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not SKIPPED & set(p.relative_to(root).parts)
    }


def test_the_example_trace_exports_in_all_three_formats(cloud, exported, tmp_path):
    _, token, trace_id = exported
    out = tmp_path / "export"
    manifest = run_export(cloud, token, out)

    assert manifest["trace_ids"] == [trace_id]
    assert manifest["event_count"] == 11
    assert manifest["skipped"] == []
    assert sorted(manifest["files"]) == [
        "README.md", "artifacts.jsonl", "events.jsonl", "events.parquet", "instances.jsonl",
        "traces.parquet", "trajectories.jsonl",
    ]  # fmt: skip
    for name, entry in manifest["files"].items():
        data = (out / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["bytes"] == len(data)
    assert json.loads((out / "manifest.json").read_bytes()) == manifest

    # SWE-bench instances: plain json, and the patch applies to the base snapshot.
    lines = (out / "instances.jsonl").read_text().splitlines()
    assert len(lines) == 1
    instance = json.loads(lines[0])
    assert instance["instance_id"] == f"acme__ranges-{trace_id}"
    assert instance["repo"] == "acme/ranges"
    assert instance["base_commit"] == "9b2e4f6a8c0d1e3f5a7b9c1d3e5f7a9b1c3d5e7f"
    assert instance["FAIL_TO_PASS"] == [FAIL_TO_PASS]
    assert FAIL_TO_PASS not in instance["PASS_TO_PASS"]
    assert instance["PASS_TO_PASS"]
    assert instance["problem_statement"].startswith("merge() drops the last interval")
    assert instance["test_patch"] == ""  # the example's fix changes no test file
    assert instance["patch_source"] == "snapshots"
    assert set(instance["judge_scores"]) == set(DIMENSION_IDS)
    assert len(instance["chain_head"]) == 64
    # The recorded edit reproduces the final snapshot (the trace-to-state check).
    assert (instance["state_check"], instance["state_first_mismatch"]) == ("match", None)
    # Recorded without saying whether the tree was clean: its base may not be base_commit.
    assert (instance["usable"], instance["unusable_reasons"]) == (False, ["base_unrecorded"])
    assert instance["eval_script"].startswith("#!/bin/bash\n")
    assert instance["log_parser"] == "parse_log_pytest"

    # Trajectories: the observations the events only reference, with the artifacts.
    (trajectory,) = [json.loads(line) for line in (out / "trajectories.jsonl").open()]
    assert len(trajectory["steps"]) == 11
    assert trajectory["instance_id"] == instance["instance_id"]
    stored = {json.loads(line)["sha256"] for line in (out / "artifacts.jsonl").open()}
    cited = {a["sha256"] for a in json.loads(trajectory["artifacts"]) if a["exported"]}
    assert cited
    assert cited == stored
    assert not any(json.loads(step["observation_missing"]) for step in trajectory["steps"])
    workspace = tmp_path / "workspace"
    shutil.copytree(REPO, workspace, ignore=shutil.ignore_patterns(*SKIPPED))
    subprocess.run(
        ["git", "apply", "--whitespace=nowarn", "-"],
        cwd=workspace, input=instance["patch"].encode(), check=True,
    )  # fmt: skip
    assert tree(workspace) == tree(fixed_workspace(tmp_path / "fixed"))

    # As SWE-bench's users load instances: Hugging Face `datasets` (its JSON builder, from
    # the local file, offline), and pandas.
    loaded = load_dataset(
        "json",
        data_files=str(out / "instances.jsonl"),
        split="train",
        cache_dir=str(tmp_path / "hf-cache"),
    )
    assert loaded.num_rows == 1
    assert loaded[0]["instance_id"] == instance["instance_id"]
    assert loaded[0]["FAIL_TO_PASS"] == [FAIL_TO_PASS]
    assert loaded[0]["patch"] == instance["patch"]
    frame = pandas.read_json(out / "instances.jsonl", lines=True)
    assert list(frame["trace_id"]) == [trace_id]

    # Events JSONL: every event, in seq order, with its trace id.
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert [e["seq"] for e in events] == list(range(11))
    assert {e["trace_id"] for e in events} == {trace_id}

    # Parquet, read back with pyarrow.
    table = pq.read_table(out / "events.parquet")
    assert table.num_rows == 11
    assert table.column("seq").to_pylist() == list(range(11))
    assert str(table.schema.field("time").type) == "timestamp[us, tz=UTC]"
    traces = pq.read_table(out / "traces.parquet").to_pylist()
    assert len(traces) == 1
    assert traces[0]["trace_id"] == trace_id
    assert traces[0]["qa_verdict"] == "resolved"
    assert traces[0]["fail_to_pass"] == [FAIL_TO_PASS]
    assert traces[0]["patch_files"] == ["ranges/merge.py"]
    assert traces[0]["chain_head"] == instance["chain_head"]
    assert (traces[0]["state_check"], traces[0]["state_unexplained_bytes"]) == ("match", 0)

    # And with DuckDB, as `prtrace query` reads Parquet.
    query = "SELECT count(*), max(seq) FROM read_parquet(?)"
    counted = duckdb.execute(query, [str(out / "events.parquet")]).fetchall()
    assert counted == [(11, 10)]

    # The same traces again: the same bytes, manifest included.
    again = tmp_path / "again"
    assert run_export(cloud, token, again) == manifest
    for name in [*manifest["files"], "manifest.json"]:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_the_default_export_leaves_an_unusable_instance_out(cloud, exported, tmp_path):
    _, token, trace_id = exported
    manifest = run_export(cloud, token, tmp_path / "usable", usable_only=True)
    assert manifest["trace_ids"] == []
    assert manifest["unusable_left_out"] == [{"trace_id": trace_id, "reasons": ["base_unrecorded"]}]


def test_filters_leave_out_traces_that_do_not_match(cloud, exported, tmp_path):
    _, token, trace_id = exported
    kept = run_export(cloud, token, tmp_path / "kept", "--verdict", "resolved",
                      "--repo", "acme/ranges", "--since", "2000-01-01T00:00:00Z")  # fmt: skip
    assert kept["trace_ids"] == [trace_id]
    none = run_export(cloud, token, tmp_path / "none", "--verdict", "unresolved",
                      "--format", "swebench")  # fmt: skip
    assert none["trace_ids"] == []
    assert (tmp_path / "none" / "instances.jsonl").read_bytes() == b""
    assert sorted(none["files"]) == ["README.md", "instances.jsonl"]


def test_prtrace_query_runs_duckdb_over_the_parquet_record_wrote(
    cloud, exported, tmp_path, monkeypatch
):
    """Record wrote the complete trace's row under its tenant's partitioned prefix in the
    local cloud's bucket; `prtrace query` syncs those files and runs SQL with DuckDB."""
    client, _, trace_id = exported
    bucket = cloud.stack.outputs["DataBucketName"]
    monkeypatch.setenv("AWS_ENDPOINT_URL", cloud.aws_endpoint)  # as a user of it sets it
    sql = (
        "SELECT trace_id, tenant, qa_verdict, judge_overall, fail_to_pass, date "
        "FROM traces WHERE qa_verdict = 'resolved' ORDER BY trace_id"
    )
    args = ["query", sql, "--tenant", client.tenant, "--bucket", bucket,
            "--cache", str(tmp_path / "cache"), "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    (row,) = [json.loads(line) for line in result.stdout.strip().splitlines()]
    view = client.trace(trace_id)
    assert row["trace_id"] == trace_id
    assert row["tenant"] == client.tenant
    assert row["qa_verdict"] == "resolved"
    assert row["judge_overall"] == view["outcome"]["judge"]["overall"]
    assert json.loads(row["fail_to_pass"]) == [FAIL_TO_PASS]
    assert row["date"] == view["outcome"]["recorded_at"][:10]
    # A second run downloads nothing (files are written once), and another tenant sees none.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0
    assert "(0 downloaded)" in again.stderr
    other = CliRunner().invoke(
        app, ["query", "SELECT count(*) AS n FROM traces", "--tenant", "nobody-here",
              "--bucket", bucket, "--cache", str(tmp_path / "cache2"), "--json"],
    )  # fmt: skip
    assert other.exit_code == 0, other.output
    assert json.loads(other.stdout.strip().splitlines()[-1]) == {"n": 0}


def test_the_export_job_writes_the_bytes_prtrace_export_writes(cloud, exported, tmp_path):
    """POST /v1/exports on the local cloud: the export state machine runs the export task
    (its container's command, here a host process), which reads the stores directly; the
    CLI downloads its files, checks them against the manifest and the manifest's signature
    against GET /v1/keys. Same traces, same filter: the same bytes as the client's export."""
    _, token, trace_id = exported
    chosen = ("--repo", "acme/ranges", "--since", "2000-01-01T00:00:00Z")
    local = run_export(cloud, token, tmp_path / "local", *chosen)
    server = run_export(cloud, token, tmp_path / "server", *chosen, "--on-server")
    assert server == local
    assert server["trace_ids"] == [trace_id]
    served = tree(tmp_path / "server")
    assert served.pop("manifest.dsse.json")  # the job signs its manifest
    assert served == tree(tmp_path / "local")

    # Later, offline: `prtrace verify` checks the export with the published keys, and
    # names a file changed since.
    keys = tmp_path / "keys.json"
    keys.write_bytes(httpx.get(f"{cloud.endpoint}/v1/keys", timeout=30).content)
    verify = ["verify", str(tmp_path / "server"), "--key", str(keys)]
    verified = CliRunner().invoke(app, verify)
    assert verified.exit_code == 0, verified.output
    changed = tmp_path / "server" / "events.jsonl"
    changed.write_bytes(changed.read_bytes().replace(b'"seq":3', b'"seq":4', 1))
    tampered = CliRunner().invoke(app, verify)
    assert tampered.exit_code == 1, tampered.output
    assert "events.jsonl: SHA-256" in tampered.output


def test_a_client_export_verifies_against_the_signed_traces(cloud, exported, tmp_path):
    """`prtrace export` writes no signature; `prtrace verify --against-service` makes the
    export again from the traces' signed manifests and compares. A row changed afterwards,
    even with the manifest's digests updated to match, is found."""
    _, token, trace_id = exported
    out = tmp_path / "export"
    run_export(cloud, token, out, "--format", "swebench", "--format", "events")
    verify = ["verify", str(out), "--against-service", "--endpoint", cloud.endpoint,
              "--token", token]  # fmt: skip
    verified = CliRunner().invoke(app, verify)
    assert verified.exit_code == 0, verified.output
    assert f"ok    {trace_id}: document is the signed one" in verified.stdout
    assert "ok    instances.jsonl: the bytes the signed traces give" in verified.stdout

    instances = out / "instances.jsonl"
    forged = instances.read_bytes().replace(b'"qa_verdict":"resolved"', b'"qa_verdict":"x"')
    assert forged != instances.read_bytes()
    instances.write_bytes(forged)
    manifest = json.loads((out / "manifest.json").read_bytes())
    manifest["files"]["instances.jsonl"] |= {
        "sha256": hashlib.sha256(forged).hexdigest(), "bytes": len(forged)
    }  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest))
    tampered = CliRunner().invoke(app, verify)
    assert tampered.exit_code == 1, tampered.output
    assert "FAIL  instances.jsonl: differs from the export the signed traces give" in (
        tampered.stdout
    )
    assert "ok    events.jsonl: the bytes the signed traces give" in tampered.stdout
