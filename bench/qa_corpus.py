"""QA of the real-project corpus (tests/qa_corpus) against bare pytest, per project.

For each project and each backend that runs here:
  qa_corpus_<project>_bare_pytest_s        bare pytest on the buggy and on the original tree,
                                           summed: no sandbox, the same interpreter
                                           (/usr/bin/python3), the project installed editable
                                           with its test dependencies by uv
  qa_corpus_<project>_<backend>_s          the whole QA (buggy base, original final: check and
                                           extract both snapshots, run, compare) with a warm
                                           environment cache
  qa_corpus_<project>_<backend>_ratio      that / the bare sum (targets: 1.3 bwrap, 1.5 docker)
  qa_corpus_<project>_<backend>_cold_s     the same QA with an empty cache (the environment
                                           prepared from PyPI first)
  qa_corpus_<project>_<backend>_with_new_test_s, _with_new_test_ratio
                                           the same warm QA when the fix also adds a test
                                           file: the held run and the base-with-final-tests
                                           run happen too (four runs; no target: it shows
                                           what a fix that brings its test costs)
Every QA must be `resolved` with the corpus's FAIL_TO_PASS, and the bare runs must agree
with the corpus (tests/qa_corpus/verify_bare.py), or the bench fails. Needs root, the
sandbox setup and PyPI. `python -m bench.qa_corpus [project ...]` prints a table.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.qa import WORK, _available
from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.qa.local_inputs import store_local_snapshot
from prtrace.qa.service import QAService
from prtrace.qa.settings import BackendName, QASettings
from tests.qa_corpus.projects import BY_NAME, PROJECTS, CorpusProject
from tests.qa_corpus.sdists import materialize
from tests.qa_corpus.verify_bare import find_uv, verify

NEW_TEST = "def test_added_with_the_fix():\n    assert True\n"


def _qa_seconds(
    backend: BackendName,
    project: CorpusProject,
    trees: dict[str, Path],
    cache: Path,
    final_variant: str = "original",
) -> float:
    found = _available(backend)
    assert found is not None
    sandbox, owner = found
    with tempfile.TemporaryDirectory() as scratch:
        store = DirectoryArtifactStore(Path(scratch))
        base, final = (
            store_local_snapshot(trees[variant], store, "bench", "tr_corpus")
            for variant in ("buggy", final_variant)
        )  # the client's upload, not QA's work
        settings = QASettings(backend=backend, work_dir=WORK / "work", cache_dir=cache)
        start = time.perf_counter()
        report = QAService(sandbox, store, settings, owner).run("bench", "tr_corpus", base, final)
        elapsed = time.perf_counter() - start
    expected = sorted(project.fail_to_pass)
    if final_variant != "original":  # the added test passes on both sides
        expected = [t for t in report.fail_to_pass if t in project.fail_to_pass]
        if report.held is None:
            raise RuntimeError(f"{project.name} on {backend}: no held run with a new test")
    if report.verdict != "resolved" or report.fail_to_pass != expected:
        raise RuntimeError(
            f"{project.name} on {backend}: {report.verdict} ({report.error_reason}: "
            f"{report.error_detail}), FAIL_TO_PASS {report.fail_to_pass}"
        )
    return elapsed


def run(names: list[str] | None = None) -> dict[str, float]:
    projects = [BY_NAME[name] for name in names] if names else list(PROJECTS)
    candidates: tuple[BackendName, ...] = ("bwrap", "docker")
    backends = [name for name in candidates if _available(name) is not None]
    if "bwrap" not in backends:
        raise RuntimeError("the bwrap backend is unavailable: run .ci/sandbox-setup.sh as root")
    uv = find_uv()
    results: dict[str, float] = {}
    WORK.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=WORK, prefix="corpus-"))
    work.chmod(0o711)
    try:
        for project in projects:
            bare = verify(project, work / "bare", uv)
            if not bare.ok:
                raise RuntimeError(f"{project.name}: bare pytest disagrees: {bare.problems}")
            bare_s = bare.seconds + bare.seconds_buggy
            prefix = f"qa_corpus_{project.name.replace('-', '_')}"
            results[f"{prefix}_bare_pytest_s"] = round(bare_s, 2)
            trees = {
                v: materialize(project, work / project.name / v, v) for v in ("original", "buggy")
            }
            with_test = work / project.name / "with_new_test"
            shutil.copytree(trees["original"], with_test, symlinks=True)
            # Beside the bug's test: the environment's key (the root's layout) is unchanged.
            tests_dir = Path(project.fail_to_pass[0].split("::", 1)[0]).parent
            (with_test / tests_dir / "test_prtrace_bench_added.py").write_text(NEW_TEST)
            trees["with_new_test"] = with_test
            for backend in backends:
                cache = work / f"cache-{project.name}-{backend}"
                cold = _qa_seconds(backend, project, trees, cache)
                warm = _qa_seconds(backend, project, trees, cache)
                held = _qa_seconds(backend, project, trees, cache, "with_new_test")
                shutil.rmtree(cache, ignore_errors=True)
                results[f"{prefix}_{backend}_with_new_test_s"] = round(held, 2)
                results[f"{prefix}_{backend}_with_new_test_ratio"] = round(held / bare_s, 2)
                results[f"{prefix}_{backend}_cold_s"] = round(cold, 2)
                results[f"{prefix}_{backend}_s"] = round(warm, 2)
                results[f"{prefix}_{backend}_ratio"] = round(warm / bare_s, 2)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> None:
    results = run(sys.argv[1:])
    table = Table(
        "project",
        "bare pytest s",
        *[
            f"{b} {k}"
            for b in ("bwrap", "docker")
            for k in ("s", "ratio", "cold s", "new-test ratio")
        ],
    )
    for project in PROJECTS:
        prefix = f"qa_corpus_{project.name.replace('-', '_')}"
        if f"{prefix}_bare_pytest_s" not in results:
            continue
        row = [project.name, str(results[f"{prefix}_bare_pytest_s"])]
        for backend in ("bwrap", "docker"):
            for key in ("s", "ratio", "cold_s", "with_new_test_ratio"):
                row.append(str(results.get(f"{prefix}_{backend}_{key}", "-")))
        table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
