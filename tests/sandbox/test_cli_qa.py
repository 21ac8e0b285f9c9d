"""`prtrace qa BASE FINAL`: the verdict table, --json, exit codes, and a clear error for an
unavailable backend (never a silent fallback)."""

from __future__ import annotations

import json
import re
import shutil
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prtrace.adapters.sandbox import bwrap as bwrap_module
from prtrace.adapters.sandbox.bwrap import BwrapSandbox
from prtrace.qa.errors import BackendUnavailable
from prtrace_cli.main import app
from tests.sandbox.archives import Member, tar_bytes
from tests.sandbox.conftest import EXAMPLE_REPO, Backend, select_backend

FAILING_TEST = "tests/test_ranges.py::test_merge_keeps_last_interval"


@pytest.fixture
def fixed(scratch: Path) -> Path:
    repo = scratch / "fixed"
    shutil.copytree(EXAMPLE_REPO, repo)
    merge = repo / "ranges" / "merge.py"
    merge.write_text(
        merge.read_text().replace(
            "    if current is not None and not merged:\n", "    if current is not None:\n"
        )
    )
    return repo


def test_prints_the_verdict_table(bwrap: Backend, fixed: Path) -> None:
    result = CliRunner().invoke(app, ["qa", str(EXAMPLE_REPO), str(fixed), "--backend", "bwrap"])
    assert result.exit_code == 0, result.output
    assert FAILING_TEST in result.output  # never cut, whatever the terminal width
    assert "FAIL_TO_PASS" in result.output
    assert "verdict: resolved - 1 fail→pass, 0 pass→fail, 5 pass→pass" in result.output
    # Which pytest ran, and how the workspace was importable (nothing to build here).
    assert re.search(r"^final: pytest 9\.\S+ \(runner\), workspace none$", result.output, re.M)


def test_json_report_and_unresolved_exit_code(bwrap: Backend, fixed: Path) -> None:
    result = CliRunner().invoke(app, ["qa", str(fixed), str(EXAMPLE_REPO), "--json"])
    assert result.exit_code == 1  # the "fix" reversed: a regression
    report = json.loads(result.output)
    assert report["verdict"] == "unresolved"
    assert report["pass_to_fail"] == [FAILING_TEST]


def test_unsafe_archive_is_an_error_with_the_member(bwrap: Backend, scratch: Path) -> None:
    evil = scratch / "evil.tar"
    evil.write_bytes(tar_bytes([Member("../escape", data=b"x")]))
    result = CliRunner().invoke(app, ["qa", str(EXAMPLE_REPO), str(evil)])
    assert result.exit_code == 2
    assert "unsafe_archive" in result.output
    assert "'../escape'" in result.output


def test_unavailable_docker_is_a_clear_error(
    bwrap: Backend, fixed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    result = CliRunner().invoke(app, ["qa", str(EXAMPLE_REPO), str(fixed), "--backend", "docker"])
    assert result.exit_code == 2
    assert "infra_error" in result.output
    assert "sandbox backend 'docker' is unavailable" in result.output


def test_missing_bubblewrap_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bwrap_module, "_bwrap_binary", lambda: None)
    with pytest.raises(BackendUnavailable, match="bwrap is not installed"):
        BwrapSandbox().check_available()


def test_docker_tests_fail_instead_of_skipping_when_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.delenv("PRTRACE_REQUIRE_DOCKER", raising=False)
    with pytest.raises(pytest.skip.Exception):
        select_backend("docker")
    monkeypatch.setenv("PRTRACE_REQUIRE_DOCKER", "1")
    with pytest.raises(pytest.fail.Exception, match="no Docker engine answers"):
        select_backend("docker")


def test_archives_are_accepted_by_the_command(bwrap: Backend, fixed: Path, scratch: Path) -> None:
    archive = scratch / "fixed.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(fixed, arcname="fixed")
    result = CliRunner().invoke(app, ["qa", str(EXAMPLE_REPO), str(archive), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["fail_to_pass"] == [FAILING_TEST]


def test_a_working_directory_with_a_virtualenv_and_caches(bwrap: Backend, fixed: Path) -> None:
    venv = fixed / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").symlink_to("/usr/bin/python3")  # would be refused if packed
    (fixed / "tests" / "__pycache__").mkdir()
    (fixed / "tests" / "__pycache__" / "junk.pyc").write_bytes(b"\0")
    result = CliRunner().invoke(app, ["qa", str(EXAMPLE_REPO), str(fixed), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["fail_to_pass"] == [FAILING_TEST]


def test_missing_docker_image_is_a_clear_error() -> None:
    from prtrace.adapters.sandbox.docker_engine import DockerSandbox

    select_backend("docker")  # an engine answers (or the test is skipped / fails as required)
    with pytest.raises(BackendUnavailable, match="image prtrace-qa-missing:none is missing"):
        DockerSandbox(image="prtrace-qa-missing:none").check_available()
