"""The client on its own: the wheel installed without extras in a clean virtual
environment (from PyPI, as a user's `pip install prtrace` would) brings only the client's
dependencies, every client module imports, `prtrace --help` runs, and the admin commands
that need the service's packages say how to get them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What only the service uses: none of it may come with the client.
SERVICE_ONLY = {"boto3", "botocore", "openai", "docker", "aws-lambda-powertools", "pyarrow"}

pytestmark = pytest.mark.slow  # builds a wheel and installs it from PyPI


def _uv() -> str:
    return shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("client-package")
    uv = _uv()
    subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(work / "dist")],
        cwd=ROOT, check=True,
    )  # fmt: skip
    (wheel,) = (work / "dist").glob("prtrace-*.whl")
    venv = work / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel)],
        check=True,
    )
    return venv


def _run(venv: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(venv), "LANG": "C.UTF-8"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=venv, timeout=120)


def test_the_client_installs_without_the_service_packages(client_venv: Path) -> None:
    frozen = subprocess.run(
        [_uv(), "pip", "freeze", "--python", str(client_venv / "bin" / "python")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    installed = {re.split(r"==| @ ", line)[0].lower() for line in frozen.splitlines() if line}
    assert "prtrace" in installed
    assert {"httpx", "typer", "pydantic", "orjson"} <= installed
    assert not installed & SERVICE_ONLY, installed & SERVICE_ONLY


def test_every_client_module_imports_and_help_runs(client_venv: Path) -> None:
    walk = (
        "import importlib, pkgutil, prtrace_client, prtrace_cli\n"
        "for package in (prtrace_client, prtrace_cli):\n"
        "    for module in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        if module.name != 'prtrace_cli.recorderd':  # its own process; imported below\n"
        "            importlib.import_module(module.name)\n"
        "import prtrace_cli.recorderd\n"
    )
    imported = _run(client_venv, str(client_venv / "bin" / "python"), "-c", walk)
    assert imported.returncode == 0, imported.stderr
    helped = _run(client_venv, str(client_venv / "bin" / "prtrace"), "--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("record", "run", "submit", "status", "export"):
        assert command in helped.stdout


@pytest.mark.parametrize(
    ("argv", "command", "extras"),
    [
        (["tokens", "list"], "tokens", "server"),
        (["qa", ".", "."], "qa", "server"),
        (["query", "select 1", "--tenant", "acme", "--bucket", "b"], "query", "server,query"),
    ],
)
def test_admin_commands_name_the_extra_they_need(
    client_venv: Path, argv: list[str], command: str, extras: str
) -> None:
    done = _run(client_venv, str(client_venv / "bin" / "prtrace"), *argv)
    assert done.returncode == 2
    assert f"`prtrace {command}` needs the service's packages" in done.stderr
    assert f"pip install 'prtrace[{extras}]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_client_environment_is_clean(client_venv: Path) -> None:
    # The venv is the client's only: no project path leaks into it.
    probe = _run(
        client_venv, str(client_venv / "bin" / "python"), "-c", "import sys; print(sys.path)"
    )
    assert str(ROOT) not in probe.stdout
    assert os.fspath(client_venv) in probe.stdout
