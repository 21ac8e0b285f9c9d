"""The deps layer is what the lock file says, for the Lambda platform: rebuilt when the lock
(or the platform) changes, every package pinned with its hashes, and nothing that only the
CLI or the local cloud needs."""

from __future__ import annotations

import re
import shutil

from infra_cdk.assets import ROOT, deps_layer_key, export_lambda_requirements

UV = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")


def test_a_new_lock_is_a_new_layer() -> None:
    lock = (ROOT / "uv.lock").read_bytes()
    assert deps_layer_key() == deps_layer_key(lock)
    assert deps_layer_key(lock + b"\n# one more pin\n") != deps_layer_key(lock)


def test_the_layer_requirements_carry_hashes_and_leave_out_the_cli_closure() -> None:
    exported = export_lambda_requirements(UV)
    blocks = re.split(
        r"\n(?=[a-z0-9])", exported.split("\n", 1)[1] if exported.startswith("#") else exported
    )
    pins = [b for b in blocks if "==" in b.split("\n", 1)[0]]
    names = {b.split("==", 1)[0] for b in pins}
    assert pins
    assert all("--hash=sha256:" in b for b in pins), [b for b in pins if "--hash" not in b][:3]
    # What the functions import, boto3 included (the pin the tests ran, not the runtime's).
    assert {"aws-lambda-powertools", "pydantic", "orjson", "openai", "boto3", "botocore"} <= names
    # The CLI's terminal packages, the Docker client, and what only they depend on.
    assert not names & {"typer", "rich", "docker", "pygments", "markdown-it-py", "mdurl"}
