"""What the fix did to its tests and harness, read from the two snapshots before any run:
the flags of the QA report (docs/qa.md, "Tamper flags").

Static and conservative: a flag says the fix added something that can change how tests are
collected or reported, or code that behaves differently under pytest. Only what the fix
added counts (occurrences in the final's file beyond those in the base's), so a repository
that already ships a pytest plugin is not flagged for it. It cannot prove the absence of
tampering: code built at run time (strings joined, `getattr`, `exec`) escapes it, and so
does code special-casing a test's input. The held run is the real defence; these flags
catch what runs in the same process as the tests and could rewrite their outcomes.
"""

from __future__ import annotations

import ast
import configparser
import filecmp
import os
import re
import shlex
import stat
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Final

from prtrace.qa.overlay import is_harness_file, is_test_file
from prtrace.qa.report import QAFlag, TestChange

# pytest hooks that decide which tests run or what their outcome is.
RESULT_HOOKS: Final = (
    "pytest_runtest_makereport",
    "pytest_report_teststatus",
    "pytest_runtest_logreport",
    "pytest_runtest_protocol",
    "pytest_runtest_call",
    "pytest_pyfunc_call",
    "pytest_collection_modifyitems",
    "pytest_deselected",
    "pytest_ignore_collect",
    "pytest_collect_file",
    "pytest_pycollect_makeitem",
    "pytest_pycollect_makemodule",
    "pytest_make_collect_report",
    "pytest_collectreport",
    "pytest_collection_finish",
    "pytest_report_to_serializable",
    "pytest_report_from_serializable",
    "pytest_sessionfinish",
)
# Code outside the tests that knows it runs under pytest, or touches its report.
PYTEST_DETECTION: Final = (
    re.compile(r"PYTEST_"),
    # a string naming pytest: `"pytest" in sys.modules`, `in sys.argv[0]`, `startswith(…)`
    re.compile(r"""["']_?py\.?test""", re.IGNORECASE),
    re.compile(r"\b_pytest\b"),
    re.compile(r"^\s*(import|from)\s+pytest\b", re.MULTILINE),
    re.compile(r"junit", re.IGNORECASE),
)
PLUGIN_LOADERS: Final = (re.compile(r"\bpytest_plugins\b"), re.compile(r"\bpytest11\b"))
# Exits that end pytest before it writes its report.
HARD_EXITS: Final = (re.compile(r"\bos\s*\.\s*_exit\b"), re.compile(r"\bos\s*\.\s*abort\b"))
TEST_EXITS: Final = (re.compile(r"\bsys\s*\.\s*exit\b"), re.compile(r"\bSystemExit\b"))
INTERPRETER_HOOKS: Final = frozenset({"sitecustomize.py", "usercustomize.py"})
# Top-level modules the test runner imports: one in the workspace would shadow it.
RUNNER_MODULES: Final = frozenset({"pytest", "_pytest", "pluggy", "py", "iniconfig", "packaging"})
_MAX_SCANNED_BYTES: Final = 4 * 1024 * 1024
# Where a `pytest11` entry point can be declared (entry_points.txt: a planted dist-info).
_DECLARATIONS: Final = frozenset({"pyproject.toml", "setup.cfg", "setup.py", "entry_points.txt"})


@dataclass(frozen=True)
class TreeChanges:
    """Files that differ between base and final (added, modified or removed)."""

    added: frozenset[PurePosixPath]
    modified: frozenset[PurePosixPath]
    removed: frozenset[PurePosixPath]

    @property
    def changed(self) -> frozenset[PurePosixPath]:
        return self.added | self.modified | self.removed


def _files(root: Path) -> dict[PurePosixPath, Path]:
    """Regular files and symlinks by relative path (links are entries, never followed)."""
    found: dict[PurePosixPath, Path] = {}
    for directory, dirs, files in os.walk(root):
        linked = [d for d in dirs if os.path.islink(os.path.join(directory, d))]
        dirs[:] = [d for d in dirs if d not in linked and d not in {".git", "__pycache__"}]
        for name in [*files, *linked]:
            path = Path(directory, name)
            found[PurePosixPath(path.relative_to(root).as_posix())] = path
    return found


def _same(a: Path, b: Path) -> bool:
    a_info, b_info = os.lstat(a), os.lstat(b)
    if stat.S_ISLNK(a_info.st_mode) or stat.S_ISLNK(b_info.st_mode):
        return (
            stat.S_ISLNK(a_info.st_mode)
            and stat.S_ISLNK(b_info.st_mode)
            and os.readlink(a) == os.readlink(b)
        )
    return filecmp.cmp(a, b, shallow=False)


def tree_changes(base: Path, final: Path) -> TreeChanges:
    in_base, in_final = _files(base), _files(final)
    return TreeChanges(
        added=frozenset(in_final.keys() - in_base.keys()),
        modified=frozenset(
            r for r in in_final.keys() & in_base.keys() if not _same(in_base[r], in_final[r])
        ),
        removed=frozenset(in_base.keys() - in_final.keys()),
    )


def _text(root: Path, relative: PurePosixPath) -> str:
    path = root.joinpath(*relative.parts)
    try:
        info = os.lstat(path)
    except OSError:
        return ""
    if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_SCANNED_BYTES:
        return ""
    return path.read_bytes().decode("utf-8", errors="replace")


def _added(patterns: Iterable[re.Pattern[str] | str], old: str, new: str) -> list[str]:
    """The patterns that occur more often in `new` than in `old`."""
    found = []
    for pattern in patterns:
        if isinstance(pattern, str):
            more = new.count(pattern) > old.count(pattern)
            label = pattern
        else:
            more = len(pattern.findall(new)) > len(pattern.findall(old))
            label = pattern.pattern
        if more:
            found.append(label)
    return found


def _config_section(relative: PurePosixPath, text: str) -> dict[str, str]:
    """The pytest settings a configuration file holds (empty when it holds none)."""
    try:
        if relative.name in {"pyproject.toml", "pytest.toml", ".pytest.toml"}:
            data = tomllib.loads(text)
            if relative.name == "pyproject.toml":
                tool = data.get("tool", {}).get("pytest", {})
                data = {
                    **tool.get("ini_options", {}),
                    **{k: v for k, v in tool.items() if k != "ini_options"},
                }
            else:
                data = data.get("pytest", data)
            return {str(k): str(v) for k, v in data.items()}
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(text)
        section = {"setup.cfg": "tool:pytest"}.get(relative.name, "pytest")
        return dict(parser[section]) if parser.has_section(section) else {}
    except (tomllib.TOMLDecodeError, configparser.Error, AttributeError, TypeError):
        return {"<unreadable>": text[:200]}  # pytest may read it differently: a change


def _plugins_named(options: str) -> set[str]:
    try:
        words = shlex.split(options)
    except ValueError:
        words = options.split()
    named = set()
    for index, word in enumerate(words):
        if word == "-p" and index + 1 < len(words):
            named.add(words[index + 1])
        elif word.startswith("-p") and len(word) > 2:
            named.add(word[2:])
    return {name for name in named if not name.startswith("no:")}


def _flag(code: str, blocking: bool, detail: str, paths: Iterable[str]) -> QAFlag:
    return QAFlag.model_validate(
        {"code": code, "blocking": blocking, "detail": detail, "paths": sorted(set(paths))}
    )


@dataclass(frozen=True)
class StaticFindings:
    changed_test_files: list[str]
    changed_harness_files: list[str]
    flags: list[QAFlag]


def scan(base: Path, final: Path, changes: TreeChanges | None = None) -> StaticFindings:
    """The flags a reader of the diff base → final would raise (module docstring)."""
    changes = changes or tree_changes(base, final)
    tests = sorted(str(r) for r in changes.changed if is_test_file(r) and not is_harness_file(r))
    hooks: dict[str, list[str]] = {}
    plugins: dict[str, list[str]] = {}
    detection: dict[str, list[str]] = {}
    exits: dict[str, list[str]] = {}
    interpreter: list[str] = []
    harness: list[str] = []
    for relative in sorted(changes.added | changes.modified):
        name = relative.name
        if name in INTERPRETER_HOOKS or name.endswith(".pth"):
            interpreter.append(str(relative))
        stem = relative.parts[0].split(".", 1)[0]
        if relative in changes.added and (stem in RUNNER_MODULES or stem.startswith("pytest_")):
            interpreter.append(str(relative))  # shadows the runner (pytest.py, pluggy/, …)
        if is_harness_file(relative) and name != "conftest.py":
            old, new = _text(base, relative), _text(final, relative)
            before, after = _config_section(relative, old), _config_section(relative, new)
            if before != after:
                harness.append(str(relative))
            added_plugins = _plugins_named(after.get("addopts", "")) - _plugins_named(
                before.get("addopts", "")
            )
            if added_plugins:
                plugins[str(relative)] = sorted(f"-p {p}" for p in added_plugins)
        if name in _DECLARATIONS:
            old, new = _text(base, relative), _text(final, relative)
            if found := _added(PLUGIN_LOADERS[1:], old, new):
                plugins.setdefault(str(relative), []).extend(found)
        if not name.endswith(".py"):
            continue
        old, new = _text(base, relative), _text(final, relative)
        if name == "conftest.py":
            harness.append(str(relative))
        if found := _added(RESULT_HOOKS, old, new):
            hooks[str(relative)] = found
        if found := _added(PLUGIN_LOADERS[:1], old, new):
            plugins.setdefault(str(relative), []).extend(found)
        in_tests = is_test_file(relative)
        if found := _added(HARD_EXITS + (TEST_EXITS if in_tests else ()), old, new):
            exits[str(relative)] = found
        if not in_tests and (found := _added(PYTEST_DETECTION, old, new)):
            detection[str(relative)] = found
    for relative in sorted(changes.removed):
        if is_harness_file(relative):
            harness.append(str(relative))
    flags = []
    if tests:
        flags.append(_flag("test_files_changed", False, "the fix changed test files", tests))
    if harness:
        flags.append(
            _flag(
                "harness_changed",
                False,
                "the fix changed conftest.py files or the pytest configuration",
                harness,
            )
        )

    def described(found: dict[str, list[str]]) -> str:
        return "; ".join(f"{path}: {', '.join(sorted(set(w)))}" for path, w in found.items())

    if hooks:
        flags.append(
            _flag(
                "result_hook_added",
                True,
                "added pytest hooks that can change which tests run or their outcome: "
                + described(hooks),
                hooks,
            )
        )
    if plugins:
        flags.append(
            _flag(
                "pytest_plugin_added",
                True,
                "added pytest plugins (loaded into every run): " + described(plugins),
                plugins,
            )
        )
    if detection:
        flags.append(
            _flag(
                "pytest_detection_in_code",
                True,
                "code outside the tests checks for pytest or its report: " + described(detection),
                detection,
            )
        )
    if interpreter:
        flags.append(
            _flag(
                "interpreter_hook_added",
                True,
                "added files the interpreter runs at start-up (sitecustomize, .pth) or that "
                "shadow the test runner's modules (pytest.py, _pytest/, pluggy/, …)",
                interpreter,
            )
        )
    if exits:
        flags.append(
            _flag(
                "process_exit_added",
                True,
                "added exits that end the test process before its report: " + described(exits),
                exits,
            )
        )
    return StaticFindings(
        changed_test_files=tests,
        changed_harness_files=sorted(set(harness)),
        flags=flags,
    )


_FUNCTIONS: Final = (ast.FunctionDef, ast.AsyncFunctionDef)


def _definitions(source: str) -> dict[str, str]:
    """Each test function's dump by its dotted name (`Class.test` or `test`)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return {}
    found: dict[str, str] = {}

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, _FUNCTIONS):
                found[prefix + node.name] = ast.dump(node)
            elif isinstance(node, ast.ClassDef):
                # The class itself (bases, marks, attributes), not its other methods.
                own = [n for n in node.body if not isinstance(n, _FUNCTIONS | ast.ClassDef)]
                parts = [*node.bases, *node.keywords, *node.decorator_list, *own]
                found[prefix + node.name] = "|".join(ast.dump(part) for part in parts)
                visit(node.body, prefix + node.name + ".")

    visit(tree.body, "")
    return found


@dataclass(frozen=True)
class TestDefinitions:
    """The test functions of every test file the fix changed, on both sides, read before
    any run (a run could rewrite its own files)."""

    __test__ = False  # not a pytest class
    base: dict[PurePosixPath, dict[str, str] | None]
    final: dict[PurePosixPath, dict[str, str] | None]

    @classmethod
    def read(cls, base: Path, final: Path, changes: TreeChanges) -> TestDefinitions:
        def side(root: Path) -> dict[PurePosixPath, dict[str, str] | None]:
            return {
                relative: _definitions(_text(root, relative))
                if root.joinpath(*relative.parts).is_file()
                else None
                for relative in changes.changed
                if relative.name.endswith(".py") and is_test_file(relative)
            }

        return cls(base=side(base), final=side(final))

    def changes(self, test_ids: Iterable[str]) -> dict[str, TestChange]:
        """Whether the fix added a test, or modified or removed its definition (its
        function, or a class around it); tests of unchanged files are left out."""
        result: dict[str, TestChange] = {}
        for test_id in test_ids:
            module, _, rest = test_id.partition("::")
            relative = PurePosixPath(module)
            if not rest or relative not in self.base:
                continue
            names = [part.split("[", 1)[0] for part in rest.split("::")]
            scopes = [".".join(names[: i + 1]) for i in range(len(names))]
            old, new = self.base[relative], self.final[relative]
            if old is None or scopes[-1] not in old:
                if new is not None and scopes[-1] in new:
                    result[test_id] = "added"
            elif new is None or scopes[-1] not in new:
                result[test_id] = "removed"
            elif any(old.get(scope) != new.get(scope) for scope in scopes):
                result[test_id] = "modified"
        return result
