"""Lambda code and layer directories, staged locally (no Docker bundling: no registry is
reachable from the build machines, and plain directories keep asset hashes stable).

- function code: the `functions/` package (handlers only; the QA runner is a container);
- core layer:    `layers/core` as is (`python/prtrace`);
- deps layer:    third-party packages for the Lambda platform, from the lock file;
- QA image:      the build context of functions/qa_runner/Dockerfile (only what it copies).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
BUILD: Final = ROOT / ".build"
CORE_LAYER_DIR: Final = ROOT / "layers" / "core"
LAMBDA_PYTHON_VERSION: Final = "3.14"
LAMBDA_PLATFORM: Final = "aarch64-manylinux2014"
_NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "qa_runner", "openapi.json")


def stage_function_code() -> Path:
    """Copy `functions/` into a directory whose root is the Lambda package root.

    The directory is named by the content it holds and moved into place whole, so
    concurrent synths (a test run beside `make local`) never see each other's half copy.
    """
    with tempfile.TemporaryDirectory(dir=_build_dir()) as scratch:
        staged = Path(scratch) / "code"
        shutil.copytree(ROOT / "functions", staged / "functions", ignore=_NOT_SHIPPED)
        return _place(staged, "lambda-code")


# What functions/qa_runner/Dockerfile copies, relative to the repository root; staging only
# these keeps the image's asset hash (and the deploy-time build) independent of the rest.
QA_IMAGE_DOCKERFILE: Final = "functions/qa_runner/Dockerfile"
_QA_IMAGE_SOURCES: Final = (
    "functions/__init__.py",
    "functions/qa_runner",
    "layers/core/python/prtrace",
)


EXPORT_IMAGE_DOCKERFILE: Final = "functions/export_job/Dockerfile"
_EXPORT_IMAGE_SOURCES: Final = (
    "functions/__init__.py",
    "functions/export_job",
    "layers/core/python/prtrace",
)


def stage_qa_image_context() -> Path:
    """The QA container's Docker build context, content-named like the function code."""
    return _stage_image_context(_QA_IMAGE_SOURCES, "qa-image")


def stage_export_image_context() -> Path:
    """The dataset export task's Docker build context."""
    return _stage_image_context(_EXPORT_IMAGE_SOURCES, "export-image")


def _stage_image_context(sources: tuple[str, ...], name: str) -> Path:
    with tempfile.TemporaryDirectory(dir=_build_dir()) as scratch:
        staged = Path(scratch) / "context"
        for relative in sources:
            source, target = ROOT / relative, staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(
                    source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
                )
            else:
                shutil.copy2(source, target)
        return _place(staged, name)


def _place(staged: Path, kind: str) -> Path:
    target = BUILD / f"{kind}-{_tree_digest(staged)[:16]}"
    if not target.exists():
        try:
            staged.rename(target)
        except OSError:  # another synth placed the same content first
            if not target.exists():
                raise
    return target


def _build_dir() -> Path:
    BUILD.mkdir(exist_ok=True)
    return BUILD


def _tree_digest(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# Packages no function imports (the CLI's terminal UI, the local Docker client): pruned from
# the layer with every dependency only they need. boto3 stays: functions run the pin tested.
NOT_IN_LAMBDAS: Final = ("typer", "rich", "docker")


def deps_layer_key(lock: bytes | None = None, *, bytecode: bool = False) -> str:
    """What the deps layer is built from: the lock file, the target platform and Python,
    what is pruned, and whether it carries bytecode. A change to any of them is a new
    layer directory, built afresh."""
    digest = hashlib.sha256(lock if lock is not None else (ROOT / "uv.lock").read_bytes())
    digest.update(f"\0{LAMBDA_PLATFORM}\0{LAMBDA_PYTHON_VERSION}\0".encode())
    digest.update(" ".join(NOT_IN_LAMBDAS).encode())
    digest.update(b"\0bytecode" if bytecode else b"")
    return digest.hexdigest()[:16]


def runtime_interpreter() -> str | None:
    """A CPython of the Lambda runtime's version on this machine (on PATH, or one uv
    manages: `make deploy` asks uv for it), or None. Nothing is downloaded here."""
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    found = subprocess.run(
        [uv, "python", "find", "--no-project", "--python-preference", "only-managed",
         LAMBDA_PYTHON_VERSION],
        capture_output=True, text=True, check=False,
        env=os.environ | {"UV_PYTHON_DOWNLOADS": "never"},
    )  # fmt: skip
    for candidate in (shutil.which(f"python{LAMBDA_PYTHON_VERSION}"), found.stdout.strip()):
        if candidate and python_version(candidate) == LAMBDA_PYTHON_VERSION:
            return candidate
    return None


def python_version(interpreter: str) -> str | None:
    try:
        answer = subprocess.run(
            [interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return answer.stdout.strip()


def compile_bytecode(directory: Path, interpreter: str) -> None:
    """Compile every module for `interpreter`, as hash-checked-never pyc files: the layer is
    read-only at run time (nothing compiled on a cold start could be kept), and a zip's
    file times are not the build's, which timestamp-checked pyc files would compare.
    Files that are not Python 3 (templates, test data of some packages) keep no pyc."""
    subprocess.run(
        [interpreter, "-m", "compileall", "-qq", "-j", "0",
         "--invalidation-mode", "unchecked-hash", str(directory)],
        check=False,
    )  # fmt: skip


def deps_layer_dir(*, build: bool) -> Path:
    """The deps layer; `build=False` stages an empty placeholder (local cloud and tests take
    third-party packages from the project environment instead)."""
    if not build:
        target = BUILD / "lambda-deps-placeholder"
        python_dir = target / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        (python_dir / "README.txt").write_text(
            "Placeholder: third-party packages come from the local environment.\n"
        )
        return target
    interpreter = runtime_interpreter()
    key = deps_layer_key(bytecode=interpreter is not None)
    target = BUILD / f"lambda-deps-{key}"
    if not (target / ".complete").exists():
        _install_deps(target / "python", BUILD / f"lambda-requirements-{key}.txt")
        if interpreter is None:
            warnings.warn(
                f"no Python {LAMBDA_PYTHON_VERSION} here: the deps layer ships without "
                "bytecode (each cold start compiles what it imports); `make deploy` "
                "installs one with uv",
                stacklevel=2,
            )
        else:
            compile_bytecode(target / "python", interpreter)
        (target / ".complete").write_text(key + "\n")
    return target


def export_lambda_requirements(uv: str) -> str:
    """The layer's requirements from the lock file, each with its hashes."""
    exported = subprocess.run(
        [uv, "export", "--frozen", "--no-dev", "--extra", "server", "--no-emit-project",
         *(f"--prune={name}" for name in NOT_IN_LAMBDAS)],
        cwd=ROOT, check=True, capture_output=True, text=True,
    )  # fmt: skip
    return exported.stdout


def _install_deps(python_dir: Path, requirements: Path) -> None:
    BUILD.mkdir(exist_ok=True)
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    requirements.write_text(export_lambda_requirements(uv))
    if python_dir.exists():
        shutil.rmtree(python_dir)
    # Bytecode is compiled afterwards, by the runtime's own interpreter (deps_layer_dir).
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--no-deps", "--require-hashes",
         "--python-platform", LAMBDA_PLATFORM, "--python-version", LAMBDA_PYTHON_VERSION,
         "--only-binary", ":all:", "--target", str(python_dir), "-r", str(requirements)],
        check=True,
    )  # fmt: skip
