"""Exported eval scripts (prtrace.dataset.harness) run on real projects of the QA corpus in
prtrace's sandbox (bwrap), with the dependency environment QA prepares, the way SWE-bench's
harness runs them in its container.

Per project: a git repository whose one commit is the buggy tree (base_commit); the
instance's patch and test patch from that tree to the original one (split as an export
splits them); the eval script of a QA report whose targets are the corpus's FAIL_TO_PASS.
Run on base_commit, each FAIL_TO_PASS test fails; after `git apply` of the patch, each
passes, as the harness's log parser reads the log; exactly the instance's tests ran, and
the test files are back as they were.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from prtrace.assemble.document import TraceDocument
from prtrace.dataset.harness import END_MARKER, START_MARKER, TESTBED_VARIABLE, harness_fields
from prtrace.patches import split_patch, workspace_patch
from prtrace.qa.dependencies import TestSetup, apply_build_outputs, prepare_dependencies
from prtrace.qa.report import QAReport, RunSummary
from prtrace.qa.runner_site import build_runner_site, cache_root
from prtrace.qa.sandbox import SandboxRun
from prtrace.qa.shared_dirs import private_subdir
from tests.factories import trace_metadata
from tests.judge_factories import document
from tests.qa_corpus.projects import BY_NAME, CorpusProject
from tests.qa_corpus.sdists import materialize
from tests.sandbox.conftest import Backend, own

# Small and fast, no setuptools-scm (a fresh repository has no tags to version it by):
# a flat layout, a src layout, and doctests with an undeclared pytest plugin.
PROJECTS = ("freezegun", "itsdangerous", "parse")
# freezegun's fix also changes tests: a copied module (a new file) and an edited one.
COPIED = ("tests/test_datetimes.py", "tests/test_datetimes_copy.py")
# The host's git on the test's side: no user configuration, and no index refresh that
# would leave root-owned files in the sandbox's repository.
GIT_ENV = {
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_OPTIONAL_LOCKS": "0",
    "PATH": "/usr/bin:/bin",
}

# ---- SWE-bench's harness, as it runs a script and grades its log (swebench 5.0.2:
# utils.make_test_spec, grading.get_logs_eval, log_parsers.python.parse_log_pytest) -----
_HEADER = ("#!/bin/bash", "set -uxo pipefail")
_BAD_CODES = (">>>>> Patch Apply Failed", ">>>>> Reset Failed", ">>>>> Tests Errored")
_STATUSES = ("FAILED", "PASSED", "SKIPPED", "ERROR", "XFAIL")
_SKIP_SUMMARY = re.compile(r"^\[\d+\]$")
_EXIT_CODE = re.compile(r">>>>> Test Exit Code:\s*(-?\d+)")


def as_the_harness_runs(script: str) -> str:
    """The script with the test command's exit status recorded after the end marker."""
    lines = [line for line in script.strip().split("\n") if line not in _HEADER]
    end = next(i for i, line in enumerate(lines) if END_MARKER in line)
    lines[end:end] = ["SWEBENCH_TEST_EXIT_CODE=$?"]
    lines.insert(end + 2, 'echo ">>>>> Test Exit Code: $SWEBENCH_TEST_EXIT_CODE"')
    return "\n".join([*_HEADER, *lines]) + "\n"


def harness_statuses(log: str) -> dict[str, str]:
    """Test id → status, from the log between the markers (no whole-log fallback: the
    markers must bracket the results), checked against the recorded exit status."""
    assert not [code for code in _BAD_CODES if code in log], log[-3000:]
    assert START_MARKER in log, log[-3000:]
    assert END_MARKER in log, log[-3000:]
    statuses: dict[str, str] = {}
    for line in log.split(START_MARKER)[1].split(END_MARKER)[0].split("\n"):
        if line.startswith(_STATUSES):
            words = (line.replace(" - ", " ") if line.startswith("FAILED") else line).split()
            if len(words) > 1 and not (words[0] == "SKIPPED" and _SKIP_SUMMARY.match(words[1])):
                statuses[words[1]] = words[0]
    assert statuses, log[-3000:]
    exit_code = _EXIT_CODE.search(log)
    assert exit_code is not None, log[-3000:]
    failing = {"FAILED", "ERROR"} & set(statuses.values())
    assert (exit_code.group(1) == "0") is not failing, log[-3000:]  # the log is the run's
    return statuses


def harness_passed(test_id: str, statuses: dict[str, str]) -> bool:
    return statuses.get(test_id) in ("PASSED", "XFAIL")


# ---- the instance --------------------------------------------------------------------


def _files(root: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            path = Path(directory, name)
            if path.is_file() and not path.is_symlink():
                found[path.relative_to(root).as_posix()] = path.read_bytes()
    return found


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "safe.directory=*", "-C", str(repo), *args],
        env=GIT_ENV,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def _commit(tree: Path) -> str:
    """The tree as the one commit of a new repository (every file, as snapshots hold them)."""
    _git(tree, "init", "-q", "-b", "main")
    _git(tree, "add", "--all", "--force", ".")
    identity = ("-c", "user.name=prtrace", "-c", "user.email=qa@prtrace.invalid")
    _git(tree, *identity, "commit", "-q", "--no-gpg-sign", "-m", "base")
    return _git(tree, "rev-parse", "HEAD").strip()


def _instance(project: CorpusProject, root: Path) -> tuple[Path, str, str, str, list[str]]:
    """(repository at base_commit, base_commit, patch, test patch, FAIL_TO_PASS)."""
    base = materialize(project, root / "buggy", "buggy")
    final = materialize(project, root / "original", "original")
    fail_to_pass = list(project.fail_to_pass)
    if project.name == "freezegun":
        edited, copy = (final / path for path in COPIED)
        shutil.copyfile(edited, copy)
        edited.write_text(edited.read_text() + "\n# the fix's edit of a test file\n")
        fail_to_pass += [t.replace(COPIED[0], COPIED[1]) for t in fail_to_pass]
    patch, test_patch = split_patch(workspace_patch(_files(base), _files(final)))
    return base, _commit(base), patch, test_patch, fail_to_pass


def _report(fail_to_pass: list[str], setup: TestSetup) -> QAReport:
    """What QA would report for the instance, as far as the script reads it."""
    run = RunSummary(
        exit_code=1,
        duration_ms=0,
        pytest_source=setup.pytest_source,
        workspace_install=setup.workspace_install,
        dependency_sources=setup.sources,
    )
    return QAReport(
        trace_id="tr_eval_script",
        verdict="resolved",
        backend="bwrap",
        fail_to_pass=fail_to_pass,
        target_tests=fail_to_pass,
        target_source="base_failures",
        resolution="full",
        base=run,
        final=run.model_copy(update={"exit_code": 0}),
    )


def _document(base_commit: str) -> TraceDocument:
    metadata = trace_metadata()
    metadata["repository"]["base_commit"] = base_commit
    return document([], **metadata)


# ---- the sandbox ---------------------------------------------------------------------


class HarnessBench:
    """The repository in the sandbox with QA's environment for it (prepared as QA prepares
    a side's: QAService._prepare), where commands run as the harness runs them."""

    def __init__(self, backend: Backend, repo: Path, root: Path) -> None:
        self.backend, self.repo, self.root = backend, repo, root
        self.settings = backend.settings()
        self.runner_site = build_runner_site(self.settings.cache_dir)
        own(repo, backend.owner)
        self.setup = prepare_dependencies(
            backend.sandbox,
            repo,
            cache_root(self.settings.cache_dir),
            backend.owner,
            self.settings.prepare_limits,
            network=self.settings.dependency_network,
            runner_site=self.runner_site,
            index=self.settings.index(),
        )
        apply_build_outputs(self.setup, repo, backend.owner)
        assert self.setup.environment is not None, self.setup.install_detail
        self.runs = 0

    def run(self, files: dict[str, str], argv: list[str]) -> str:
        """`argv` in the repository (the sandbox's /workspace), `files` in its output
        folder ({out} in argv); stdout and stderr, the harness's one stream."""
        self.runs += 1
        output = private_subdir(self.root, f"out-{self.runs}", 0o755)
        for name, text in files.items():
            (output / name).write_text(text)
        own(output, self.backend.owner)
        environment = self.setup.environment
        assert environment is not None
        paths = self.backend.sandbox.paths(self.repo, self.runner_site, environment, output)
        result = self.backend.sandbox.run(
            SandboxRun(
                argv=[arg.replace("{out}", paths.output) for arg in argv],
                workspace=self.repo,
                output=output,
                runner_site=self.runner_site,
                deps=environment,
                env={
                    "PATH": f"{paths.deps}/bin:/usr/local/bin:/usr/bin:/bin",
                    "HOME": "/tmp",  # noqa: S108 - the sandbox's private tmpfs
                    "TMPDIR": "/tmp",  # noqa: S108
                    TESTBED_VARIABLE: paths.workspace,
                },
                limits=self.settings.limits,
            )
        )
        log = (result.stdout + result.stderr).decode(errors="replace")
        assert not result.timed_out, log[-3000:]
        return log

    def eval(self, script: str) -> str:
        return self.run({"eval.sh": as_the_harness_runs(script)}, ["/bin/bash", "{out}/eval.sh"])

    def apply(self, patch: str) -> None:
        """The harness's first way of applying a prediction (`git apply --verbose`)."""
        log = self.run(
            {"patch.diff": patch}, ["/usr/bin/git", "apply", "--verbose", "{out}/patch.diff"]
        )
        assert "Applied patch" in log, log


@pytest.mark.parametrize("name", PROJECTS)
def test_the_eval_script_fails_on_base_and_passes_with_the_patch(
    bwrap: Backend, scratch: Path, pypi: str, name: str
) -> None:
    project = BY_NAME[name]
    repo, base_commit, patch, test_patch, fail_to_pass = _instance(project, scratch / "trees")
    assert patch
    assert bool(test_patch) is (name == "freezegun")
    bench = HarnessBench(bwrap, repo, scratch)
    fields = harness_fields(_document(base_commit), _report(fail_to_pass, bench.setup), test_patch)
    script = fields["eval_script"]
    assert script is not None, fields["eval_script_reason"]
    assert fields["environment_setup_commit"] == base_commit
    assert fields["harness_unreadable_tests"] == []

    # (a) base_commit as it is (the harness's --no-patch run): every FAIL_TO_PASS fails.
    # The tree as the script found it (an editable install may rewrite tracked metadata).
    found = _git(repo, "diff", base_commit)
    before = harness_statuses(bench.eval(script))
    assert set(before) == set(fail_to_pass), before  # exactly the instance's tests ran
    assert not [t for t in fail_to_pass if harness_passed(t, before)], before
    assert _git(repo, "diff", base_commit) == found  # the test files are back
    assert not (repo / COPIED[1]).exists()

    # (b) the instance's patch applied: every FAIL_TO_PASS passes.
    bench.apply(patch)
    applied = _git(repo, "diff", base_commit)
    assert f"diff --git a/{project.bug_path} " in applied
    after = harness_statuses(bench.eval(script))
    assert set(after) == set(fail_to_pass), after
    assert [t for t in fail_to_pass if not harness_passed(t, after)] == [], after
    assert _git(repo, "diff", base_commit) == applied  # the harness's own check
