"""The QA task image's layout without building it (no registry here): only the packages
functions/qa_runner/requirements.txt names, the layer and the entry point at the image's
paths, the system interpreter without its own site-packages (`-S`), root (as the task
starts; its test runs drop to the sandbox uid), the `container` backend and work and cache
directories under /tmp, as the Dockerfile sets up.
The task resolves the example through S3."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from importlib import metadata
from pathlib import Path

import boto3

from prtrace.qa.runner_site import copy_distributions
from prtrace.storage_keys import artifact_key
from tests.moto_server import moto_server
from tests.sandbox.conftest import EXAMPLE_REPO, Backend

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "qa-image-layout"
FIX = ("    if current is not None and not merged:\n", "    if current is not None:\n")


def _readable(tree: Path) -> None:
    for directory, _, files in os.walk(tree):
        os.chmod(directory, 0o755)  # noqa: S103 - the sandbox uid reads what it runs
        for name in files:
            os.chmod(os.path.join(directory, name), 0o644)


def _image(root: Path) -> Path:
    """/opt/prtrace/{app,layer} and the venv's packages, as the Dockerfile copies them."""
    names = [
        line.split("==")[0]
        for line in (ROOT / "functions/qa_runner/requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    copy_distributions([metadata.distribution(name) for name in names], root / "venv-site")
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "layers/core/python/prtrace", root / "layer/prtrace", ignore=skip)
    (root / "app/functions").mkdir(parents=True)
    shutil.copyfile(ROOT / "functions/__init__.py", root / "app/functions/__init__.py")
    shutil.copytree(ROOT / "functions/qa_runner", root / "app/functions/qa_runner", ignore=skip)
    _readable(root)
    return root


def _tgz(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(directory, arcname=".")
    return buffer.getvalue()


def test_the_task_runs_from_the_image_layout_as_root_dropping_its_runs(
    bwrap: Backend, scratch: Path
) -> None:
    image = _image(scratch / "opt")
    tmp = scratch / "tmp"  # the task's writable /tmp volume
    tmp.mkdir()
    os.chmod(tmp, 0o1777)  # noqa: S103
    fixed = scratch / "fixed"
    shutil.copytree(EXAMPLE_REPO, fixed)
    merge = fixed / "ranges" / "merge.py"
    merge.write_text(merge.read_text().replace(*FIX))
    with moto_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket=BUCKET)
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": f"{image / 'app'}:{image / 'layer'}:{image / 'venv-site'}",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PRTRACE_SANDBOX_BACKEND": "container",
            "PRTRACE_QA_PYTHON": "/usr/bin/python3",
            "PRTRACE_QA_WORK_DIR": f"{tmp}/prtrace-qa/work",
            "PRTRACE_QA_CACHE_DIR": f"{tmp}/prtrace-qa/cache",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PRTRACE_TRACE_ID": "tr_image",
            "PRTRACE_BUCKET": BUCKET,
            "PRTRACE_TENANT": "acme",
        }
        for side, directory in (("BASE", EXAMPLE_REPO), ("FINAL", fixed)):
            body = _tgz(directory)
            digest = hashlib.sha256(body).hexdigest()
            key = artifact_key("acme", "tr_image", digest)
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
            env |= {
                f"PRTRACE_{side}_KEY": key,
                f"PRTRACE_{side}_SHA256": digest,
                f"PRTRACE_{side}_SIZE": str(len(body)),
                f"PRTRACE_{side}_MEDIA_TYPE": "application/gzip",
            }
        done = subprocess.run(
            ["/usr/bin/python3", "-S", "-m", "functions.qa_runner"],  # -S: no system packages
            env=env,
            cwd=image / "app",
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["verdict"] == "resolved"
        report_key = "tenants/acme/traces/tr_image/qa/report.json"
        report = json.loads(s3.get_object(Bucket=BUCKET, Key=report_key)["Body"].read())
    assert report["backend"] == "container"
    assert report["fail_to_pass"] == ["tests/test_ranges.py::test_merge_keeps_last_interval"]
