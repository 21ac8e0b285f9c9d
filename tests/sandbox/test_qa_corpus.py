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
from tests.sandbox.conftest import Backend
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


@pytest.mark.parametrize("project", PROJECTS, ids=[p.name for p in PROJECTS])
def test_corpus_project_fix_and_regression(
    backend: Backend, scratch: Path, pypi: str, project: CorpusProject
) -> None:
    trees = _trees(project, scratch / "trees")
    expected = sorted(project.fail_to_pass)

    fixed, _ = run_qa(backend, scratch, trees["buggy"], trees["original"], "tr_fix")
    assert fixed.verdict == "resolved", _explain(fixed)
    assert fixed.fail_to_pass == expected, _explain(fixed)
    assert fixed.pass_to_fail == []
    assert fixed.final is not None
    assert fixed.final.workspace_install == "editable", _explain(fixed)
    assert fixed.final.pytest_version is not None
    if "old-pytest" in project.features:
        assert fixed.final.pytest_source == "repository"
        assert fixed.final.pytest_version.startswith("7."), _explain(fixed)
    if {"c-extension-optional", "c-extension-required"} & set(project.features):
        # each side's extension compiled from that side's source (a compiler in the sandbox)
        assert fixed.base is not None
        assert fixed.base.compiled_modules, _explain(fixed)
        assert fixed.final.compiled_modules, _explain(fixed)

    regressed, _ = run_qa(backend, scratch, trees["original"], trees["buggy"], "tr_regression")
    assert regressed.verdict == "unresolved", _explain(regressed)
    assert regressed.pass_to_fail == expected, _explain(regressed)
    assert regressed.fail_to_pass == []
