"""The deps layer is what the lock file says, for the Lambda platform: rebuilt when the lock
(or the platform) changes, every package pinned with its hashes, and nothing that only the
CLI or the local cloud needs; bytecode compiled by the runtime's own Python where one is here."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest

from infra_cdk.assets import (
    LAMBDA_PYTHON_VERSION,
    ROOT,
    compile_bytecode,
    deps_layer_key,
    export_lambda_requirements,
    python_version,
    runtime_interpreter,
)

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


def test_bytecode_is_part_of_the_layer_key() -> None:
    assert deps_layer_key(bytecode=True) != deps_layer_key(bytecode=False)


def test_only_an_interpreter_of_the_runtime_version_compiles_the_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    shim = tmp_path / f"python{LAMBDA_PYTHON_VERSION}"
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    shim.symlink_to(sys.executable)  # named like the runtime's Python, but it is not
    assert python_version(str(shim)) == here
    assert (runtime_interpreter() is None) == (here != LAMBDA_PYTHON_VERSION)
    shim.unlink()
    shim.write_text(f"#!/bin/sh\necho {LAMBDA_PYTHON_VERSION}\n")
    shim.chmod(0o755)
    assert runtime_interpreter() == str(shim)


def test_compiled_bytecode_is_never_checked_against_file_times(tmp_path: Path) -> None:
    package = tmp_path / "python" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("VALUE = 1\n")
    (package / "template.py").write_text("{% if x %}\n")  # as some packages ship
    compile_bytecode(tmp_path / "python", sys.executable)
    [pyc] = (package / "__pycache__").glob("__init__.*.pyc")
    assert pyc.name == f"__init__.{sys.implementation.cache_tag}.pyc"
    flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
    assert flags == 0b01  # hash-based, unchecked (PEP 552)
    assert not list((package / "__pycache__").glob("template.*"))
