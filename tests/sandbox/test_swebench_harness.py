"""SWE-bench's own evaluation harness (swebench from PyPI, pinned) grades exported instances
of real projects of the QA corpus in Docker: the gold patch `resolved`, a patch that applies
and fixes nothing unresolved.

Per project: the instance exactly as `prtrace export` writes it (`swebench_instance`: the
buggy tree committed as base_commit, the fix as the trace's patch, the QA report's
FAIL_TO_PASS as targets; test_eval_script.py builds them), and a local image for it, since
no registry is reachable: from prtrace's offline QA image, the repository's test
dependencies installed from PyPI (the corpus's install arguments) into a venv first on
PATH, the repository at base_commit in /testbed. The harness's `run_evaluation` runs (its
`main`, as its command line calls it) from a venv of its own, and its report files are what
is checked.

Slow parts are cached between runs: the harness's venv in the setup cache (as the package
proxy's install is), each project's environment image under a tag keyed by its inputs; only
the layer holding the repository's history (a new commit each run) is built per run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

from prtrace.dataset.rows import TraceBundle, export_json, swebench_instance
from prtrace.qa.dependencies import TestSetup
from tests.factories import trace_metadata
from tests.judge_factories import document
from tests.qa_corpus.projects import BY_NAME, CorpusProject
from tests.qa_corpus.verify_bare import clean_env, find_uv
from tests.sandbox.conftest import select_backend
from tests.sandbox.package_proxy import HOST_CA_BUNDLE, SETUP_CACHE
from tests.sandbox.test_eval_script import _instance, _report

SWEBENCH_VERSION: Final = "5.0.2"
HARNESS_VENV: Final = SETUP_CACHE / f"swebench-{SWEBENCH_VERSION}"
# A flat layout whose fix also changes tests (the script applies a test patch), and a src
# layout.
PROJECTS: Final = ("freezegun", "itsdangerous")
ENV_IMAGE: Final = "prtrace-swebench-env"  # :<project>-<inputs' digest>
# A prediction that applies and fixes nothing: a new file no test reads.
NO_FIX: Final = (
    "diff --git a/NO_FIX.txt b/NO_FIX.txt\n"
    "new file mode 100644\n"
    "--- /dev/null\n"
    "+++ b/NO_FIX.txt\n"
    "@@ -0,0 +1 @@\n"
    "+this changes nothing the tests read\n"
)
# What the project's editable install needs in the image: a venv with the repository's
# test dependencies (pip of the image's Python installs into it), first on PATH.
ENV_DOCKERFILE: Final = """\
FROM {base}
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
RUN /usr/bin/python3 -m venv --without-pip /opt/testbed-env
ENV PATH=/opt/testbed-env/bin:$PATH
COPY testbed /testbed
WORKDIR /testbed
RUN PIP_CERT=/etc/ssl/certs/host-ca.crt /usr/bin/python3 -m pip \
  --python /opt/testbed-env/bin/python install --quiet --no-cache-dir {install}
"""
# The harness's container runs `tail -f /dev/null` as PID 1, which ignores SIGTERM: without
# SIGKILL, its `docker stop --time=15` waits 15 s per instance.
INSTANCE_DOCKERFILE: Final = "FROM {env}\nCOPY git /testbed/.git\nSTOPSIGNAL SIGKILL\n"
# What `python -m swebench.harness.run_evaluation` runs with its parsed arguments, once per
# set of predictions in one process (the harness's imports take ~10 s here).
HARNESS_DRIVER: Final = """
import sys
from swebench.harness.run_evaluation import main
dataset, report_dir, runs = sys.argv[1], sys.argv[2], sys.argv[3:]
for predictions, run_id in zip(runs[::2], runs[1::2]):
    main(dataset_name=dataset, split="test", instance_ids=None, predictions_path=predictions,
         max_workers=2, open_file_limit=4096, run_id=run_id, timeout=600,
         rewrite_reports=False, modal=False, report_dir=report_dir)
"""


def _run(
    argv: list[str], timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )
    assert done.returncode == 0, f"{' '.join(argv[:4])}: {(done.stdout + done.stderr)[-4000:]}"
    return done.stdout


def harness_python() -> Path:
    """The venv's Python with swebench installed by uv (made once into the setup cache)."""
    python = HARNESS_VENV / "bin" / "python"
    if python.is_file():
        found = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('swebench'))"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if found.stdout.strip() == SWEBENCH_VERSION:
            return python
        shutil.rmtree(HARNESS_VENV)  # its interpreter is gone, say
    staging = SETUP_CACHE / f".swebench-{uuid.uuid4().hex[:8]}"
    uv = find_uv()
    # Relocatable: made in a staging directory, moved in place whole.
    _run([uv, "venv", "-q", "--relocatable", "--python", sys.executable, str(staging)], 120)
    _run(
        [uv, "pip", "install", "-q", "--python", str(staging / "bin" / "python"),
         f"swebench=={SWEBENCH_VERSION}"],
        600, env=clean_env(),
    )  # fmt: skip
    try:
        staging.rename(HARNESS_VENV)
    except OSError:  # made concurrently: keep that one
        shutil.rmtree(staging, ignore_errors=True)
    return python


def _digest(root: Path, extra: str) -> str:
    """Of every file under `root` (path, mode, bytes) and `extra`."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"\0{path.relative_to(root)}\0{path.stat().st_mode:o}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def environment_image(project: CorpusProject, repo: Path, base_image: str, work: Path) -> str:
    """The image of the repository's tree (no history) with its test dependencies: built
    once per set of inputs, older tags of the project removed."""
    context = work / f"env-{project.name}"
    shutil.copytree(repo, context / "testbed", ignore=shutil.ignore_patterns(".git"))
    shutil.copyfile(HOST_CA_BUNDLE, context / "host-ca.crt")
    dockerfile = ENV_DOCKERFILE.format(base=base_image, install=" ".join(project.install))
    (context / "Dockerfile").write_text(dockerfile)
    base_id = _run(["docker", "image", "inspect", "-f", "{{.Id}}", base_image], 60)
    tag = f"{ENV_IMAGE}:{project.name}-{_digest(context, base_id)}"
    listed = ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", ENV_IMAGE]
    existing = _run(listed, 60).split()
    if tag not in existing:
        _run(["docker", "build", "-q", "--force-rm", "-t", tag, str(context)], 900)
    for stale in existing:
        if stale != tag and stale.startswith(f"{ENV_IMAGE}:{project.name}-"):
            subprocess.run(["docker", "image", "rm", stale], capture_output=True, check=False)
    return tag


def instance_image(env_image: str, repo: Path, name: str, work: Path) -> str:
    """The environment image with the repository's history in /testbed: base_commit."""
    context = work / f"instance-{name}"
    context.mkdir()
    shutil.copytree(repo / ".git", context / "git")
    (context / "Dockerfile").write_text(INSTANCE_DOCKERFILE.format(env=env_image))
    _run(["docker", "build", "-q", "--force-rm", "-t", name, str(context)], 300)
    return name


def exported_instance(project: CorpusProject, work: Path) -> tuple[dict[str, Any], Path]:
    """The instance `prtrace export` writes for the fix, and the repository at base_commit."""
    repo, base_commit, patch, test_patch, fail_to_pass = _instance(project, work / project.name)
    metadata = trace_metadata()
    metadata["repository"] = {
        "url": f"https://github.com/corpus/{project.name}.git",
        "base_commit": base_commit,
    }
    # The image's environment: the repository installed editable with its own pytest.
    install = project.install
    declared = [install[i + 1] for i, arg in enumerate(install) if arg == "-r"]
    setup = TestSetup(workspace_install="editable", pytest_source="repository", sources=declared)
    bundle = TraceBundle(
        view={},
        document=document([], trace_id=f"tr_{project.name.replace('-', '_')}", **metadata),
        qa_report=_report(fail_to_pass, setup),
        judge_result=None,
        patch=patch + test_patch,
        patch_source="snapshots",
    )
    instance = json.loads(export_json(swebench_instance(bundle)))
    assert instance["patch"] == patch
    assert instance["test_patch"] == test_patch
    assert instance["eval_script"], instance["eval_script_reason"]
    return instance, repo


def imaged_instance(
    project: CorpusProject, base_image: str, work: Path, tag: str
) -> dict[str, Any]:
    """The exported instance, its `image` set to `tag`, built for it."""
    instance, repo = exported_instance(project, work / "trees")
    env_image = environment_image(project, repo, base_image, work)
    instance["image"] = instance_image(env_image, repo, tag, work)
    return instance


def run_harness(python: Path, work: Path, instances: Path, runs: dict[str, str]) -> None:
    """The harness on `instances`, once per run id → predictions (a file, or `gold`); its
    logs under work/logs, its run reports in work/reports."""
    pairs = [arg for run_id, predictions in runs.items() for arg in (predictions, run_id)]
    argv = [str(python), "-c", HARNESS_DRIVER, str(instances), str(work / "reports"), *pairs]
    _run(argv, 900, cwd=work, env=clean_env())


def run_report(work: Path, model: str, run_id: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((work / "reports" / f"{model}.{run_id}.json").read_text())
    return loaded


def instance_report(work: Path, model: str, run_id: str, instance_id: str) -> dict[str, Any]:
    path = work / "logs" / "run_evaluation" / run_id / model / instance_id / "report.json"
    loaded: dict[str, Any] = json.loads(path.read_text())[instance_id]
    return loaded


def test_swebench_grades_exported_instances_in_docker(scratch: Path, pypi: str) -> None:
    base_image = select_backend("docker").settings().docker_image  # or skip/fail as required
    tags = {name: f"prtrace-swebench-{name}:{uuid.uuid4().hex[:8]}" for name in PROJECTS}
    try:
        # Independent, and mostly waiting on PyPI when not cached: made side by side.
        with ThreadPoolExecutor(max_workers=1 + len(PROJECTS)) as pool:
            harness = pool.submit(harness_python)
            made = [
                pool.submit(imaged_instance, BY_NAME[name], base_image, scratch, tag)
                for name, tag in tags.items()
            ]
            python = harness.result()
            instances = [future.result() for future in made]
        dataset = scratch / "instances.jsonl"
        dataset.write_bytes(b"".join(export_json(i) + b"\n" for i in instances))
        no_fix = scratch / "no-fix.json"
        ids = sorted(i["instance_id"] for i in instances)
        predictions = [
            {"instance_id": i, "model_name_or_path": "no-fix", "model_patch": NO_FIX} for i in ids
        ]
        no_fix.write_text(json.dumps(predictions))

        run_harness(
            python, scratch, dataset, {"prtrace-gold": "gold", "prtrace-no-fix": str(no_fix)}
        )
    finally:
        for tag in tags.values():
            subprocess.run(["docker", "image", "rm", tag], capture_output=True, check=False)

    gold = run_report(scratch, "gold", "prtrace-gold")
    assert gold["resolved_ids"] == ids, gold
    assert gold["completed_ids"] == ids, gold
    assert gold["error_ids"] == gold["unstopped_containers"] == [], gold
    unfixed = run_report(scratch, "no-fix", "prtrace-no-fix")
    assert unfixed["unresolved_ids"] == ids, unfixed
    assert unfixed["resolved_ids"] == unfixed["error_ids"] == [], unfixed
    assert unfixed["unstopped_containers"] == [], unfixed
    for instance in instances:
        instance_id, fail_to_pass = instance["instance_id"], instance["FAIL_TO_PASS"]
        fixed = instance_report(scratch, "gold", "prtrace-gold", instance_id)
        assert (fixed["patch_successfully_applied"], fixed["resolved"]) == (True, True), fixed
        assert fixed["tests_status"]["FAIL_TO_PASS"] == {
            "success": fail_to_pass,
            "failure": [],
        }, fixed
        left = instance_report(scratch, "no-fix", "prtrace-no-fix", instance_id)
        assert (left["patch_successfully_applied"], left["resolved"]) == (True, False), left
        assert left["tests_status"]["FAIL_TO_PASS"] == {
            "success": [],
            "failure": fail_to_pass,
        }, left
