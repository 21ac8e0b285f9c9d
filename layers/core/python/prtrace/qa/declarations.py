"""Where a repository declares how its tests are installed and run, read without running
any of its code.

In this order (everything found is combined; docs/qa.md documents it):
1. `[tool.prtrace.qa]` in pyproject.toml: `extras`, `requirements` (files), `dependency_groups`
   and `pytest_args`. When it names any extras, files or groups, nothing below is looked for.
2. Requirements files at the root whose names hold `requirements` (`requirements.txt`,
   `requirements-test.txt`, `test-requirements.txt`, `dev.requirements.txt`, ...), except
   those for other tools (`mypy`, `lint`, `docs`, `typing`, ...: OTHER_TOOLS); in a
   `requirements/` folder, the files whose names start with `test` (`test.txt`,
   `tests.txt`, `testing.txt`, ...), else those starting with `dev`.
3. Extras of `[project.optional-dependencies]` or setup.cfg `[options.extras_require]` named
   `test`, `tests` or `testing`, else `dev`.
4. `[dependency-groups]` (PEP 735) named the same way.
5. tox.ini `[testenv] deps` (factor-conditioned lines and substitutions other than
   `{toxinidir}` are left out), and its `extras` when no extra is test-named.
6. pytest plugins the pytest configuration needs (`addopts` options such as `--cov`, ini
   keys such as `asyncio_mode`: CONFIG_PLUGINS) and nothing above declares: installed,
   and named in the sources.
The project itself is installed (editable) when it can be built: pyproject.toml has
`[build-system]`, or there is a setup.py. Its `[project].dependencies` then come with it;
otherwise they are installed as plain requirements.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from dependency_groups import resolve as resolve_groups
from packaging.requirements import InvalidRequirement, Requirement

from prtrace.qa.errors import QAError

TEST_NAMES: Final = ("test", "tests", "testing")
FALLBACK_NAME: Final = "dev"
EXPLICIT_KEYS: Final = ("extras", "requirements", "dependency_groups", "pytest_args")
_FACTOR_LINE = re.compile(r"^[\w.,!-]+\s*:\s")  # tox "py311,py312: dep"
# Requirements files for tools other than the tests (by a word of their name).
OTHER_TOOLS: Final = frozenset(
    {"mypy", "lint", "linting", "doc", "docs", "typing", "types", "flake8", "ruff", "black",
     "isort", "pylint", "precommit", "pre-commit", "release", "publish", "style", "format"}
)  # fmt: skip
# Options and ini keys of well-known pytest plugins: (option prefixes, ini keys, package).
CONFIG_PLUGINS: Final = (
    (("--cov", "--no-cov"), ("",), "pytest-cov"),
    (("-n", "--numprocesses", "--dist", "--maxprocesses"), ("",), "pytest-xdist"),
    (("--benchmark-",), ("",), "pytest-benchmark"),
    (("--reruns", "--only-rerun"), ("",), "pytest-rerunfailures"),
    (("--asyncio-mode",), ("asyncio_mode", "asyncio_default_fixture_loop_scope"), "pytest-asyncio"),
    (("--randomly-", "-p randomly"), ("",), "pytest-randomly"),
    (("--mypy",), ("",), "pytest-mypy"),
    (("--doctest-plus", "--doctest-rst"), ("doctest_plus",), "pytest-doctestplus"),
    (("--html",), ("",), "pytest-html"),
    (("--ds",), ("DJANGO_SETTINGS_MODULE", "django_find_project"), "pytest-django"),
    (("--mpl",), ("",), "pytest-mpl"),
    (("--env",), ("env",), "pytest-env"),
    (("--hypothesis-",), ("",), "hypothesis"),
)
# Files whose contents decide what the dependency step builds into the workspace (compiled
# extensions, message catalogues): part of the environment's key, so base and final are
# never compared across builds of different sources.
BUILD_SUFFIXES: Final = (
    ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".pyx", ".pxd", ".pxi", ".rs", ".f", ".f90",
    ".po", ".pot",
)  # fmt: skip
BUILD_NAMES: Final = frozenset(
    {"setup.py", "meson.build", "CMakeLists.txt", "Cargo.toml", "MANIFEST.in", "build.py"}
)
_BUILD_HASH_CAP: Final = 256 * 1024 * 1024


@dataclass
class Declaration:
    """What to install for the tests, with paths relative to the workspace root."""

    installable: bool = False  # build the project itself (editable)
    extras: list[str] = field(default_factory=list)  # of the project, when installable
    requirement_files: list[str] = field(default_factory=list)
    constraint_files: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    # The project's own requirements read statically: used when it is not installable, or
    # when its build fails (then only these and the files above are installed).
    project_requirements: list[str] = field(default_factory=list)
    pytest_args: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # where each part was declared
    # Plugins added because the pytest configuration needs them and nothing declared them.
    config_plugins: list[str] = field(default_factory=list)
    fingerprint: str = ""

    @property
    def empty(self) -> bool:
        return not (
            self.installable
            or self.requirement_files
            or self.requirements
            or self.project_requirements
            or self.config_plugins
        )

    def names_pytest(self) -> bool:
        specs = [*self.requirements, *self.project_requirements]
        return any(_requirement_name(spec) == "pytest" for spec in specs)


def _requirement_name(spec: str) -> str | None:
    try:
        return Requirement(spec).name.lower().replace("_", "-")
    except InvalidRequirement:
        return None


def _repo_error(where: str, why: str) -> QAError:
    return QAError("repo_error", f"{where}: {why}")


def _regular_file(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _string_list(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _repo_error(where, "must be a list of strings")
    return list(value)


def _preferred(names: list[str]) -> list[str]:
    """The test-named ones, else `dev`."""
    chosen: list[str] = [name for name in TEST_NAMES if name in names]
    return chosen or ([FALLBACK_NAME] if FALLBACK_NAME in names else [])


class _Reader:
    def __init__(self, workspace: Path) -> None:
        self.root = workspace
        self.digest = hashlib.sha256()
        self.declaration = Declaration()

    def read(self, relative: str) -> bytes | None:
        path = self.root / relative
        if not _regular_file(path) or not path.resolve().is_relative_to(self.root.resolve()):
            return None
        data = path.read_bytes()
        self.digest.update(b"file\0" + relative.encode() + b"\0" + data)
        return data

    def text(self, relative: str) -> str | None:
        data = self.read(relative)
        if data is None:
            return None
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise _repo_error(relative, "is not UTF-8") from None

    def add_requirement_file(self, relative: str, source: str) -> None:
        data = self.read(relative)
        if data is None or relative in self.declaration.requirement_files:
            return
        self.declaration.requirement_files.append(relative)
        self.declaration.sources.append(source)
        for referenced in _local_files(self.root, (self.root / relative).parent, data):
            self.read(referenced)  # a wheel or nested -r file: its bytes are part of the key


def _local_files(root: Path, base: Path, requirements: bytes) -> list[str]:
    """Files inside the workspace that a requirements file names (local wheels, sdists,
    nested -r/-c files); symlinks and anything outside are ignored."""
    found: list[str] = []
    resolved_root = root.resolve()
    for line in requirements.decode(errors="replace").splitlines():
        for token in line.split("#", 1)[0].split():
            if token.startswith("-") or "://" in token:
                continue
            path = base / token
            candidate = path.resolve()
            if candidate.is_relative_to(resolved_root) and _regular_file(path):
                found.append(candidate.relative_to(resolved_root).as_posix())
    return sorted(set(found))


def _pyproject(reader: _Reader) -> dict[str, object]:
    text = reader.text("pyproject.toml")
    if text is None:
        return {}
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _repo_error("pyproject.toml", f"not valid TOML: {error}") from None


def _table(document: dict[str, object], *keys: str) -> dict[str, object]:
    current: object = document
    for key in keys:
        if not isinstance(current, dict):
            return {}
        current = current.get(key, {})
    if not isinstance(current, dict):
        raise _repo_error("pyproject.toml", f"[{'.'.join(keys)}] must be a table")
    return current


def _ini(reader: _Reader, relative: str) -> configparser.ConfigParser | None:
    """An INI file the repository ships (setup.cfg, tox.ini), parsed without interpolation."""
    text = reader.text(relative)
    if text is None:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error as error:
        raise _repo_error(relative, f"cannot be parsed: {error}") from None
    return parser


def _setup_cfg_extras(reader: _Reader) -> dict[str, list[str]]:
    parser = _ini(reader, "setup.cfg")
    if parser is None or not parser.has_section("options.extras_require"):
        return {}
    return {
        name: [line.strip() for line in value.splitlines() if line.strip()]
        for name, value in parser.items("options.extras_require")
    }


def _folder_stem(name: str) -> str:
    """`requirements/requirements-tests.txt` is named like `requirements/tests.txt`."""
    return re.sub(r"^requirements[-_.]", "", name)


def _tox_testenv(reader: _Reader) -> configparser.SectionProxy | None:
    parser = _ini(reader, "tox.ini")
    return parser["testenv"] if parser is not None and parser.has_section("testenv") else None


def _plain_lines(value: str) -> list[str]:
    """tox's multi-line values without comments, factor conditions or substitutions."""
    lines: list[str] = []
    for raw in value.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if line and not line.startswith("#") and "{" not in line and not _FACTOR_LINE.match(line):
            lines.append(line)
    return lines


def _tox_deps(testenv: configparser.SectionProxy | None, workspace_in_sandbox: str) -> list[str]:
    if testenv is None or "deps" not in testenv:
        return []
    deps = _plain_lines(testenv["deps"].replace("{toxinidir}", workspace_in_sandbox))
    # The project itself is installed anyway when it can be built.
    return [line for line in deps if line not in ("-e .", "-e.", ".")]


def read_declaration(workspace: Path, workspace_in_sandbox: str = "/workspace") -> Declaration:
    """Raises QAError(repo_error) when a declaration the repository ships cannot be read."""
    reader = _Reader(workspace)
    declaration = reader.declaration
    pyproject = _pyproject(reader)
    project = _table(pyproject, "project")
    explicit = _table(pyproject, "tool", "prtrace", "qa")
    setup_py = reader.read("setup.py") is not None
    extras_table = _table(project, "optional-dependencies")
    cfg_extras = _setup_cfg_extras(reader)
    declaration.installable = "build-system" in pyproject or setup_py
    if "dependencies" in project:
        declaration.project_requirements = _string_list(
            project["dependencies"], "pyproject.toml [project].dependencies"
        )
        if declaration.project_requirements:
            declaration.sources.append("pyproject.toml [project].dependencies")
    extras: dict[str, list[str]] = dict(cfg_extras)
    for name, specs in extras_table.items():
        extras[name] = _string_list(specs, f"pyproject.toml [project.optional-dependencies].{name}")
    groups = _table(pyproject, "dependency-groups")

    if explicit:
        where = "pyproject.toml [tool.prtrace.qa]"
        unknown = sorted(set(explicit) - set(EXPLICIT_KEYS))
        if unknown:
            raise _repo_error(
                where,
                f"unknown key {unknown[0]!r} (known: {', '.join(EXPLICIT_KEYS)}; the tests "
                "always run on the sandbox's python3)",
            )
        chosen_extras = _string_list(explicit.get("extras", []), f"{where}.extras")
        files = _string_list(explicit.get("requirements", []), f"{where}.requirements")
        chosen_groups = _string_list(
            explicit.get("dependency_groups", []), f"{where}.dependency_groups"
        )
        declaration.pytest_args = _string_list(
            explicit.get("pytest_args", []), f"{where}.pytest_args"
        )
        for name in [*chosen_extras, *chosen_groups]:
            if name not in (extras if name in chosen_extras else groups):
                raise _repo_error(where, f"names {name!r}, which the project does not declare")
        for relative in files:
            if reader.read(relative) is None:
                raise _repo_error(where, f"requirements file {relative!r} is not in the workspace")
            reader.add_requirement_file(relative, f"{where}.requirements {relative}")
        discover = not (chosen_extras or files or chosen_groups)
        if discover:
            chosen_extras = _preferred(list(extras))
            chosen_groups = _preferred(list(groups))
    else:
        discover = True
        chosen_extras = _preferred(list(extras))
        chosen_groups = _preferred(list(groups))

    if discover:
        for path in sorted(workspace.glob("*requirements*.txt")):
            if _for_tests(path.name):
                reader.add_requirement_file(path.name, path.name)
        folder = workspace / "requirements"
        if folder.is_dir() and not folder.is_symlink():
            names = sorted(p.name for p in folder.glob("*.txt"))
            picked = [n for n in names if _folder_stem(n).startswith(TEST_NAMES)] or [
                n for n in names if _folder_stem(n).startswith(FALLBACK_NAME)
            ]
            for name in picked:
                reader.add_requirement_file(f"requirements/{name}", f"requirements/{name}")
        testenv = _tox_testenv(reader)
        for line in _tox_deps(testenv, workspace_in_sandbox):
            _add_tox_line(reader, line, workspace_in_sandbox)
        if testenv is not None and "extras" in testenv and not chosen_extras:
            names = [n.strip() for line in _plain_lines(testenv["extras"]) for n in line.split(",")]
            listed = [n for n in names if n in extras]
            chosen_extras += [n for n in listed if n not in chosen_extras]
            if listed:
                declaration.sources.append("tox.ini [testenv] extras")

    if discover and declaration.installable and setup_py and not chosen_extras:
        # setup.py's extras_require cannot be read without running it: ask pip for the
        # usual test extras (an extra a project does not have is only a warning).
        declaration.extras += list(TEST_NAMES)
        declaration.sources.append("setup.py extras test/tests/testing, where declared")
    for name in chosen_extras:
        origin = "pyproject.toml [project.optional-dependencies]"
        if name in cfg_extras and name not in extras_table:
            origin = "setup.cfg [options.extras_require]"
        declaration.sources.append(f"{origin}.{name}")
        if declaration.installable:
            declaration.extras.append(name)
        declaration.project_requirements += extras[name]
    if chosen_groups:
        try:
            resolved = resolve_groups(groups, *chosen_groups)  # type: ignore[arg-type]
        except (ValueError, LookupError, TypeError) as error:  # cycles, unknown, malformed
            raise _repo_error("pyproject.toml [dependency-groups]", str(error)) from None
        declaration.requirements += list(resolved)
        declaration.sources += [f"pyproject.toml [dependency-groups].{n}" for n in chosen_groups]

    _add_config_plugins(reader)
    # The layout decides what an editable install maps: part of the key.
    for top in (workspace, workspace / "src"):
        if top.is_dir():
            names = sorted(p.name for p in top.iterdir() if not p.name.startswith("."))
            reader.digest.update(b"layout\0" + "\0".join(names).encode())
    reader.digest.update(b"build\0" + build_inputs_digest(workspace).encode())
    declaration.fingerprint = reader.digest.hexdigest()
    return declaration


def _for_tests(name: str) -> bool:
    """A root requirements file not meant for another tool (OTHER_TOOLS)."""
    words = set(re.split(r"[-_.]", name.lower().removesuffix(".txt")))
    return not words & OTHER_TOOLS


def build_inputs_digest(workspace: Path) -> str:
    """SHA-256 over the files that decide what a build makes (BUILD_SUFFIXES, BUILD_NAMES),
    by path and content; links are not followed. Over the cap, sizes stand for contents."""
    digest = hashlib.sha256()
    budget = _BUILD_HASH_CAP
    for directory, dirs, files in sorted(os.walk(workspace)):
        dirs[:] = sorted(d for d in dirs if d != ".git" and not os.path.islink(Path(directory, d)))
        for name in sorted(files):
            if not (name.endswith(BUILD_SUFFIXES) or name in BUILD_NAMES):
                continue
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            size = path.stat().st_size
            digest.update(path.relative_to(workspace).as_posix().encode() + b"\0")
            if size <= budget:
                budget -= size
                digest.update(path.read_bytes())
            else:
                digest.update(str(size).encode())
    return digest.hexdigest()


def _pytest_config(reader: _Reader) -> dict[str, str]:
    """The pytest settings of the first configuration file pytest would read at the root."""
    for name in (
        "pytest.ini",
        "pytest.toml",
        ".pytest.toml",
        "pyproject.toml",
        "tox.ini",
        "setup.cfg",
    ):
        text = reader.text(name)
        if text is None:
            continue
        if name.endswith(".toml"):
            try:
                data = tomllib.loads(text)
            except tomllib.TOMLDecodeError:
                continue
            if name == "pyproject.toml":
                tool = data.get("tool", {}).get("pytest", {})
                if not isinstance(tool, dict) or not tool:
                    continue
                table = tool.get("ini_options", tool)
            else:
                table = data.get("pytest", {})
            if not isinstance(table, dict):
                return {}
            return {
                str(k): " ".join(v) if isinstance(v, list) else str(v) for k, v in table.items()
            }
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text)
        except configparser.Error:
            continue
        section = "tool:pytest" if name == "setup.cfg" else "pytest"
        if parser.has_section(section):
            return dict(parser[section])
        if name == "pytest.ini":
            return {}
    return {}


def _declared_names(reader: _Reader) -> set[str]:
    declaration = reader.declaration
    names = {
        _requirement_name(spec)
        for spec in [*declaration.requirements, *declaration.project_requirements]
    }
    for relative in declaration.requirement_files:
        text = (reader.root / relative).read_text(errors="replace")
        for line in text.splitlines():
            names.add(_requirement_name(line.split("#", 1)[0].strip()))
    return {name for name in names if name}


def _add_config_plugins(reader: _Reader) -> None:
    config = _pytest_config(reader)
    if not config:
        return
    options = " " + " ".join(config.get("addopts", "").split())
    declared = _declared_names(reader)
    for prefixes, keys, package in CONFIG_PLUGINS:
        used = next((p for p in prefixes if f" {p}" in options), None)
        used = used or next((k for k in keys if k and k in config), None)
        if used is None or package in declared:
            continue
        reader.declaration.config_plugins.append(package)
        reader.declaration.requirements.append(package)
        reader.declaration.sources.append(
            f"{package}: the pytest configuration uses {used} and nothing declares it"
        )


def _add_tox_line(reader: _Reader, line: str, workspace_in_sandbox: str) -> None:
    declaration = reader.declaration
    for flag, target in (
        ("-r", declaration.requirement_files),
        ("-c", declaration.constraint_files),
    ):
        if line.startswith(flag):
            relative = line[len(flag) :].strip()
            if relative.startswith(workspace_in_sandbox + "/"):
                relative = relative[len(workspace_in_sandbox) + 1 :]
            if target is declaration.requirement_files:
                reader.add_requirement_file(relative, f"tox.ini [testenv] deps -r {relative}")
            elif reader.read(relative) is not None:
                target.append(relative)
            return
    if line.startswith("-"):
        return  # other pip options (-e paths, --pre, ...) are not followed
    declaration.requirements.append(line)
    if "tox.ini [testenv] deps" not in declaration.sources:
        declaration.sources.append("tox.ini [testenv] deps")
