"""Whole QA runs on real repositories in each backend: verdicts, the error taxonomy,
dependencies, flaky tests, and the logs and JUnit files kept as artifacts."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import tarfile
import threading
from pathlib import Path

import pytest
import zstandard

from prtrace.qa.junit import parse_junit
from prtrace.qa.sandbox import SandboxLimits
from tests.sandbox.conftest import EXAMPLE_REPO, Backend, select_backend
from tests.sandbox.helpers import run_qa, wheel

FAILING_TEST = "tests/test_ranges.py::test_merge_keeps_last_interval"
BUG = "    if current is not None and not merged:\n"
FIX = "    if current is not None:\n"


def _repo(
    root: Path,
    name: str,
    edits: dict[str, tuple[str, str]] | None = None,
    files: dict[str, str] | None = None,
) -> Path:
    repo = root / name
    shutil.copytree(EXAMPLE_REPO, repo)
    for path, (old, new) in (edits or {}).items():
        text = (repo / path).read_text()
        assert old in text
        (repo / path).write_text(text.replace(old, new))
    for path, text in (files or {}).items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    return repo


def test_example_fix_is_resolved(backend: Backend, scratch: Path) -> None:
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)})
    report, store = run_qa(backend, scratch, EXAMPLE_REPO, final)
    assert report.verdict == "resolved", report.error_detail
    assert report.backend == backend.name
    assert report.fail_to_pass == [FAILING_TEST]
    assert len(report.pass_to_pass) == 5
    assert report.pass_to_fail == []
    assert {t.test_id: (t.before, t.after) for t in report.tests}[FAILING_TEST] == (
        "failed",
        "passed",
    )
    assert report.base is not None
    assert report.final is not None
    assert (report.base.passed, report.base.failed) == (5, 1)
    assert (report.final.passed, report.final.failed) == (6, 0)
    # Logs and JUnit files are kept as artifacts, under the keys the report records.
    assert report.final.junit_key is not None
    assert report.final.log_key is not None
    junit = parse_junit(store.get(report.final.junit_key))
    assert junit.outcomes[FAILING_TEST] == "passed"
    assert b"6 passed" in store.get(report.final.log_key)


def test_fix_that_breaks_another_test_is_unresolved(backend: Backend, scratch: Path) -> None:
    # The fix, plus a "cleanup" that makes intervals sharing one point no longer overlap.
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)})
    merge = final / "ranges" / "merge.py"
    merge.write_text(
        merge.read_text().replace(
            "return a[0] <= b[1] and b[0] <= a[1]", "return a[0] < b[1] and b[0] < a[1]"
        )
    )
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final)
    assert report.verdict == "unresolved"
    assert report.fail_to_pass == [FAILING_TEST]
    assert report.pass_to_fail == ["tests/test_ranges.py::test_overlaps_shared_point"]


def test_deleting_a_passing_test_counts_as_a_regression(bwrap: Backend, scratch: Path) -> None:
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)})
    tests = final / "tests" / "test_ranges.py"
    tests.write_text(tests.read_text().split("def test_overlaps_shared_point")[0])
    report, _ = run_qa(bwrap, scratch, EXAMPLE_REPO, final)
    assert report.verdict == "unresolved"
    assert report.pass_to_fail == ["tests/test_ranges.py::test_overlaps_shared_point"]


def test_hung_test_fails_by_the_per_test_timeout(bwrap: Backend, scratch: Path) -> None:
    final = _repo(
        scratch,
        "final",
        {"ranges/merge.py": (BUG, FIX)},
        files={"tests/test_hang.py": "import time\n\ndef test_hangs():\n    time.sleep(600)\n"},
    )
    report, _ = run_qa(bwrap, scratch, EXAMPLE_REPO, final, per_test_timeout_s=2)
    assert report.verdict == "resolved", report.error_detail  # the report is complete
    outcomes = {t.test_id: (t.before, t.after) for t in report.tests}
    # A test file added with the fix also runs on the base code (and hangs there too).
    assert outcomes["tests/test_hang.py::test_hangs"] == ("failed", "failed")
    assert report.base_with_final_tests is not None


def test_run_over_the_wall_clock_is_a_timeout_error(backend: Backend, scratch: Path) -> None:
    final = _repo(
        scratch,
        "final",
        files={"tests/test_hang.py": "import time\n\ndef test_hangs():\n    time.sleep(600)\n"},
    )
    limits = SandboxLimits(wall_timeout_s=4)
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final, limits=limits, per_test_timeout_s=300)
    assert report.verdict == "error"
    assert report.error_reason == "timeout"
    assert report.final is not None
    assert report.final.timed_out
    assert report.base is not None
    assert not report.base.timed_out


def test_test_run_killed_at_the_memory_limit_is_an_oom_error(
    backend: Backend, scratch: Path
) -> None:
    hog = "def test_hog():\n    blocks = [bytearray(32 * 1024 * 1024) for _ in range(64)]\n"
    final = _repo(scratch, "final", files={"tests/test_hog.py": hog})
    report, _ = run_qa(backend, scratch, EXAMPLE_REPO, final, limits=SandboxLimits(memory_mb=256))
    assert report.verdict == "error"
    assert report.error_reason == "oom", report.error_detail


def test_nothing_collectable_is_a_collection_error(bwrap: Backend, scratch: Path) -> None:
    final = _repo(
        scratch,
        "final",
        edits={
            "tests/test_ranges.py": (
                "from ranges import merge, overlaps",
                "from ranges import nothing_here",
            )
        },
    )
    report, _ = run_qa(bwrap, scratch, EXAMPLE_REPO, final)
    assert report.verdict == "error"
    assert report.error_reason == "collection_error"
    assert "tests/test_ranges.py" in (report.error_detail or "")


def test_a_broken_test_module_is_listed_and_is_no_fix(bwrap: Backend, scratch: Path) -> None:
    final = _repo(
        scratch,
        "final",
        {"ranges/merge.py": (BUG, FIX)},
        files={"tests/test_extra.py": "import not_installed_anywhere\n"},
    )
    report, _ = run_qa(bwrap, scratch, EXAMPLE_REPO, final)
    # A module that cannot import is no test: listed with its run, in no class.
    assert "tests/test_extra.py" not in {t.test_id for t in report.tests}
    assert report.final is not None
    assert report.base_with_final_tests is not None
    assert report.final.collection_errors == ["tests/test_extra.py"]
    assert report.base_with_final_tests.collection_errors == ["tests/test_extra.py"]
    assert report.verdict == "resolved"  # no passing test broke; the real fix still counts


def test_a_test_added_with_the_fix_counts_when_it_fails_on_the_base_code(
    backend: Backend, scratch: Path
) -> None:
    # The base has no test for the bug; the fix brings one. Only the final's tests run on
    # the base code can show it failing before.
    base = _repo(scratch, "base")
    tests = base / "tests" / "test_ranges.py"
    kept, _, rest = tests.read_text().partition("def test_merge_keeps_last_interval")
    tests.write_text(
        kept + "def test_merge_touching" + rest.partition("def test_merge_touching")[2]
    )
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)})
    report, _ = run_qa(backend, scratch, base, final)
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == [FAILING_TEST]
    assert report.base_with_final_tests is not None
    assert report.base is not None
    assert report.base.failed == 0


def test_a_new_test_module_that_cannot_import_on_the_base_code_counts(
    bwrap: Backend, scratch: Path
) -> None:
    final = _repo(
        scratch,
        "final",
        {"ranges/merge.py": (BUG, FIX)},
        files={
            "ranges/span.py": "def span(a):\n    return a[1] - a[0]\n",
            "tests/test_span.py": (
                "from ranges.span import span\n\n"
                "def test_span():\n    assert span((2, 5)) == 3\n\n"
                "def test_span_empty():\n    assert span((4, 4)) == 0\n"
            ),
        },
    )
    report, _ = run_qa(bwrap, scratch, EXAMPLE_REPO, final)
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == [
        FAILING_TEST,
        "tests/test_span.py::test_span",
        "tests/test_span.py::test_span_empty",
    ]
    assert report.target_tests == [FAILING_TEST]  # the new tests are evidence, not targets
    assert report.base_with_final_tests is not None
    assert report.base_with_final_tests.collection_errors == ["tests/test_span.py"]
    assert "tests/test_span.py" not in {t.test_id for t in report.tests}


def test_a_base_that_cannot_import_counts_every_test_passing_on_final(
    backend: Backend, scratch: Path
) -> None:
    """The bug broke import of the package itself: no module collects on base, so the base
    run alone would be a collection error. Final runs, so its passing tests are FAIL_TO_PASS."""
    base = _repo(scratch, "base", files={"ranges/__init__.py": "from .merge import merge, (\n"})
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)})
    report, _ = run_qa(backend, scratch, base, final)
    assert report.verdict == "resolved", report.error_detail
    assert report.base is not None
    assert report.base.error_reason == "collection_error"
    assert report.base.collection_errors == ["tests/test_ranges.py"]
    assert len(report.fail_to_pass) == 6  # every test of the module, none left as "absent"
    assert all(t.before == "error" and t.after == "passed" for t in report.tests)


def test_a_conftest_that_cannot_import_on_base_is_rescued_by_final(
    bwrap: Backend, scratch: Path
) -> None:
    """pytest exits 4 (usage error, no report) when a conftest cannot import the broken
    package: the repository's error on base, evidence once final runs."""
    conftest = {"tests/conftest.py": "import ranges  # noqa: F401\n"}
    base = _repo(
        scratch, "base", files={**conftest, "ranges/__init__.py": "raise ImportError('bug')\n"}
    )
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)}, conftest)
    report, _ = run_qa(bwrap, scratch, base, final)
    assert report.base is not None
    assert (report.base.error_reason, report.base.exit_code) == ("repo_error", 4)
    assert report.verdict == "resolved", report.error_detail
    assert len(report.fail_to_pass) == 6


def test_the_repositorys_own_usage_error_is_a_repo_error(bwrap: Backend, scratch: Path) -> None:
    """addopts naming an option no plugin provides: pytest exits 4. That is the
    repository's configuration, not prtrace's fault."""
    pyproject = (
        (EXAMPLE_REPO / "pyproject.toml")
        .read_text()
        .replace('pythonpath = ["."]', 'pythonpath = ["."]\naddopts = "--no-such-option=1"')
    )
    base = _repo(scratch, "base", files={"pyproject.toml": pyproject})
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)}, {"pyproject.toml": pyproject})
    report, _ = run_qa(bwrap, scratch, base, final)
    assert report.verdict == "error"
    assert report.error_reason == "repo_error"
    assert "exit 4" in (report.error_detail or "")
    assert "--no-such-option" in (report.error_detail or "")


def test_a_plugin_the_configuration_needs_is_installed_when_undeclared(
    bwrap: Backend, scratch: Path
) -> None:
    """addopts use --cov and nothing declares pytest-cov: QA installs it and says so."""
    pyproject = (
        (EXAMPLE_REPO / "pyproject.toml")
        .read_text()
        .replace('pythonpath = ["."]', 'pythonpath = ["."]\naddopts = "--cov=ranges"')
    )
    base = _repo(scratch, "base", files={"pyproject.toml": pyproject})
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)}, {"pyproject.toml": pyproject})
    report, _ = run_qa(bwrap, scratch, base, final)
    assert report.verdict == "resolved", report.error_detail
    assert report.final is not None
    assert any(
        source.startswith("pytest-cov: the pytest configuration uses --cov")
        for source in report.final.dependency_sources
    ), report.final.dependency_sources


def test_qa_stops_once_base_has_timed_out(bwrap: Backend, scratch: Path) -> None:
    hang = {"tests/test_hang.py": "import time\n\ndef test_hangs():\n    time.sleep(600)\n"}
    base = _repo(scratch, "base", files=hang)
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)}, hang)
    report, _ = run_qa(
        bwrap, scratch, base, final, limits=SandboxLimits(wall_timeout_s=3), per_test_timeout_s=300
    )
    assert (report.verdict, report.error_reason) == ("error", "timeout")
    assert report.base is not None
    assert report.base.timed_out
    assert report.final is None  # never started: the verdict was already decided
    assert report.duration_ms < 2 * 3000


def test_flaky_test_is_flagged_and_left_out(bwrap: Backend, scratch: Path) -> None:
    flaky = (
        "from pathlib import Path\n\n"
        "def test_sometimes():\n"
        "    counter = Path('runs.txt')\n"
        "    runs = int(counter.read_text()) if counter.exists() else 0\n"
        "    counter.write_text(str(runs + 1))\n"
        "    assert runs % 2 == 0\n"
    )
    final = _repo(
        scratch, "final", {"ranges/merge.py": (BUG, FIX)}, files={"tests/test_flaky.py": flaky}
    )
    base = _repo(scratch, "base", files={"tests/test_flaky.py": flaky})
    report, _ = run_qa(bwrap, scratch, base, final, reruns=1)
    flagged = {t.test_id for t in report.tests if t.flaky}
    assert flagged == {"tests/test_flaky.py::test_sometimes"}
    assert "tests/test_flaky.py::test_sometimes" not in report.pass_to_pass + report.pass_to_fail
    assert report.verdict == "resolved"


def test_declared_dependencies_are_prepared_offline_and_mounted(
    backend: Backend, scratch: Path
) -> None:
    cold_cache = scratch / "cache"
    uses_dep = (
        "import tinydep\n\ndef test_dependency_is_importable():\n    assert tinydep.VALUE == 42\n"
    )
    repos = {}
    for side in ("base", "final"):
        repos[side] = _repo(
            scratch,
            side,
            {"ranges/merge.py": (BUG, FIX)} if side == "final" else None,
            files={
                "requirements.txt": "./wheels/tinydep-0.1-py3-none-any.whl\n",
                "tests/test_dep.py": uses_dep,
            },
        )
        (repos[side] / "wheels").mkdir()
        (repos[side] / "wheels" / "tinydep-0.1-py3-none-any.whl").write_bytes(
            wheel("tinydep", "0.1", "VALUE = 42\n")
        )
    report, _ = run_qa(
        backend,
        scratch,
        repos["base"],
        repos["final"],
        dependency_network=False,
        cache_dir=cold_cache,
    )
    assert report.verdict == "resolved", report.error_detail
    outcomes = {t.test_id: (t.before, t.after) for t in report.tests}
    assert outcomes["tests/test_dep.py::test_dependency_is_importable"] == ("passed", "passed")
    # One declaration, one prepared site: the final reused the base's (cached by its hash).
    prepared = sorted((scratch / "cache").glob("env-*"))
    assert len(prepared) == 1
    assert list(prepared[0].glob("lib/python3*/site-packages/tinydep/__init__.py"))
    assert report.final is not None
    assert report.final.dependency_sources == ["requirements.txt"]
    assert (report.final.workspace_install, report.final.pytest_source) == ("none", "runner")


def test_dependencies_that_cannot_be_installed_leave_the_tests_running(
    bwrap: Backend, scratch: Path
) -> None:
    """Nothing installs (offline, a package no index has): the tests run anyway with the
    runner's pytest and the workspace's code, and the report says so."""
    requirements = {"requirements.txt": "no-such-package-prtrace==9.9.9\n"}
    base = _repo(scratch, "base", files=requirements)
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)}, requirements)
    report, _ = run_qa(bwrap, scratch, base, final, dependency_network=False)
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == [FAILING_TEST]
    assert report.final is not None
    assert report.final.pytest_source == "runner"
    assert "no dependency could be installed" in (report.final.install_detail or "")
    assert "no-such-package-prtrace" in (report.final.install_detail or "")
    (flag,) = [f for f in report.flags if f.code == "dependencies_missing"]
    assert not flag.blocking
    assert "base and final" in flag.detail


def test_container_backend_resolves_the_example(scratch: Path) -> None:
    container = select_backend("container")
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)})
    report, _ = run_qa(container, scratch, EXAMPLE_REPO, final)
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == [FAILING_TEST]


@pytest.mark.parametrize("suffix", [".tar", ".tar.gz", ".tar.zst"])
def test_archives_of_each_kind_are_accepted(bwrap: Backend, scratch: Path, suffix: str) -> None:
    final = _repo(scratch, "final", {"ranges/merge.py": (BUG, FIX)})
    plain = scratch / "final.tar"
    with tarfile.open(plain, "w") as tar:
        tar.add(final, arcname="repo-final")  # a single top-level directory
    archive = plain
    if suffix == ".tar.gz":
        archive = scratch / "final.tar.gz"
        archive.write_bytes(gzip.compress(plain.read_bytes()))
    elif suffix == ".tar.zst":
        archive = scratch / "final.tar.zst"
        archive.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    report, _ = run_qa(bwrap, scratch, EXAMPLE_REPO, archive)
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == [FAILING_TEST]


def test_preparation_has_network_and_the_test_run_has_none(bwrap: Backend, scratch: Path) -> None:
    """pip installs from a package index on the host's loopback during preparation; the
    tests, run afterwards with the installed package, cannot reach that same index."""
    index = scratch / "index"
    netdep = wheel("netdep", "0.1", "VALUE = 'from the index'\n")
    (index / "files").mkdir(parents=True)
    (index / "files" / "netdep-0.1-py3-none-any.whl").write_bytes(netdep)
    (index / "simple" / "netdep").mkdir(parents=True)
    digest = hashlib.sha256(netdep).hexdigest()
    (index / "simple" / "netdep" / "index.html").write_text(
        f'<a href="/files/netdep-0.1-py3-none-any.whl#sha256={digest}">'
        "netdep-0.1-py3-none-any.whl</a>\n"
    )
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(index))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    uses_dep = (
        "import socket\nimport netdep\n\n"
        "def test_installed():\n    assert netdep.VALUE == 'from the index'\n\n"
        "def test_index_unreachable_from_the_test_run():\n"
        f"    try:\n        socket.create_connection(('127.0.0.1', {port}), timeout=3)\n"
        "    except OSError:\n        return\n"
        "    raise AssertionError('the test run reached the network')\n"
    )
    requirements = f"--index-url http://127.0.0.1:{port}/simple/\nnetdep==0.1\n"
    try:
        base = _repo(
            scratch, "base", files={"requirements.txt": requirements, "tests/test_net.py": uses_dep}
        )
        final = _repo(
            scratch,
            "final",
            {"ranges/merge.py": (BUG, FIX)},
            files={"requirements.txt": requirements, "tests/test_net.py": uses_dep},
        )
        report, _ = run_qa(
            bwrap, scratch, base, final, dependency_network=True, cache_dir=scratch / "cache"
        )
    finally:
        server.shutdown()
        server.server_close()
    assert report.verdict == "resolved", report.error_detail
    outcomes = {t.test_id: (t.before, t.after) for t in report.tests}
    assert outcomes["tests/test_net.py::test_installed"] == ("passed", "passed")
    assert outcomes["tests/test_net.py::test_index_unreachable_from_the_test_run"] == (
        "passed",
        "passed",
    )
