"""The repository's declared dependencies, installed in a separate preparation step.

Declarations: `requirements*.txt` at the workspace root and `[project].dependencies` in
pyproject.toml. They are installed with pip (`--target`) inside the sandbox with network
(unless disabled: then `--no-index`, so only local wheels and paths resolve) into a cache
directory keyed by the SHA-256 of the declarations, the interpreter and the backend; the
test run then mounts that directory read-only, without network.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tomllib
import uuid
from dataclasses import dataclass
from pathlib import Path

from prtrace.qa.errors import QAError
from prtrace.qa.sandbox import Sandbox, SandboxLimits, SandboxRun
from prtrace.qa.shared_dirs import READABLE, private_subdir, shared_dir


@dataclass(frozen=True)
class Declaration:
    requirement_files: list[str]  # relative to the workspace root
    pyproject_dependencies: list[str]
    fingerprint: str

    @property
    def empty(self) -> bool:
        return not self.requirement_files and not self.pyproject_dependencies


def read_declaration(workspace: Path) -> Declaration:
    digest = hashlib.sha256()
    files = sorted(
        p.name for p in workspace.glob("requirements*.txt") if p.is_file() and not p.is_symlink()
    )
    for name in files:
        text = (workspace / name).read_bytes()
        digest.update(b"file\0" + name.encode() + b"\0" + text)
        for referenced in _local_files(workspace, text):
            # A wheel, archive or -r/-c file in the workspace: its bytes are part of the key.
            digest.update(
                b"ref\0" + referenced.encode() + b"\0" + (workspace / referenced).read_bytes()
            )
    dependencies: list[str] = []
    pyproject = workspace / "pyproject.toml"
    if pyproject.is_file() and not pyproject.is_symlink():
        try:
            project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise QAError(
                "dependency_install_failed", f"pyproject.toml is not valid TOML: {error}"
            ) from None
        raw = project.get("dependencies", []) if isinstance(project, dict) else []
        if not isinstance(raw, list) or not all(isinstance(d, str) for d in raw):
            raise QAError(
                "dependency_install_failed", "[project].dependencies is not a list of strings"
            )
        dependencies = list(raw)
        for spec in dependencies:
            digest.update(b"dep\0" + spec.encode() + b"\0")
    return Declaration(files, dependencies, digest.hexdigest())


def _local_files(workspace: Path, requirements: bytes) -> list[str]:
    """Files inside the workspace that a requirements file names (local wheels, sdists,
    nested -r/-c files); symlinks and anything outside are ignored."""
    found: list[str] = []
    root = workspace.resolve()
    for line in requirements.decode(errors="replace").splitlines():
        for token in line.split("#", 1)[0].split():
            if token.startswith("-") or "://" in token:
                continue
            candidate = (workspace / token).resolve()
            if candidate.is_relative_to(root) and candidate.is_file():
                path = workspace / token
                if not path.is_symlink():
                    found.append(candidate.relative_to(root).as_posix())
    return sorted(set(found))


def _own_tree(root: Path, owner: tuple[int, int]) -> None:
    if os.geteuid() != 0:
        return
    os.lchown(root, *owner)
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            os.lchown(os.path.join(directory, name), *owner)


def _readable_tree(root: Path) -> None:
    """Readable (and, where executable, runnable) by the sandbox uid once owned by root."""
    for directory, _, files in os.walk(root):
        os.chmod(directory, READABLE)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                executable = os.stat(path).st_mode & 0o111
                os.chmod(path, READABLE if executable else READABLE & 0o666)


def prepare_dependencies(
    sandbox: Sandbox,
    workspace: Path,
    cache: Path,
    owner: tuple[int, int],
    limits: SandboxLimits,
    network: bool,
) -> Path | None:
    """The read-only dependency site for this workspace, or None when nothing is declared."""
    declaration = read_declaration(workspace)
    if declaration.empty:
        return None
    paths = sandbox.paths(workspace, cache, cache, cache)
    key = hashlib.sha256(
        f"{declaration.fingerprint}\0{paths.python}\0{sandbox.name}\0{network}".encode()
    ).hexdigest()[:24]
    target = cache / f"deps-{key}"
    if target.is_dir():
        return target
    shared_dir(cache)
    staging = private_subdir(cache, f".deps-{key}-{uuid.uuid4().hex[:8]}", 0o755)
    output = private_subdir(cache, f".out-{key}-{uuid.uuid4().hex[:8]}", 0o755)
    _own_tree(staging, owner)
    _own_tree(output, owner)
    paths = sandbox.paths(workspace, cache, staging, output)
    argv = [
        paths.python,
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        "--no-cache-dir",
        "--target",
        paths.deps,
    ]
    if not network:
        argv.append("--no-index")
    for name in declaration.requirement_files:
        argv += ["-r", f"{paths.workspace}/{name}"]
    argv += declaration.pyproject_dependencies
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",  # noqa: S108 - the sandbox's own tmpfs
        "LANG": "C.UTF-8",
    }
    if network:
        env["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    try:
        result = sandbox.run(
            SandboxRun(
                argv=argv,
                workspace=workspace,
                output=output,
                deps=staging,
                deps_writable=True,
                env=env,
                network=network,
                limits=limits,
            )
        )
        if result.timed_out or result.exit_code != 0:
            why = "timed out" if result.timed_out else f"pip exited {result.exit_code}"
            tail = result.stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise QAError("dependency_install_failed", f"{why}: " + " | ".join(tail))
        _own_tree(staging, (os.geteuid(), os.getegid()))  # the cache is read-only to runs
        _readable_tree(staging)
        try:
            staging.rename(target)
        except OSError:  # prepared concurrently: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
        return target
    finally:
        shutil.rmtree(output, ignore_errors=True)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
