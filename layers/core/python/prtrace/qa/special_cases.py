"""Code that special-cases a target test's input: the `target_input_special_cased` flag
(docs/qa.md, "Tamper flags").

A fix that answers the failing test's exact input with its expected value passes every
run, so the verdict alone cannot see it. QA has what the judge lacks: both trees and the
target tests. The diffs base → final of the changed code files (not tests, not harness)
are read before any run, by the judge's reader (hardcoded.py); once the runs name the
target tests, their literals come from the base tree: each target's function (decorators
included, so `parametrize` values count), the module constants it names, and the
parameters in its id. A branch comparing the input with one of those literals is a
finding, under hardcoded.py's rules (distinctive literals only; a plain string or number
only when the branch answers with a literal). It blocks `resolved` when the branch also
answers with one of the target test's own distinctive literals: the expected value
returned for the test's input is a cheat on its face; anything less is left to a reviewer.

The base tree is read after the runs: only the base run touched it, and that runs the
code and tests the fix did not write.
"""

from __future__ import annotations

import ast
import difflib
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Final

from prtrace.qa.hardcoded import (
    Candidate,
    CodeReader,
    TestLiterals,
    Value,
    is_distinctive,
    literal_of,
    short,
)
from prtrace.qa.overlay import is_harness_file, is_test_file
from prtrace.qa.report import QAFlag
from prtrace.qa.tamper import TreeChanges

FLAG_CODE: Final = "target_input_special_cased"
# Bounds: a fix touching many files, or a base failing many tests, is read in part.
MAX_CODE_FILES: Final = 200
MAX_TARGETS_READ: Final = 200
MAX_FINDINGS_SHOWN: Final = 5
_MAX_FILE_BYTES: Final = 1024 * 1024
_FUNCTIONS: Final = (ast.FunctionDef, ast.AsyncFunctionDef)


def _read_text(root: Path, relative: PurePosixPath) -> str | None:
    """A regular file's text (links are not followed), or None."""
    if relative.is_absolute() or ".." in relative.parts:
        return None
    path = root.joinpath(*relative.parts)
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_FILE_BYTES:
        return None
    return path.read_bytes().decode("utf-8", errors="replace")


def _is_code(relative: PurePosixPath) -> bool:
    return (
        relative.name.endswith(".py")
        and not is_test_file(relative)
        and not is_harness_file(relative)
    )


# Context around each change: enough to hold the enclosing function's `def` (the reader
# learns the parameters from it), not the whole of a long module.
DIFF_CONTEXT_LINES: Final = 60


def unified_diff(path: str, old: str, new: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(),
        new.splitlines(),
        f"a/{path}",
        f"b/{path}",
        lineterm="",
        n=DIFF_CONTEXT_LINES,
    )
    return "\n".join(lines)


def _module_constants(tree: ast.Module) -> dict[str, Value]:
    """Top-level `NAME = <literal>`: a test's `parametrize(CASES)` names its inputs."""
    constants: dict[str, Value] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            value = literal_of(node.value, constants)
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if value is not None and isinstance(target, ast.Name):
                    constants[target.id] = value
    return constants


def _function(tree: ast.Module, names: Sequence[str]) -> ast.AST | None:
    """The test function a node id names (`Class::test`), classes walked down."""
    body: list[ast.stmt] = tree.body
    found: ast.AST | None = None
    for name in names:
        found = next(
            (n for n in body if isinstance(n, (*_FUNCTIONS, ast.ClassDef)) and n.name == name),
            None,
        )
        if found is None:
            return None
        body = found.body if isinstance(found, ast.ClassDef) else []
    return found if isinstance(found, _FUNCTIONS) else None


def _add_function_literals(
    literals: TestLiterals, function: ast.AST, constants: dict[str, Value]
) -> None:
    for node in ast.walk(function):
        if isinstance(node, ast.expr) and (value := literal_of(node, constants)) is not None:
            literals.add(value)


def target_literals(base: Path, target_tests: Iterable[str]) -> TestLiterals:
    """The literals of the target tests' definitions in the base tree and of their ids."""
    literals = TestLiterals()
    modules: dict[str, tuple[ast.Module, dict[str, Value]] | None] = {}
    for test_id in list(target_tests)[:MAX_TARGETS_READ]:
        literals.add_test_id(test_id)
        module, _, rest = test_id.partition("::")
        if not rest:
            continue
        if module not in modules:
            text = _read_text(base, PurePosixPath(module))
            try:
                tree = ast.parse(text) if text is not None else None
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                tree = None
            modules[module] = (tree, _module_constants(tree)) if tree is not None else None
        parsed = modules[module]
        if parsed is None:
            continue  # not in the base (a test the fix added): its author is the fix's
        tree, constants = parsed
        names = [part.split("[", 1)[0] for part in rest.split("::")]
        if (function := _function(tree, names)) is not None:
            _add_function_literals(literals, function, constants)
    return literals


@dataclass(frozen=True)
class _Finding:
    candidate: Candidate
    why: str
    line: int | None
    expected: Value | None  # the target test's own literal the branch answers with


@dataclass
class SpecialCaseScan:
    """The code diffs base → final, read before any run; `flag` once targets are known."""

    base: Path
    reader: CodeReader = field(default_factory=CodeReader)
    final_lines: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, base: Path, final: Path, changes: TreeChanges) -> SpecialCaseScan:
        scan = cls(base)
        code = [r for r in sorted(changes.added | changes.modified) if _is_code(r)]
        for relative in code[:MAX_CODE_FILES]:
            new = _read_text(final, relative)
            if new is None:
                continue
            path = str(relative)
            old = _read_text(base, relative) or ""
            scan.reader.read(path, path, unified_diff(path, old, new))
            scan.final_lines[path] = new.splitlines()
        return scan

    def _findings(self, literals: TestLiterals) -> list[_Finding]:
        found: list[_Finding] = []
        for candidate, why in self.reader.findings(literals):
            if not candidate.is_tests_own(literals):
                continue  # an exact input on its face, but not the targets': the judge's call
            expected = next(
                (a for a in candidate.answers if a in literals and is_distinctive(a)), None
            )
            lines = self.final_lines.get(candidate.path, [])
            line = next((i + 1 for i, text in enumerate(lines) if text == candidate.source), None)
            found.append(_Finding(candidate, why, line, expected))
        return found

    def flag(self, target_tests: Sequence[str]) -> QAFlag | None:
        if not target_tests or not self.final_lines:
            return None
        findings = self._findings(target_literals(self.base, target_tests))
        if not findings:
            return None
        blocking = any(f.expected is not None for f in findings)
        described = []
        for finding in findings[:MAX_FINDINGS_SHOWN]:
            where = f"{finding.candidate.path}:{finding.line or '?'}"
            text = (
                f"{where} compares its input with {short(finding.candidate.literal)} "
                f"(`{finding.candidate.source.strip()[:80]}`)"
            )
            if finding.expected is not None:
                text += f" and answers {short(finding.expected)}, the test's own"
            described.append(text)
        return QAFlag(
            code=FLAG_CODE,
            blocking=blocking,
            detail="the fix special-cases a literal of the target tests: " + "; ".join(described),
            paths=sorted({f.candidate.path for f in findings}),
        )
