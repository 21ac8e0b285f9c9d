"""The dependency step's package index: the CodeArtifact URL, the settings, and the token
kept out of everything QA writes (a failing install's detail, the error of a timed-out one)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from prtrace.qa.dependencies import prepare_dependencies
from prtrace.qa.errors import QAError
from prtrace.qa.package_index import (
    CodeArtifactSettings,
    PackageIndex,
    codeartifact_index,
    codeartifact_index_url,
)
from prtrace.qa.sandbox import SandboxLimits, SandboxPaths, SandboxResult, SandboxRun
from prtrace.qa.settings import QASettings
from prtrace.settings import ConfigurationError

TOKEN = "eyJ2ZXIiOjEsImlzdSI6MTcwMH0.k+/w=="  # base64-like: "+/=" are quoted in a URL


def test_the_codeartifact_index_url_is_built_from_its_parts() -> None:
    url = codeartifact_index_url(
        domain="prtrace-prod", owner="123456789012", repository="qa-pypi", region="eu-west-1"
    )
    assert url == (
        "https://prtrace-prod-123456789012.d.codeartifact.eu-west-1.amazonaws.com"
        "/pypi/qa-pypi/simple/"
    )


@pytest.mark.parametrize(
    ("part", "value", "named"),
    [
        ("domain", "Prtrace", "domain"),
        ("owner", "12345", "domain owner"),
        ("repository", "a/b", "repository"),
        ("region", "eu-west", "region"),
    ],
)
def test_a_bad_codeartifact_part_is_named(part: str, value: str, named: str) -> None:
    parts = {"domain": "d1", "owner": "123456789012", "repository": "r1", "region": "us-east-1"}
    parts[part] = value
    with pytest.raises(ValueError, match=f"not a CodeArtifact {named}"):
        codeartifact_index_url(**parts)


def test_the_token_goes_into_the_url_pip_gets_and_nowhere_it_is_shown() -> None:
    index = codeartifact_index(
        domain="d1", owner="123456789012", repository="r1", region="us-east-1", token=TOKEN
    )
    pip_url = index.pip_url()
    assert pip_url.startswith("https://aws:eyJ2ZXIiOjEsImlzdSI6MTcwMH0.k%2B%2Fw%3D%3D@d1-")
    assert pip_url.endswith(".d.codeartifact.us-east-1.amazonaws.com/pypi/r1/simple/")
    assert TOKEN not in repr(index)
    assert TOKEN not in str(index)
    assert TOKEN not in index.url
    shown = index.redact(f"ERROR: 401 for {pip_url} (token {TOKEN})")
    assert TOKEN not in shown
    assert "k%2B%2Fw%3D%3D" not in shown
    assert shown.count("****") == 2
    with pytest.raises(ValueError, match="token is empty"):
        codeartifact_index(
            domain="d1", owner="123456789012", repository="r1", region="us-east-1", token=""
        )


def test_an_index_without_a_token_is_used_as_given() -> None:
    index = PackageIndex(url="http://proxy:5000/index")
    assert index.url == "http://proxy:5000/index/"
    assert index.pip_url() == index.url
    assert index.plain_http
    assert index.host == "proxy:5000"
    assert index.redact("text") == "text"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://aws:secret@host/simple/", "must not carry credentials"),
        ("ftp://host/simple/", "http"),
        ("https://host/simple/?x=1", "query"),
        ("/simple/", "http"),
    ],
)
def test_the_index_setting_refuses_what_it_cannot_show(
    monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    monkeypatch.setenv("PRTRACE_QA_PACKAGE_INDEX", url)
    with pytest.raises(ConfigurationError, match="PRTRACE_QA_PACKAGE_INDEX") as caught:
        QASettings.from_env()
    assert why in str(caught.value)
    assert "secret" not in str(caught.value)


def test_the_settings_give_the_index_with_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRTRACE_QA_PACKAGE_INDEX", "https://proxy.example/simple/")
    monkeypatch.setenv("PRTRACE_QA_PACKAGE_INDEX_TOKEN", TOKEN)
    settings = QASettings.from_env()
    assert TOKEN not in repr(settings)
    index = settings.index()
    assert index is not None
    assert index.username == "aws"
    assert index.token == SecretStr(TOKEN)
    monkeypatch.delenv("PRTRACE_QA_PACKAGE_INDEX")
    monkeypatch.delenv("PRTRACE_QA_PACKAGE_INDEX_TOKEN")
    assert QASettings().index() is None


def test_a_token_without_an_index_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRTRACE_QA_PACKAGE_INDEX_TOKEN", TOKEN)
    with pytest.raises(ConfigurationError) as caught:
        QASettings.from_env()
    assert "without PRTRACE_QA_PACKAGE_INDEX" in str(caught.value)
    assert TOKEN not in str(caught.value)


class _PipEchoingTheToken:
    """A sandbox whose pip fails as a hostile `setup.py` would make it fail: printing the
    URL it was given (with the token) and the token alone."""

    name = "fake"

    def __init__(self, timed_out: bool = False) -> None:
        self.runs: list[SandboxRun] = []
        self._timed_out = timed_out

    def check_available(self) -> None:
        return None

    def paths(
        self, run_workspace: Path, runner_site: Path, deps: Path, output: Path
    ) -> SandboxPaths:
        return SandboxPaths(
            workspace=str(run_workspace),
            runner_site=str(runner_site),
            deps=str(deps),
            output=str(output),
            python="/usr/bin/python3",
        )

    def run(self, run: SandboxRun) -> SandboxResult:
        self.runs.append(run)
        url = run.env.get("PIP_INDEX_URL", "")
        token = url.split("@")[0].rsplit(":", 1)[-1] if "@" in url else ""
        stderr = (
            f"Looking in indexes: {url}\n"
            f"ERROR: Could not fetch {url}requests/ (token {token})\n"
            f"ERROR: setup.py says {TOKEN}\n"
        )
        return SandboxResult(
            exit_code=None if self._timed_out else 1,
            timed_out=self._timed_out,
            oom_killed=False,
            duration_ms=5,
            stdout=b"",
            stderr=stderr.encode(),
        )


def _workspace(root: Path) -> Path:
    workspace = root / "ws"
    workspace.mkdir(parents=True)
    (workspace / "requirements.txt").write_text("requests\n")
    return workspace


def _prepare(root: Path, sandbox: _PipEchoingTheToken, index: PackageIndex | None) -> object:
    return prepare_dependencies(
        sandbox,
        _workspace(root),
        root / "cache",
        (os.geteuid(), os.getegid()),
        SandboxLimits(),
        network=True,
        runner_site=root / "runner",
        index=index,
    )


def _index() -> PackageIndex:
    return codeartifact_index(
        domain="d1", owner="123456789012", repository="r1", region="us-east-1", token=TOKEN
    )


def test_a_failing_install_reports_no_token(tmp_path: Path) -> None:
    sandbox = _PipEchoingTheToken()
    setup = _prepare(tmp_path, sandbox, _index())
    (run,) = sandbox.runs
    assert run.network is True
    assert run.env["PIP_INDEX_URL"] == _index().pip_url()  # only the preparation run has it
    assert "PIP_TRUSTED_HOST" not in run.env  # https
    assert TOKEN not in " ".join(run.argv)  # never on the command line
    detail = str(getattr(setup, "install_detail", ""))
    assert getattr(setup, "dependencies_missing", False) is True
    assert "ERROR: Could not fetch" in detail  # pip's reason is kept...
    assert TOKEN not in detail  # ...without the token
    assert "k%2B%2Fw%3D%3D" not in detail
    assert "****" in detail


def test_a_timed_out_install_raises_an_error_without_the_token(tmp_path: Path) -> None:
    with pytest.raises(QAError) as caught:
        _prepare(tmp_path, _PipEchoingTheToken(timed_out=True), _index())
    assert caught.value.reason == "dependency_install_failed"
    assert TOKEN not in caught.value.detail
    assert "****" in caught.value.detail


def test_a_plain_http_proxy_is_trusted_and_no_index_means_pypi(tmp_path: Path) -> None:
    sandbox = _PipEchoingTheToken()
    _prepare(tmp_path / "a", sandbox, PackageIndex(url="http://proxy:5000/index/"))
    assert sandbox.runs[0].env["PIP_INDEX_URL"] == "http://proxy:5000/index/"
    assert sandbox.runs[0].env["PIP_TRUSTED_HOST"] == "proxy:5000"
    _prepare(tmp_path / "b", sandbox, None)
    assert "PIP_INDEX_URL" not in sandbox.runs[-1].env


def test_the_environment_key_names_the_index_not_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each QA task gets a new token: a cached environment must still be found by its key;
    another index is another environment."""
    from prtrace.qa import dependencies

    keys: list[str] = []
    original = dependencies._install

    def spy(*args: object, **kwargs: object) -> None:
        keys.append(Path(str(args[3])).name.split("-")[1])  # staging: .env-<key>-<random>
        original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dependencies, "_install", spy)
    workspace = _workspace(tmp_path)
    for n, index in enumerate(
        [
            _index(),
            _index().model_copy(update={"token": SecretStr("another-token")}),
            PackageIndex(url="https://other.example/simple/"),
        ]
    ):
        prepare_dependencies(
            _PipEchoingTheToken(),
            workspace,
            tmp_path / f"cache{n}",
            (os.geteuid(), os.getegid()),
            SandboxLimits(),
            network=True,
            runner_site=tmp_path / "runner",
            index=index,
        )
    assert keys[0] == keys[1]
    assert keys[2] != keys[0]


def test_prepare_qa_asks_codeartifact_for_a_token_only_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert not CodeArtifactSettings.from_env().configured
    monkeypatch.setenv("PRTRACE_QA_CODEARTIFACT_DOMAIN", "prtrace-prod")
    with pytest.raises(ConfigurationError, match="PRTRACE_QA_CODEARTIFACT_OWNER"):
        CodeArtifactSettings.from_env()
    monkeypatch.setenv("PRTRACE_QA_CODEARTIFACT_OWNER", "123456789012")
    monkeypatch.setenv("PRTRACE_QA_CODEARTIFACT_REPOSITORY", "qa-pypi")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    settings = CodeArtifactSettings.from_env()
    assert settings.token_request() == {
        "domain": "prtrace-prod",
        "domainOwner": "123456789012",
        "durationSeconds": 3600,
    }
    index = settings.index(TOKEN)
    assert index.url == codeartifact_index_url(
        domain="prtrace-prod", owner="123456789012", repository="qa-pypi", region="eu-west-1"
    )
    assert index.token == SecretStr(TOKEN)


def test_the_runner_adds_the_granted_token_to_its_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(ValueError, match="PRTRACE_QA_PACKAGE_INDEX is unset"):
        QASettings().with_index_token(TOKEN)
    monkeypatch.setenv("PRTRACE_QA_PACKAGE_INDEX", "https://proxy.example/simple/")
    index = QASettings.from_env().with_index_token(TOKEN).index()
    assert index is not None
    assert index.pip_url() == "https://aws:" + quote(TOKEN, safe="") + "@proxy.example/simple/"
