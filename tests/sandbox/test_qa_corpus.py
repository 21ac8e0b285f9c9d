"""QA on real PyPI projects (tests/qa_corpus: pinned sdists as shipped), on both backends.

Each project, with one injected one-line bug: buggy base → original final is `resolved`
with exactly the corpus's FAIL_TO_PASS; original base → buggy final is `unresolved` with
exactly those tests as PASS_TO_FAIL. Dependencies come from PyPI during preparation, as
they would for a user. Downloads are cached (tests/qa_corpus/sdists.py); the tests skip
only when the index cannot be reached, and fail instead under CI=true.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from infra_cdk.app import build_app
from prtrace.qa.report import QAReport
from tests.qa_corpus.projects import BY_NAME, FEATURES, PROJECTS, CorpusProject
from tests.qa_corpus.sdists import CorpusUnavailable, materialize
from tests.sandbox.conftest import Backend, select_backend
from tests.sandbox.fargate_config import LOCAL_IMAGE, image_layout, qa_task_docker_args
from tests.sandbox.helpers import run_qa
from tests.sandbox.package_proxy import SETUP_CACHE, package_proxy

# The proxy's file cache outlives a session, as the corpus's sdist cache does.
PROXY_CACHE = SETUP_CACHE.parent / "qa-proxy-cache"


def test_the_corpus_covers_every_feature_the_qa_must_handle() -> None:
    covered = {feature for project in PROJECTS for feature in project.features}
    assert covered == FEATURES
    assert len(PROJECTS) >= 8
    assert {"flat", "src"} <= covered


def _trees(project: CorpusProject, root: Path) -> dict[str, Path]:
    try:
        return {
            variant: materialize(project, root / variant, variant)
            for variant in ("original", "buggy")
        }
    except CorpusUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the corpus cannot be downloaded: {error}")
        pytest.skip(f"the corpus cannot be downloaded here: {error}")


def _explain(report: QAReport) -> str:
    runs = {"base": report.base, "final": report.final}
    lines = [f"{report.verdict} {report.error_reason}: {report.error_detail}"]
    for name, run in runs.items():
        if run is not None:
            lines.append(
                f"{name}: exit {run.exit_code}, {run.passed} passed, {run.failed} failed, "
                f"{run.errors} errors, collection errors {run.collection_errors}, "
                f"pytest {run.pytest_version} ({run.pytest_source}), "
                f"{run.workspace_install} {run.install_detail or ''}, "
                f"compiled {run.compiled_modules}, dependencies from {run.dependency_sources}"
            )
    lines += [f"flag {flag.code}: {flag.detail}" for flag in report.flags]
    return "\n".join(lines)


_BUILDS = {"c-extension-optional", "c-extension-required"}
# Per-test outcomes of each (backend, project) fix run, for the comparison at the end.
_OUTCOMES: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}
# ... and of its regression run (the Fargate configuration's comparison).
_REGRESSIONS: dict[tuple[str, str], dict[str, tuple[str, str]]] = {}


def _outcomes(report: QAReport) -> dict[str, tuple[str, str]]:
    return {test.test_id: (test.before, test.after) for test in report.tests}


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_corpus_project_fix_and_regression(
    backend: Backend, scratch: Path, pypi: str, project: CorpusProject
) -> None:
    trees = _trees(project, scratch / "trees")
    expected = sorted(project.fail_to_pass)

    # Projects that compile: a cache of their own, so the first QA is cold, the second warm.
    cache = scratch / "cache" if _BUILDS & set(project.features) else None
    fixed, _ = run_qa(
        backend, scratch, trees["buggy"], trees["original"], "tr_fix", cache_dir=cache
    )
    _OUTCOMES[(backend.name, project.name)] = _outcomes(fixed)
    assert fixed.verdict == "resolved", _explain(fixed)
    assert fixed.fail_to_pass == expected, _explain(fixed)
    assert fixed.pass_to_fail == []
    assert fixed.final is not None
    assert fixed.final.workspace_install == "editable", _explain(fixed)
    assert fixed.final.pytest_version is not None
    if "old-pytest" in project.features:
        assert fixed.final.pytest_source == "repository"
        assert fixed.final.pytest_version.startswith("7."), _explain(fixed)
    if _BUILDS & set(project.features):
        # each side's extension compiled from that side's source (a compiler in the sandbox)
        assert fixed.base is not None
        assert fixed.base.compiled_modules, _explain(fixed)
        assert fixed.final.compiled_modules, _explain(fixed)

    if cache:  # warm: the same per-test outcomes as cold
        again, _ = run_qa(
            backend, scratch, trees["buggy"], trees["original"], "tr_warm", cache_dir=cache
        )
        assert _outcomes(again) == _OUTCOMES[(backend.name, project.name)], _explain(again)

    regressed, _ = run_qa(
        backend, scratch, trees["original"], trees["buggy"], "tr_regression", cache_dir=cache
    )
    _REGRESSIONS[(backend.name, project.name)] = _outcomes(regressed)
    assert regressed.verdict == "unresolved", _explain(regressed)
    assert regressed.pass_to_fail == expected, _explain(regressed)
    assert regressed.fail_to_pass == []


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_both_backends_give_the_same_per_test_outcomes(
    scratch: Path, pypi: str, project: CorpusProject
) -> None:
    """bwrap and docker carry the same toolchain: every test of every project has the same
    outcome before and after on both (the runs above, or fresh ones when they were not
    selected)."""
    for name in ("bwrap", "docker"):
        if (name, project.name) not in _OUTCOMES:
            trees = _trees(project, scratch / "trees")
            report, _ = run_qa(
                select_backend(name), scratch, trees["buggy"], trees["original"], f"tr_{name}"
            )
            _OUTCOMES[(name, project.name)] = _outcomes(report)
    bwrap, docker = _OUTCOMES[("bwrap", project.name)], _OUTCOMES[("docker", project.name)]
    differing = sorted(t for t in bwrap.keys() | docker.keys() if bwrap.get(t) != docker.get(t))
    assert not differing, [(t, bwrap.get(t), docker.get(t)) for t in differing[:10]]


# ---- the Fargate configuration ---------------------------------------------------------
# The QA runner with the `container` backend in a container under the synthesized QA task
# definition's settings (tests/sandbox/fargate_config.py), on an internal network whose only
# other member is the emulated private PyPI proxy (tests/sandbox/package_proxy.py):
# CodeArtifact's place on AWS. One container session runs every QA. On Fargate each side
# prepares its own environment (a QA run's workspaces are its own paths): about a minute a
# QA here, so CI runs the fixes of the projects whose preparation differs most (an
# undeclared plugin, a compiled extension, a pinned old pytest) and one regression;
# PRTRACE_QA_FARGATE_CORPUS=all runs every project both ways.
FARGATE_CI_RUNS = (("parse", "fix"), ("markupsafe", "fix"), ("click", "fix"), ("parse", "reg"))
# Which snapshot is the base and which the final, by kind of run.
_SIDES = {"fix": ("buggy", "original"), "reg": ("original", "buggy")}


def _fargate_runs() -> list[tuple[CorpusProject, str]]:
    if os.environ.get("PRTRACE_QA_FARGATE_CORPUS") == "all":
        return [(project, kind) for project in PROJECTS for kind in _SIDES]
    return [(BY_NAME[name], kind) for name, kind in FARGATE_CI_RUNS]


def _trace(project: CorpusProject, kind: str) -> str:
    return f"tr_{project.name.replace('-', '_')}_{kind}"


CORPUS = "/srv/corpus"
OUT = "/srv/out"
# A project whose build prints the index URL pip was given (with the token) and fails:
# the report and every file QA wrote must hold no token.
TOKEN_ECHO = {
    "setup.py": (
        "import os, sys\n"
        "print('ERROR: leaked', os.environ.get('PIP_INDEX_URL'), file=sys.stderr)\n"
        "sys.exit(1)\n"
    ),
    "requirements.txt": "iniconfig\n",
    "tests/test_echo.py": "import iniconfig\n\n\ndef test_imports():\n    assert iniconfig\n",
}
# The runner, as functions.qa_runner builds it from the task's settings, on every project.
# Arguments: the corpus and output directories.
DRIVER = """
import json, sys, time
from pathlib import Path
from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.adapters.sandbox.select import build_sandbox
from prtrace.qa.local_inputs import store_local_snapshot
from prtrace.qa.service import QAService
from prtrace.qa.settings import QASettings

settings = QASettings.from_env()
sandbox, owner = build_sandbox(settings)
store = DirectoryArtifactStore(Path("/tmp/corpus-store"))
service = QAService(sandbox, store, settings, owner)
corpus, out = map(Path, sys.argv[1:3])
for run in json.loads((corpus / "plan.json").read_text()):
    start = time.monotonic()
    refs = [store_local_snapshot(corpus / run[side], store, "t1", run["trace"])
            for side in ("base", "final")]
    report = service.run("t1", run["trace"], *refs)
    (out / (run["trace"] + ".json")).write_text(report.model_dump_json())
    print(run["trace"], report.verdict, f"{time.monotonic() - start:.1f} s", flush=True)
"""


def _bwrap_outcomes(project: CorpusProject, scratch: Path) -> None:
    """bwrap's outcomes both ways, when this session has not run them already."""
    if ("bwrap", project.name) in _OUTCOMES and ("bwrap", project.name) in _REGRESSIONS:
        return
    trees = _trees(project, scratch / "bwrap-trees" / project.name)
    bwrap = select_backend("bwrap")
    fixed, _ = run_qa(bwrap, scratch, trees["buggy"], trees["original"], "tr_bwrap_fix")
    regressed, _ = run_qa(bwrap, scratch, trees["original"], trees["buggy"], "tr_bwrap_reg")
    _OUTCOMES[("bwrap", project.name)] = _outcomes(fixed)
    _REGRESSIONS[("bwrap", project.name)] = _outcomes(regressed)


def _corpus_plan(scratch: Path, token: str) -> tuple[Path, list[dict[str, str]]]:
    """The trees (from the corpus's cached sdists) and the runs: the projects' fixes and
    regressions, and the token-echoing build once."""
    corpus = scratch / "corpus"
    plan: list[dict[str, str]] = []
    trees: dict[str, dict[str, Path]] = {}
    for project, kind in _fargate_runs():
        if project.name not in trees:
            trees[project.name] = _trees(project, corpus / project.name)
        base, final = (trees[project.name][variant].relative_to(corpus) for variant in _SIDES[kind])
        plan.append({"trace": _trace(project, kind), "base": str(base), "final": str(final)})
    echo = corpus / "token-echo"
    for name, text in TOKEN_ECHO.items():
        (echo / name).parent.mkdir(parents=True, exist_ok=True)
        (echo / name).write_text(text)
    plan.append({"trace": "tr_token_echo", "base": "token-echo", "final": "token-echo"})
    (corpus / "plan.json").write_text(json.dumps(plan))
    for directory, _, files in os.walk(corpus):
        os.chmod(directory, 0o755)  # noqa: S103 - read by the task's uid
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)
    assert token not in (corpus / "plan.json").read_text()
    return corpus, plan


def test_the_fargate_configuration_resolves_the_corpus_as_bwrap_does(
    scratch: Path, pypi: str
) -> None:
    """Same verdicts and per-test outcomes as bwrap, with dependencies from the private
    proxy only: the QA container cannot reach PyPI, the proxy caches what it served, and
    the index's token is in nothing QA wrote."""
    select_backend("docker")  # an engine and the offline image (or skip/fail as required)
    token = f"codeartifact-token-{secrets.token_hex(16)}"
    corpus, plan = _corpus_plan(scratch, token)
    outdir = scratch / "out"
    outdir.mkdir()
    task_storage = scratch / "task-storage"
    task_storage.mkdir()
    os.chmod(task_storage, 0o1777)  # noqa: S103 - the task's /tmp
    template_dir = scratch / "cdk.out"
    build_app({"stage": "test"}, build_deps=False, outdir=str(template_dir)).synth()
    template = json.loads((template_dir / "prtrace-test.template.json").read_text())
    layout = image_layout(scratch / "image")
    name = f"prtrace-qa-corpus-{uuid.uuid4().hex[:8]}"
    with package_proxy(PROXY_CACHE) as proxy:
        args = qa_task_docker_args(
            template,
            layout=layout,
            task_storage=task_storage,
            network=proxy.network,
            extra_env={
                # The template's is CodeArtifact's (a CloudFormation value); the token is
                # what PrepareQa would hand over in the grant.
                "PRTRACE_QA_PACKAGE_INDEX": proxy.index_url,
                "PRTRACE_QA_PACKAGE_INDEX_TOKEN": token,
            },
            extra_mounts=[
                f"--mount=type=bind,source={corpus},target={CORPUS},readonly",
                f"--mount=type=bind,source={outdir},target={OUT}",
            ],
            command=["python", "-c", DRIVER, CORPUS, OUT],
            name=name,
        )
        env = dict(v.split("=", 1) for flag, v in itertools.pairwise(args) if flag == "--env")
        assert env["PRTRACE_QA_DEPENDENCY_NETWORK"] == "true"  # from the task definition
        assert env["PRTRACE_SANDBOX_BACKEND"] == "container"
        # The QA container's network reaches the proxy and nothing else.
        probe = [
            a for a in args if a.startswith(("--network=", "--user=", "--cap-", "--read-only"))
        ]
        reach = "import urllib.request as u, sys; u.urlopen(sys.argv[1], timeout=10)"
        for url, reachable in ((pypi, False), (proxy.index_url.removesuffix("index/"), True)):
            done = subprocess.run(
                ["docker", "run", "--rm", *probe, "--entrypoint=python3", LOCAL_IMAGE,
                 "-c", reach, url],
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            assert (done.returncode == 0) is reachable, (url, done.stderr[-500:])
        start = time.monotonic()
        try:
            done = subprocess.run(
                ["docker", "run", *args], capture_output=True, text=True, timeout=2400, check=False
            )
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        elapsed = time.monotonic() - start
        print(f"the Fargate-configuration session: {elapsed:.0f} s\n{done.stdout}")
        assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
        # The proxy kept what it served: cut off from PyPI, it still serves those files.
        cached = proxy.cached_files()
        wheel = next(n for n in cached if n.startswith("iniconfig-") and n.endswith(".whl"))
        proxy.cut_off_from_pypi()
        version = wheel.split("-")[1]
        again = subprocess.run(
            ["docker", "run", "--rm", f"--network={proxy.network}", "--entrypoint=python3",
             LOCAL_IMAGE, "-m", "pip", "download", "--no-deps", "--dest", "/tmp/again",  # noqa: S108
             "--index-url", proxy.index_url, "--trusted-host", proxy.index_url.split("/")[2],
             f"iniconfig=={version}"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert again.returncode == 0, again.stderr[-2000:]

    reports = {
        run["trace"]: QAReport.model_validate_json((outdir / f"{run['trace']}.json").read_text())
        for run in plan
    }
    differing: dict[str, object] = {}
    for project, kind in _fargate_runs():
        _bwrap_outcomes(project, scratch)
        report = reports[_trace(project, kind)]
        assert report.backend == "container"
        if kind == "fix":
            assert report.verdict == "resolved", _explain(report)
            assert report.fail_to_pass == sorted(project.fail_to_pass), _explain(report)
            expected = _OUTCOMES[("bwrap", project.name)]
        else:
            assert report.verdict == "unresolved", _explain(report)
            assert report.pass_to_fail == sorted(project.fail_to_pass), _explain(report)
            expected = _REGRESSIONS[("bwrap", project.name)]
        got = _outcomes(report)
        tests = sorted(t for t in got.keys() | expected.keys() if got.get(t) != expected.get(t))
        if tests:
            differing[f"{project.name} {kind}"] = [
                (t, expected.get(t), got.get(t)) for t in tests[:5]
            ]
    assert not differing, differing
    # The token reached the build (it printed it) and nothing QA wrote keeps it.
    echo = reports["tr_token_echo"]
    assert echo.final is not None
    assert "ERROR: leaked http://aws:****@pypi-proxy" in (echo.final.install_detail or "")
    for path in [*outdir.rglob("*"), *task_storage.rglob("*")]:
        if path.is_file() and not path.is_symlink():
            assert token.encode() not in path.read_bytes(), f"{path} holds the token"
