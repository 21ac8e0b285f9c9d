"""QA on real PyPI projects (tests/qa_corpus: pinned sdists as shipped), on both backends.

Each project, with one injected one-line bug: buggy base → original final is `resolved`
with exactly the corpus's FAIL_TO_PASS; original base → buggy final is `unresolved` with
exactly those tests as PASS_TO_FAIL. Dependencies come from PyPI during preparation, as
they would for a user. Downloads are cached (tests/qa_corpus/sdists.py); the tests skip
only when the index cannot be reached, and fail instead under CI=true.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prtrace.qa.report import QAReport
from tests.qa_corpus.projects import FEATURES, PROJECTS, CorpusProject
from tests.qa_corpus.sdists import CorpusUnavailable, materialize
from tests.sandbox.conftest import Backend, select_backend
from tests.sandbox.helpers import run_qa


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
