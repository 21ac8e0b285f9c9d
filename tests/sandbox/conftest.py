"""Sandbox test fixtures: each backend the suite runs on, and real workspaces for it.

Needs root and the machine setup of `.ci/sandbox-setup.sh` (bubblewrap, a Docker engine,
the offline image). Docker tests are skipped only when no engine answers AND
PRTRACE_REQUIRE_DOCKER is unset; with PRTRACE_REQUIRE_DOCKER=1 (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from prtrace.adapters.sandbox.select import build_sandbox
from prtrace.qa.errors import BackendUnavailable
from prtrace.qa.sandbox import Sandbox
from prtrace.qa.settings import BackendName, QASettings

SCRATCH = Path("/var/tmp/prtrace-qa-tests")  # noqa: S108 - must be reachable by the sandbox uid
EXAMPLE_REPO = Path(__file__).resolve().parents[2] / "examples" / "repo-buggy"


class Backend:
    def __init__(self, name: BackendName, sandbox: Sandbox, owner: tuple[int, int]) -> None:
        self.name = name
        self.sandbox = sandbox
        self.owner = owner

    def settings(self, **overrides: object) -> QASettings:
        values: dict[str, object] = {"backend": self.name, "work_dir": SCRATCH / "work"}
        values.update(overrides)
        return QASettings.model_validate(values)


def select_backend(name: BackendName) -> Backend:
    sandbox, owner = build_sandbox(QASettings(backend=name))
    try:
        sandbox.check_available()
    except BackendUnavailable as error:
        if name == "docker" and os.environ.get("PRTRACE_REQUIRE_DOCKER") != "1":
            pytest.skip(
                f"no Docker engine here ({error.detail}); set PRTRACE_REQUIRE_DOCKER=1 to fail"
            )
        pytest.fail(f"{error.detail} - run .ci/sandbox-setup.sh as root first")
    return Backend(name, sandbox, owner)


@pytest.fixture(scope="session", params=["bwrap", "docker"])
def backend(request: pytest.FixtureRequest) -> Backend:
    return select_backend(request.param)


@pytest.fixture(scope="session")
def bwrap() -> Backend:
    return select_backend("bwrap")


def make_scratch(prefix: str) -> Path:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    os.chmod(SCRATCH, 0o711)  # noqa: S103 - traverse only
    path = SCRATCH / f"{prefix}-{uuid.uuid4().hex[:10]}"
    path.mkdir()
    os.chmod(path, 0o711)  # noqa: S103 - whatever the umask
    return path


@pytest.fixture
def scratch(request: pytest.FixtureRequest) -> Iterator[Path]:
    path = make_scratch(request.node.name[:40].replace("[", "-").replace("]", ""))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def own(tree: Path, owner: tuple[int, int]) -> None:
    os.chown(tree, *owner)
    for directory, dirs, files in os.walk(tree):
        for name in dirs + files:
            os.lchown(os.path.join(directory, name), *owner)


@pytest.fixture(scope="session")
def pypi() -> str:
    """The real package index, which dependency preparation reaches with network. Skipped
    only when it cannot be reached here, and never under CI=true."""
    url = "https://pypi.org/simple/pip/"
    try:
        httpx.head(url, timeout=10, follow_redirects=True).raise_for_status()
    except httpx.HTTPError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PyPI cannot be reached ({error}); CI needs it for these tests")
        pytest.skip(f"PyPI cannot be reached here: {error}")
    return url
