"""The run's private Python environment, prepared in a separate sandboxed step.

What goes in is read by declarations.py. Like SWE-bench's harness, the step makes a virtual
environment with the sandbox's interpreter and installs, in one pip resolution, the declared
test requirements and the workspace project itself (editable, with its extras), so tests
import the workspace code and never a released copy a test dependency dragged in. When the
project cannot be built, its requirements are installed without it and the test run puts
`src/` first on the path instead (`workspace_install: src_path`, with pip's reason).

The runner's pytest (runner_site.py) is appended to the environment's path by a `.pth` file,
so it is used only when the environment has no pytest of its own: a repository that
declares (or pins) pytest runs its own.

Installs run with network (unless disabled: then `--no-index`, so only local wheels and
paths resolve), from PyPI or the configured index (package_index.py: on AWS a private
proxy, whose token only this step gets and no output keeps), into a cache directory keyed
by the SHA-256 of everything that was read (including the sources a build compiles:
declarations.build_inputs_digest), the interpreter, the backend, the runner and the index's
URL; the test runs mount it read-only, without network.

What the install builds inside the workspace (an editable install compiles extensions in
place, writes `.egg-info` and version files) is kept with the environment and laid into
every workspace that uses it (`apply_build_outputs`), so the other snapshot, the held and
the overlay workspaces import the same build, never a tree without it.

When nothing can be installed (an unreachable build requirement, coverage tooling offline),
the tests still run, with the runner's pytest and the code imported from the workspace;
`install_detail` says so and the report carries the `dependencies_missing` flag.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from prtrace.qa.declarations import Declaration, read_declaration
from prtrace.qa.errors import QAError
from prtrace.qa.package_index import PackageIndex
from prtrace.qa.report import PytestSource, WorkspaceInstall
from prtrace.qa.sandbox import Sandbox, SandboxLimits, SandboxResult, SandboxRun
from prtrace.qa.shared_dirs import READABLE, private_subdir, shared_dir

_STATE_FILE: Final = "prtrace-environment.json"
_BUILD_DIR: Final = "workspace-build"  # what the install wrote into the workspace
_BUILD_OUTPUTS_CAP: Final = 512 * 1024 * 1024
_RUNNER_PTH: Final = "zzz-prtrace-runner.pth"  # sorted last: the lowest priority on sys.path
# Makes the environment with the sandbox's own interpreter, then runs that interpreter's
# pip against it (`pip --python`): no pip inside the environment, nothing from the host.
_BOOTSTRAP: Final = (
    "import runpy, sys, venv\n"
    "target = sys.argv[1]\n"
    "venv.create(target, with_pip=False, symlinks=True)\n"
    "sys.argv = ['pip', '--python', target + '/bin/python', *sys.argv[2:]]\n"
    "runpy.run_module('pip', run_name='__main__', alter_sys=True)\n"
)


@dataclass(frozen=True)
class TestSetup:
    """What a test run needs from preparation: the environment (None: the runner's pytest
    alone), how the workspace is importable, and the repository's own pytest arguments."""

    __test__ = False

    environment: Path | None = None  # host directory, read-only to test runs
    workspace_install: WorkspaceInstall = "none"
    pytest_source: PytestSource = "runner"
    install_detail: str | None = None
    sources: list[str] = field(default_factory=list)
    pytest_args: list[str] = field(default_factory=list)
    build_outputs: list[str] = field(default_factory=list)  # relative to the workspace
    build_dir: Path | None = None  # where the environment keeps them
    dependencies_missing: bool = False


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


def _site_packages(environment: Path) -> Path | None:
    found = sorted(environment.glob("lib/python3*/site-packages"))
    return found[0] if found else None


def _tail(result: SandboxResult, index: PackageIndex | None = None, lines: int = 3) -> str:
    """pip's own ERROR lines (also those of a failed build step), else the output's tail;
    never the index's token (a report keeps this)."""
    why = "timed out" if result.timed_out else f"pip exited {result.exit_code}"
    text = (result.stdout + b"\n" + result.stderr).decode(errors="replace")
    if index is not None:
        text = index.redact(text)
    found = text.splitlines()
    errors = [line.strip() for line in found if line.strip().startswith("ERROR")]
    picked = errors[:lines] or [line.strip() for line in found if line.strip()][-lines:]
    return f"{why}: " + " | ".join(picked)


def prepare_dependencies(
    sandbox: Sandbox,
    workspace: Path,
    cache: Path,
    owner: tuple[int, int],
    limits: SandboxLimits,
    network: bool,
    runner_site: Path,
    index: PackageIndex | None = None,
) -> TestSetup:
    """The test setup for this workspace; an environment only when something is declared.
    `index`: where pip installs from when there is network (None: PyPI)."""
    where = sandbox.paths(workspace, runner_site, cache, cache)
    declaration = read_declaration(workspace, where.workspace)
    if declaration.empty:
        return TestSetup(pytest_args=declaration.pytest_args)
    key = hashlib.sha256(
        "\0".join(
            [
                "env-v3",
                declaration.fingerprint,
                where.python,
                where.workspace,
                where.runner_site,
                sandbox.name,
                str(network),
                # The index resolved from, never its token (new with each task).
                *([index.url] if index is not None and network else []),
            ]
        ).encode()
    ).hexdigest()[:24]
    target = cache / f"env-{key}"
    state = target / _STATE_FILE
    if state.is_file():
        return _load(target)
    shared_dir(cache)
    staging = private_subdir(cache, f".env-{key}-{uuid.uuid4().hex[:8]}", 0o755)
    output = private_subdir(cache, f".out-{key}-{uuid.uuid4().hex[:8]}", 0o755)
    try:
        _install(
            sandbox,
            workspace,
            declaration,
            staging,
            output,
            owner,
            limits,
            network,
            runner_site,
            index if network else None,
        )
        if json.loads((staging / _STATE_FILE).read_text()).get("dependencies_missing"):
            return _load(staging)  # not cached: the index may answer next time
        _own_tree(staging, (os.geteuid(), os.getegid()))  # the cache is read-only to runs
        _readable_tree(staging)
        try:
            staging.rename(target)
        except OSError:  # prepared concurrently: keep theirs
            shutil.rmtree(staging, ignore_errors=True)
        return _load(target)
    finally:
        shutil.rmtree(output, ignore_errors=True)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _load(target: Path) -> TestSetup:
    values = json.loads((target / _STATE_FILE).read_text())
    environment = target if _site_packages(target) is not None else None
    build_dir = target / _BUILD_DIR if (target / _BUILD_DIR).is_dir() else None
    return TestSetup(environment=environment, build_dir=build_dir, **values)


def _listing(root: Path) -> dict[str, tuple[int, int]]:
    """Regular files by relative path with size and mtime (links and .git left out)."""
    found: dict[str, tuple[int, int]] = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".git" and not os.path.islink(Path(directory, d))]
        for name in files:
            path = Path(directory, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                found[path.relative_to(root).as_posix()] = (info.st_size, info.st_mtime_ns)
    return found


def _keep_build_outputs(
    workspace: Path, before: dict[str, tuple[int, int]], staging: Path
) -> list[str]:
    """Copy what the install added or changed in the workspace into the environment."""
    kept: list[str] = []
    budget = _BUILD_OUTPUTS_CAP
    for relative, info in sorted(_listing(workspace).items()):
        if before.get(relative) == info or "__pycache__" in relative.split("/"):
            continue
        if info[0] > budget:
            continue
        budget -= info[0]
        target = staging / _BUILD_DIR / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(workspace / relative, target, follow_symlinks=False)
        shutil.copymode(workspace / relative, target, follow_symlinks=False)
        kept.append(relative)
    return kept


def apply_build_outputs(setup: TestSetup, workspace: Path, owner: tuple[int, int]) -> int:
    """Lay the environment's build outputs into a workspace that lacks them (never over a
    file the snapshot has, never through a link). Returns how many were laid."""
    if setup.build_dir is None:
        return 0
    laid = 0
    for relative in setup.build_outputs:
        target = workspace / relative
        if os.path.lexists(target):
            continue
        parent = workspace
        for part in PurePosixPath(relative).parts[:-1]:
            parent = parent / part
            if not os.path.lexists(parent):
                os.mkdir(parent)
                if os.geteuid() == 0:
                    os.lchown(parent, *owner)
            elif not stat.S_ISDIR(os.lstat(parent).st_mode):
                break
        else:
            shutil.copyfile(setup.build_dir / relative, target, follow_symlinks=False)
            shutil.copymode(setup.build_dir / relative, target, follow_symlinks=False)
            if os.geteuid() == 0:
                os.lchown(target, *owner)
            laid += 1
    return laid


def _install(
    sandbox: Sandbox,
    workspace: Path,
    declaration: Declaration,
    staging: Path,
    output: Path,
    owner: tuple[int, int],
    limits: SandboxLimits,
    network: bool,
    runner_site: Path,
    index: PackageIndex | None,
) -> None:
    """Writes the environment and its state file into `staging`."""
    paths = sandbox.paths(workspace, runner_site, staging, output)
    common = [f"--{flag}" for flag in ("no-input", "disable-pip-version-check", "no-cache-dir")]
    if not network:
        common.append("--no-index")
    requirements: list[str] = []
    for name in declaration.requirement_files:
        requirements += ["-r", f"{paths.workspace}/{name}"]
    for name in declaration.constraint_files:
        requirements += ["-c", f"{paths.workspace}/{name}"]
    requirements += declaration.requirements
    if declaration.names_pytest():
        requirements.append("pytest-timeout")  # one compatible with the repository's pytest
    attempts: list[tuple[WorkspaceInstall, list[str]]] = []
    if declaration.installable:
        extras = f"[{','.join(declaration.extras)}]" if declaration.extras else ""
        attempts.append(("editable", [*requirements, "-e", f"{paths.workspace}{extras}"]))
    attempts.append(
        ("src_path" if declaration.installable else "none",
         [*requirements, *declaration.project_requirements])
    )  # fmt: skip
    failures: list[str] = []
    before = _listing(workspace)
    for mode, specs in attempts:
        _clear(staging)  # what a failed attempt left
        if not specs:  # the build failed and nothing else is declared: no environment
            _write_state(staging, declaration, mode, "runner", failures)
            return
        _own_tree(staging, owner)
        _own_tree(output, owner)
        result = sandbox.run(
            SandboxRun(
                argv=[paths.python, "-c", _BOOTSTRAP, paths.deps, "install", *common, *specs],
                workspace=workspace,
                output=output,
                deps=staging,
                deps_writable=True,
                env=_prepare_env(network, index),
                network=network,
                limits=limits,
            )
        )
        if result.timed_out or result.exit_code != 0:
            failures.append(f"{mode}: {_tail(result, index)}")
            if result.timed_out:
                break
            continue
        site = _site_packages(staging)
        if site is None:
            raise QAError("infra_error", "the prepared environment has no site-packages")
        (site / _RUNNER_PTH).write_text(paths.runner_site + "\n")
        has_pytest = (site / "pytest" / "__init__.py").is_file()
        outputs = _keep_build_outputs(workspace, before, staging)
        _write_state(
            staging, declaration, mode, "repository" if has_pytest else "runner", failures, outputs
        )
        return
    if any("timed out" in failure for failure in failures):
        raise QAError("dependency_install_failed", "; ".join(failures))
    # Nothing installs: run the tests anyway, importing the code from the workspace.
    _clear(staging)
    mode = "src_path" if declaration.installable else "none"
    _write_state(staging, declaration, mode, "runner", failures, missing=True)


def _write_state(
    staging: Path,
    declaration: Declaration,
    mode: WorkspaceInstall,
    pytest_source: PytestSource,
    failures: list[str],
    outputs: list[str] | None = None,
    missing: bool = False,
) -> None:
    detail = None
    if missing:
        detail = (
            "no dependency could be installed; the tests run with the runner's pytest alone, "
            f"importing the code from the workspace: {'; '.join(failures)}"
        )
    elif failures:
        detail = (
            "the project could not be installed; its tests import it from src/ (or the "
            f"root) instead: {failures[0]}"
        )
    state = {
        "workspace_install": mode,
        "pytest_source": pytest_source,
        "install_detail": detail,
        "sources": declaration.sources,
        "pytest_args": declaration.pytest_args,
        "build_outputs": outputs or [],
        "dependencies_missing": missing,
    }
    (staging / _STATE_FILE).write_text(json.dumps(state))


def _clear(directory: Path) -> None:
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _prepare_env(network: bool, index: PackageIndex | None = None) -> dict[str, str]:
    """The dependency step's variables; with an index, its URL with the token (in the
    environment, not on the command line, which pip may echo in an error)."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": "/tmp",  # noqa: S108 - the sandbox's own tmpfs
        "TMPDIR": "/tmp",  # noqa: S108
        "LANG": "C.UTF-8",
    }
    if network:
        env["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    if network and index is not None:
        env["PIP_INDEX_URL"] = index.pip_url()
        if index.plain_http:  # a proxy on a private network; pip ignores plain HTTP otherwise
            env["PIP_TRUSTED_HOST"] = index.host
    return env
