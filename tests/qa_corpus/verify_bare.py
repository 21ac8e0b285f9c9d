"""Check the corpus against bare pytest runs.

    python -m tests.qa_corpus.verify_bare [name ...] [--work DIR] [--jobs N]

For each project: unpack the original and the buggy tree, make a venv with
``uv venv --python /usr/bin/python3`` (the sandbox's interpreter), install the
project editable with its declared test dependencies (``project.install``), run
``python -m pytest -p no:cacheprovider --junitxml=... -o junit_family=xunit1
--continue-on-collection-errors`` on
both trees and check that the original passes every FAIL_TO_PASS test and the
buggy tree fails exactly those and nothing else that passed on the original.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.qa_corpus.projects import BY_NAME, FEATURES, PROJECTS, CorpusProject
from tests.qa_corpus.sdists import materialize

PYTHON = "/usr/bin/python3"
REPO = Path(__file__).resolve().parents[2]


def find_uv() -> str:
    for candidate in (os.environ.get("UV"), shutil.which("uv"), REPO / ".tools/bin/uv"):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise SystemExit("uv not found (set UV=/path/to/uv)")


def node_ids(junit_xml: Path, root: Path) -> dict[str, str]:
    """Map pytest node id -> "passed" | "failed" | "skipped" from an xunit1 report.

    The ``file`` attribute names where the test function is defined, which for an
    inherited test method is not the module that collected it, so the module is
    found as the longest prefix of ``classname`` that is a file under ``root``.
    """
    outcomes: dict[str, str] = {}
    for case in ET.parse(junit_xml).iter("testcase"):  # noqa: S314 - our own report
        classname = case.get("classname", "")
        name = case.get("name", "")
        parts = classname.split(".") if classname else []
        node = ""
        for cut in range(len(parts), 0, -1):
            module = "/".join(parts[:cut])
            for candidate in (f"{module}.py", module):
                if (root / candidate).is_file():
                    node = "::".join([candidate, *parts[cut:], name])
                    break
            if node:
                break
        if not node:  # collection errors and the like
            node = f"{case.get('file') or classname}::{name}"
        if case.find("failure") is not None or case.find("error") is not None:
            outcome = "failed"
        elif case.find("skipped") is not None:
            outcome = "skipped"
        else:
            outcome = "passed"
        if outcomes.get(node) != "failed":
            outcomes[node] = outcome
    return outcomes


@dataclass
class Result:
    project: CorpusProject
    ok: bool = False
    seconds: float = 0.0  # bare pytest on the original tree
    seconds_buggy: float = 0.0  # and on the buggy one
    problems: list[str] = field(default_factory=list)
    already_failing: list[str] = field(default_factory=list)
    observed_f2p: list[str] = field(default_factory=list)
    total: int = 0


def run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> int:
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        return subprocess.call(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)


def clean_env(venv: Path | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTEST_ADDOPTS", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
        and not k.startswith("PYTEST_")
    }
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def verify(project: CorpusProject, work: Path, uv: str) -> Result:
    result = Result(project)
    base = work / project.name
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    log = base / "log.txt"
    bad = set(project.features) - FEATURES
    if bad:
        result.problems.append(f"unknown features {sorted(bad)}")
    if list(project.fail_to_pass) != sorted(project.fail_to_pass):
        result.problems.append("fail_to_pass is not sorted")
    venv = base / "venv"
    if run([uv, "venv", "-q", "--python", PYTHON, str(venv)], base, clean_env(), log):
        result.problems.append(f"uv venv failed, see {log}")
        return result
    env = clean_env(venv) | {"PYTHONDONTWRITEBYTECODE": "1"}
    outcomes: dict[str, dict[str, str]] = {}
    for variant in ("original", "buggy"):
        root = materialize(project, base / variant, variant)
        install = [uv, "pip", "install", "--python", str(venv / "bin/python")]
        # Compiled like pip compiles the QA environment; no .pyc written by the test run,
        # as in the sandbox: the two timings compare the same work.
        install += ["--compile-bytecode", "--reinstall-package", project.distribution]
        install += project.install
        if run(install, root, env, log):
            result.problems.append(f"{variant}: install failed, see {log}")
            return result
        report = base / f"{variant}.xml"
        pytest = [str(venv / "bin/python"), "-m", "pytest", "-p", "no:cacheprovider"]
        pytest += [f"--junitxml={report}", "-o", "junit_family=xunit1"]
        pytest += ["--continue-on-collection-errors"]  # as QA runs it
        start = time.monotonic()
        run(pytest, root, env, log)
        if variant == "original":
            result.seconds = time.monotonic() - start
        else:
            result.seconds_buggy = time.monotonic() - start
        if not report.is_file():
            result.problems.append(f"{variant}: no junit report, see {log}")
            return result
        try:
            outcomes[variant] = node_ids(report, root)
        except ET.ParseError as exc:
            result.problems.append(f"{variant}: unreadable junit report ({exc}), see {log}")
            return result
    original, buggy = outcomes["original"], outcomes["buggy"]
    result.total = len(original)
    result.already_failing = sorted(n for n, o in original.items() if o == "failed")
    newly = sorted(
        n for n, o in buggy.items() if o == "failed" and original.get(n) not in {"failed"}
    )
    vanished = sorted(n for n, o in original.items() if o == "passed" and n not in buggy)
    result.observed_f2p = newly
    expected = set(project.fail_to_pass)
    if not expected:
        result.problems.append("fail_to_pass is empty")
    for node in sorted(expected):
        if original.get(node) != "passed":
            result.problems.append(f"original: {node} is {original.get(node, 'missing')}")
    if set(newly) != expected:
        result.problems.append(f"buggy: newly failing {newly} != fail_to_pass {sorted(expected)}")
    if vanished:
        result.problems.append(f"buggy: tests vanished {vanished[:10]}")
    result.ok = not result.problems
    return result


def guarded(project: CorpusProject, work: Path, uv: str) -> Result:
    try:
        return verify(project, work, uv)
    except Exception as exc:  # report it in the table rather than lose the others
        result = Result(project)
        result.problems.append(f"{type(exc).__name__}: {exc}")
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="project names (default: all)")
    parser.add_argument("--work", type=Path, help="work directory (default: a temp dir)")
    parser.add_argument("--jobs", type=int, default=1, help="projects at once (times skew)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown projects {unknown}; known: {sorted(BY_NAME)}")
    projects = [BY_NAME[n] for n in args.names] if args.names else list(PROJECTS)
    uv = find_uv()
    work = args.work or Path(tempfile.mkdtemp(prefix="qa-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda p: guarded(p, work, uv), projects))
    print(f"{'project':<18} {'version':<12} {'tests':>6} {'f2p':>4} {'pytest s':>9}  status")
    for r in results:
        status = "OK" if r.ok else "FAIL"
        print(
            f"{r.project.name:<18} {r.project.version:<12} {r.total:>6} "
            f"{len(r.project.fail_to_pass):>4} {r.seconds:>9.2f}  {status}"
        )
    for r in results:
        if r.already_failing:
            print(f"\n{r.project.name}: failing on the original: {r.already_failing}")
        if not r.ok:
            print(f"\n{r.project.name}: problems:")
            for problem in r.problems:
                print(f"  - {problem}")
            print(f"  observed fail_to_pass = {tuple(r.observed_f2p)!r}")
    print(f"\nwork directory: {work}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
