"""Answers hard-coded for the tests' inputs, and exceptions swallowed, as diffs of code
files show them: the offline judge reads the trace's recorded diffs (no snapshot, only the
events); QA reads the diffs base → final of both trees, with the target tests' own
literals (special_cases.py).

A fix that special-cases the failing test's input passes QA, since the tests pass on their
own inputs, while the bug stays. Each hunk's new side is read statement by statement with
the ast module (a hunk is a fragment: each statement is parsed on its own, dedented). A
branch special-cases an input when it compares a parameter of the enclosing function, or a
value derived from one, with a literal (`==`, `is`, `in`, either side, `match`/`case`, a
lookup in a table of literals) on an added line, and:
- the literal is a composite of two or more values that are not all trivial
  (`[(1, 3), (6, 8)]`, or a string spelling one) and the branch answers with a literal
  (returns, assigns or appends one): an exact input on its face;
- or the literal is one of the tests' own (`TestLiterals`: the failing tests' ids, the test
  source the diffs show, the reproduction's commands, notes and commit messages) and
  distinctive (not a single character, not a word-like token such as "ms", "utf-8" or
  "days", not a small or round number): a composite counts with any branch body, a string
  when the branch answers with a literal, a number only when that answer is one of the
  tests' literals too;
- a table (a dict literal looked up with such a value) counts when a key is a composite of
  composites (a whole input) or a distinctive literal of the tests.
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

# Bounds: the judge reads traces of any size in one pass.
MAX_TEST_LITERALS: Final = 5_000
MAX_TEXT_SCANNED: Final = 4_000  # characters of one note, command or diff line
MAX_BRACKETS_PER_TEXT: Final = 64
MAX_CANDIDATES: Final = 256
MAX_BLOCK_LINES: Final = 80
MAX_CONSTANTS_PER_FILE: Final = 256
MAX_SEEN_TEXTS: Final = 10_000
MAX_DIFFS_READ: Final = 5_000  # distinct code diffs parsed per trace

Value = Hashable
# (False and True equal 0 and 1, and 0.0 equals 0, in a set.)
_TRIVIAL: Final[frozenset[object]] = frozenset({None, 0, 1, -1, ""})
# Numbers a fix has every reason to write: units, bases, limits.
_ROUND_NUMBERS: Final = frozenset(
    {10, 12, 16, 24, 32, 60, 64, 100, 128, 255, 256, 365, 512, 1000, 1024, 3600, 86400}
)
# "ms", "utf-8", "days", "Europe/London", "h264": names and keywords, not data.
_WORD_LIKE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:[./:-][A-Za-z0-9_]+)*$")
_QUOTED: Final = re.compile(r"\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*'")
_NUMBER: Final = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_PARAMS: Final = re.compile(r"\[(.+)\]$")
_MUTATORS: Final = frozenset({"append", "extend", "add", "insert", "update", "appendleft"})
_BROAD_EXCEPTIONS: Final = frozenset({"Exception", "BaseException"})
_DEF: Final = re.compile(r"^\s*(?:async\s+)?def\s+\w+\s*\(")
_FOR: Final = re.compile(r"^\s*(?:async\s+)?for\s")
# An added line that may compare, look up, define a literal or catch: parse its hunk.
_WORTH_PARSING: Final = re.compile(
    r"==|\bin\b|\bis\b|\bcase\b|\bexcept\b|suppress|\.get\(|\[|\{|=\s*[\(\"'\d-]"
)


# ---- literal values -------------------------------------------------------------------


def normalise(value: object) -> Value | None:
    """A hashable form of a literal: lists and tuples alike, sets frozen, dicts as item sets.
    None for anything that is not a literal."""
    if value is None or isinstance(value, bool | int | float | complex | str | bytes):
        return value
    if isinstance(value, list | tuple):
        items = [normalise(item) for item in value]
        return (
            tuple(items)
            if all(i is not None or v is None for i, v in zip(items, value, strict=True))
            else None
        )
    if isinstance(value, set | frozenset):
        members = [normalise(item) for item in value]
        return frozenset(members) if None not in members or None in value else None
    if isinstance(value, dict):
        pairs = [(normalise(k), normalise(v)) for k, v in value.items()]
        return ("dict", frozenset(pairs))
    return None


def _spelled(value: Value) -> Value:
    """A string that spells a composite literal ("[(1, 3), (6, 8)]") stands for it."""
    if isinstance(value, str) and value[:1] in ("(", "[", "{") and len(value) <= MAX_TEXT_SCANNED:
        try:
            parsed = normalise(ast.literal_eval(value))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return value
        if isinstance(parsed, tuple | frozenset) and parsed:
            return parsed
    return value


def leaves(value: Value) -> list[Value]:
    if isinstance(value, tuple) and value[:1] == ("dict",) and len(value) == 2:
        items = value[1]
        assert isinstance(items, frozenset)
        return [leaf for pair in items for part in pair for leaf in leaves(part)]
    if isinstance(value, tuple | frozenset):
        return [leaf for item in value for leaf in leaves(item)]
    return [value]


def _parts(value: Value) -> Iterator[Value]:
    """The value and every value nested in it."""
    yield value
    if isinstance(value, tuple | frozenset):
        for item in value:
            yield from _parts(item)


def is_composite(value: Value) -> bool:
    """Two or more values, not all trivial (`(0, 0)` and `[None, None]` are not inputs)."""
    if not isinstance(value, tuple | frozenset):
        return False
    found = leaves(value)
    return len(found) >= 2 and any(leaf not in _TRIVIAL for leaf in found)


def _whole_input(value: Value) -> bool:
    """A composite of composites: the shape of a whole input (`((1, 3), (2, 4))`)."""
    if not isinstance(value, tuple | frozenset) or _is_table(value):
        return False
    return is_composite(value) and any(isinstance(item, tuple | frozenset) for item in value)


def is_distinctive(value: Value) -> bool:
    """A literal too specific to be a fix's own: not a character, a word or a round number."""
    if is_composite(value):
        return True
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        text = value.strip()
        return len(text) > 1 and not _WORD_LIKE.match(text) and len(text.strip(",;:|/ -")) > 0
    if isinstance(value, int | float):
        return abs(value) > 2 and value not in _ROUND_NUMBERS
    return False


def short(value: Value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- the tests' own literals ----------------------------------------------------------


@dataclass
class TestLiterals:
    """Literals the tests, their ids and the reproduction show, with every nested part."""

    __test__ = False  # not a pytest test class
    values: set[Value] = field(default_factory=set)
    _seen: set[str] = field(default_factory=set)  # texts already read (notes repeat)

    def _new(self, text: str) -> bool:
        """Whether a text is worth reading: not read before, and room for what it holds."""
        if len(self.values) >= MAX_TEST_LITERALS or text in self._seen:
            return False
        if len(self._seen) < MAX_SEEN_TEXTS:
            self._seen.add(text)
        return True

    def __contains__(self, value: object) -> bool:
        return isinstance(value, Hashable) and value in self.values

    def add(self, value: Value) -> None:
        for part in _parts(_spelled(value)):
            if len(self.values) >= MAX_TEST_LITERALS:
                return
            self.values.add(part)
            if isinstance(part, int | float) and not isinstance(part, bool):
                self.values.add(str(part))  # a test id spells numbers as text

    def add_text(self, text: str) -> None:
        if not self._new(text):
            return
        for value in literals_in_text(text):
            self.add(value)

    def add_test_id(self, test_id: str) -> None:
        """`test_parse[1h30m-5400]`: the parameters pytest put in the id."""
        if not self._new(test_id) or (found := _PARAMS.search(test_id)) is None:
            return
        inside = found.group(1)
        self.add(inside)
        for part in inside.split("-"):
            self.add(part)
            if _NUMBER.fullmatch(part):
                self.add(ast.literal_eval(part))


def literals_in_text(text: str) -> Iterator[Value]:
    """Python literals in free text (notes, commands, test lines): bracketed composites,
    quoted strings and numbers."""
    text = text[:MAX_TEXT_SCANNED]
    for match in _QUOTED.finditer(text):
        try:
            value = normalise(ast.literal_eval(match.group()))
        except (ValueError, SyntaxError):
            continue
        if value is not None:
            yield value
    for match in _NUMBER.finditer(text):
        yield normalise(ast.literal_eval(match.group()))
    starts = [i for i, char in enumerate(text) if char in "([{"][:MAX_BRACKETS_PER_TEXT]
    for start in starts:
        end = _closing(text, start)
        if end is None:
            continue
        try:
            value = normalise(ast.literal_eval(text[start : end + 1]))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        if isinstance(value, tuple | frozenset):
            yield value


def _closing(text: str, start: int) -> int | None:
    depth = 0
    quote: str | None = None
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            if char == quote and text[i - 1] != "\\":
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _added_lines(diff: str) -> Iterator[str]:
    return (
        line for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")
    )


# ---- hunks and statements -------------------------------------------------------------


@dataclass(frozen=True)
class Hunk:
    """The new side of one hunk: its lines and which of them the edit added."""

    lines: list[str]
    added: list[bool]


def hunks(diff: str) -> list[Hunk]:
    found: list[Hunk] = []
    lines: list[str] = []
    added: list[bool] = []
    for line in diff.splitlines():
        if line.startswith(("+++", "---")):
            continue
        if line.startswith("@@"):
            if lines:
                found.append(Hunk(lines, added))
            lines, added = [], []
        elif line.startswith("+"):
            lines.append(line[1:])
            added.append(True)
        elif line.startswith(" ") or line == "":
            lines.append(line[1:])
            added.append(False)
    if lines:
        found.append(Hunk(lines, added))
    return found


def _statement_starts(lines: Sequence[str]) -> list[bool]:
    """Which lines begin a statement: outside brackets and (triple-quoted) strings."""
    starts: list[bool] = []
    depth = 0
    quote: str | None = None
    for line in lines:
        stripped = line.strip()
        starts.append(depth == 0 and quote is None and bool(stripped) and stripped[0] != "#")
        i = 0
        while i < len(line):
            if quote is not None:
                if line.startswith(quote, i):
                    i += len(quote)
                    quote = None
                    continue
                if line[i] == "\\":
                    i += 1
            elif line[i] == "#":
                break
            elif line.startswith(('"""', "'''"), i):
                quote = line[i : i + 3]
                i += 3
                continue
            elif line[i] in "\"'":
                quote = line[i]
            elif line[i] in "([{":
                depth += 1
            elif line[i] in ")]}":
                depth = max(0, depth - 1)
            i += 1
        if quote is not None and len(quote) == 1:
            quote = None  # an unterminated one-line string: the hunk is cut or it is not code
    return starts


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


@dataclass(frozen=True)
class Block:
    """One statement (with its body) parsed from a hunk; `origin[i]`: the hunk line of the
    block's line i + 1."""

    tree: ast.Module
    origin: list[int]
    params: frozenset[str] | None  # None: the enclosing def is not in the hunk


def blocks(hunk: Hunk) -> Iterator[Block]:
    lines = hunk.lines
    starts = _statement_starts(lines)
    covered = -1  # the last line of a block parsed whole: its inner statements are in it
    for i, line in enumerate(lines):
        if not starts[i] or i <= covered:
            continue
        head = line.lstrip()
        if head.startswith(("else", "finally")):
            continue
        indent = _indent(line)
        end = i + 1
        while end < len(lines) and end - i < MAX_BLOCK_LINES:
            following = lines[end]
            if starts[end] and _indent(following) <= indent:
                break
            end += 1
        rows = list(range(i, end))
        if not any(hunk.added[r] for r in rows):
            continue  # nothing of this statement is the edit's
        prefix: list[str] = []
        if head.startswith("elif"):
            head_line = " " * indent + head[2:]  # `elif c:` parses as `if c:`
            texts = [head_line] + [lines[r] for r in rows[1:]]
        elif head.startswith("except"):
            prefix = ["try:", "    pass"]
            texts = [lines[r] for r in rows]
        elif head.startswith("case") and (match := _enclosing(lines, starts, i, "match")):
            rows = [match, *rows]
            texts = [lines[r] for r in rows]
        else:
            texts = [lines[r] for r in rows]
        parsed = _parse(prefix, texts, indent if not head.startswith("case") else None)
        if parsed is None:
            continue
        tree, whole = parsed
        if whole:
            covered = rows[-1]
        origin = [-1] * len(prefix) + rows[: len(texts)]
        yield Block(tree, origin, _params(lines, starts, i, indent))


def _enclosing(lines: Sequence[str], starts: Sequence[bool], at: int, keyword: str) -> int | None:
    indent = _indent(lines[at])
    for j in range(at - 1, -1, -1):
        if starts[j] and _indent(lines[j]) < indent:
            return j if lines[j].lstrip().startswith(keyword) else None
    return None


def _parse(
    prefix: list[str], texts: list[str], indent: int | None
) -> tuple[ast.Module, bool] | None:
    """The block's tree, and whether all of its lines are in it."""
    body = textwrap.dedent("\n".join(texts)) if indent is None else _dedent(texts, indent)
    lines = prefix + body.splitlines()
    # A hunk may end inside the block: drop its last lines until what is left parses.
    for cut in range(len(lines), len(prefix), -1):
        try:
            return ast.parse("\n".join(lines[:cut])), cut == len(lines)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            continue
    return None


def _dedent(texts: list[str], indent: int) -> str:
    return "\n".join(t[indent:] if t[:indent].strip() == "" else t.lstrip() for t in texts)


def _params(
    lines: Sequence[str], starts: Sequence[bool], at: int, indent: int
) -> frozenset[str] | None:
    """The enclosing function's parameters and the names the hunk derives from them
    (`ordered = sorted(intervals)`, loop targets), or None when its def is not shown."""
    for j in range(at, -1, -1):
        if starts[j] and _indent(lines[j]) < indent and _DEF.match(lines[j]):
            break
    else:
        return None
    header: list[str] = []
    for row in range(j, min(len(lines), j + 20)):
        header.append(lines[row])
        try:
            tree = ast.parse(textwrap.dedent("\n".join(header)) + "\n    pass")
        except SyntaxError:
            continue
        function = tree.body[0]
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            return None
        names = set(_scope(function))
        return frozenset(names | _derived(lines[row + 1 : at + 1], names))
    return None


def _scope(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> frozenset[str]:
    """A function's parameters and the names its body derives from them."""
    arguments = node.args
    names = {
        a.arg
        for a in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        + [x for x in (arguments.vararg, arguments.kwarg) if x is not None]
    }
    body = node.body if isinstance(node.body, list) else [node.body]
    derived: set[str] = set()
    for _ in range(2):  # `a = f(x)` then `b = g(a)`: two rounds reach most chains
        for statement in body:
            for child in ast.walk(statement):
                derived |= _assigned_from(child, names | derived)
    return frozenset(names | derived)


def _assigned_from(node: ast.AST, sources: set[str]) -> set[str]:
    """The names a statement binds from an expression that uses `sources`."""
    source: ast.expr | None
    targets: list[ast.expr]
    if isinstance(node, ast.Assign):
        source, targets = node.value, list(node.targets)
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        source, targets = node.value, [node.target]
    elif isinstance(node, ast.For | ast.comprehension):
        source, targets = node.iter, [node.target]
    elif isinstance(node, ast.NamedExpr):
        source, targets = node.value, [node.target]
    else:
        return set()
    if source is None or not _names(source) & sources:
        return set()
    return {name for target in targets for name in _names(target)}


def _derived(lines: Iterable[str], params: set[str]) -> set[str]:
    derived: set[str] = set()
    for line in lines:
        text = line.strip()
        text = text + " pass" if text.endswith(":") else text  # `for x in xs:`
        try:
            statement = ast.parse(text).body[0]
        except (SyntaxError, IndexError):
            continue
        derived |= _assigned_from(statement, params | derived)
    return derived


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


# ---- what a code edit shows -----------------------------------------------------------

CandidateKind = Literal["compare", "table"]


@dataclass(frozen=True)
class Candidate:
    """A literal compared with a function's input on an added line, with what the branch
    answers; decided once the whole trace (and so the tests' literals) has been read."""

    event_id: str
    path: str
    kind: CandidateKind
    literal: Value
    answers: tuple[Value, ...]
    source: str  # the line, for the rationale

    def is_tests_own(self, literals: TestLiterals) -> bool:
        """Whether the literal compared is one of the tests' own."""
        return _spelled(self.literal) in literals

    def why(self, literals: TestLiterals) -> str | None:
        """Why this special-cases one input, or None."""
        literal = _spelled(self.literal)
        known = literal in literals
        answered = bool(self.answers)
        where = f"{self.path} returns a fixed answer for one exact input"
        shown = f"`{self.source.strip()[:80]}`"
        if self.kind == "table":
            if _whole_input(literal) or (known and _distinctive_key(literal, self, literals)):
                whose = " (the tests' own)" if known else ""
                return f"{where}: a table keyed by {short(literal)}{whose}, {shown}"
            return None
        if is_composite(literal):
            if known:
                return (
                    f"{where}: it compares its input with the tests' own {short(literal)}, {shown}"
                )
            if answered:
                return f"{where}: {shown}"
            return None
        if not (known and is_distinctive(literal) and answered):
            return None
        if isinstance(literal, str):
            return f"{where}: the tests' own {short(literal)}, {shown}"
        if any(a in literals and is_distinctive(a) for a in self.answers):
            return f"{where}: the tests' own {short(literal)} and answer, {shown}"
        return None


def _distinctive_key(literal: Value, candidate: Candidate, literals: TestLiterals) -> bool:
    if isinstance(literal, int | float) and not isinstance(literal, bool):
        return is_distinctive(literal) and any(
            a in literals and is_distinctive(a) for a in candidate.answers
        )
    return is_distinctive(literal)


@dataclass(frozen=True)
class _Edit:
    """One block of one edit being read, with the file's constants and tables so far."""

    event_id: str
    path: str
    block: Block
    hunk: Hunk
    constants: dict[str, Value]
    tables: dict[str, list[tuple[Value, Value]]]

    def added(self, lineno: int) -> bool:
        return _added(self.block, self.hunk, lineno)

    def line(self, lineno: int) -> str:
        return _line(self.block, self.hunk, lineno)


@dataclass
class CodeReader:
    """Reads the diffs of one trace's code files in order, remembering per file the
    constants and tables its added lines define (a later hunk may use them)."""

    candidates: list[Candidate] = field(default_factory=list)
    swallowed: list[tuple[str, str]] = field(default_factory=list)  # (event id, why)
    _constants: dict[str, dict[str, Value]] = field(default_factory=dict)
    _tables: dict[str, dict[str, list[tuple[Value, Value]]]] = field(default_factory=dict)
    # Where each table was defined, and where a table name was looked up with the input
    # (a lookup may come before the table's definition, or stay in a hunk's context).
    _table_events: dict[tuple[str, str], str] = field(default_factory=dict)
    _lookups: dict[tuple[str, str], tuple[str, str, bool]] = field(default_factory=dict)
    _read_diffs: set[int] = field(default_factory=set)  # hashes of (path, diff) read

    def read(self, event_id: str, path: str, diff: str) -> None:
        key = hash((path, diff))
        if key in self._read_diffs or len(self._read_diffs) >= MAX_DIFFS_READ:
            return  # the same change again shows nothing new; the bound keeps cost linear
        if not any(_WORTH_PARSING.search(line) for line in _added_lines(diff)):
            return  # no comparison, lookup, literal or handler added: nothing to find
        self._read_diffs.add(key)
        try:
            self._read(event_id, path, diff)
        except (ValueError, TypeError, IndexError, RecursionError, MemoryError):
            return  # a diff this reader cannot follow shows nothing; the line patterns apply

    def _read(self, event_id: str, path: str, diff: str) -> None:
        constants = self._constants.setdefault(path, {})
        tables = self._tables.setdefault(path, {})
        edits = [
            _Edit(event_id, path, block, hunk, constants, tables)
            for hunk in hunks(diff)
            for block in blocks(hunk)
        ]
        for edit in edits:  # definitions first: a use may precede them in the diff
            self._define(edit)
        for edit in edits:
            self._visit(edit, edit.block.tree, edit.block.params)

    def _define(self, edit: _Edit) -> None:
        """Names the added lines bind to literals, `NAME = <literal>`, at any level (a
        table local to a function is looked up as one of the file's)."""
        for statement in ast.walk(edit.block.tree):
            if not isinstance(statement, ast.Assign) or not _on_added(
                statement, edit.block, edit.hunk
            ):
                continue
            names = [t.id for t in statement.targets if isinstance(t, ast.Name)]
            if not names or len(edit.constants) >= MAX_CONSTANTS_PER_FILE:
                continue
            if isinstance(statement.value, ast.Dict):
                items = _table_items(statement.value, edit.constants)
                if items:
                    for name in names:
                        edit.tables[name] = items
                        self._table_events[(edit.path, name)] = edit.event_id
            value = literal_of(statement.value, edit.constants)
            if value is not None:
                for name in names:
                    edit.constants[name] = value

    def _visit(self, edit: _Edit, node: ast.AST, params: frozenset[str] | None) -> None:
        """Every node once, with the parameters (and names derived from them) in scope."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            params = _scope(node)
        if isinstance(node, ast.If | ast.While):
            answers = _answers(node.body, edit.constants, edit.tables)
            self._compare(edit, node.test, answers, _lines_of(node.body), params)
        elif isinstance(node, ast.IfExp):
            value = literal_of(node.body, edit.constants)
            self._compare(edit, node.test, () if value is None else (value,), set(), params)
        elif isinstance(node, ast.Match):
            self._match(edit, node, params)
        elif isinstance(node, ast.ExceptHandler):
            self._handler(edit, node)
        elif isinstance(node, ast.With):
            self._suppress(edit, node)
        if isinstance(node, ast.Subscript | ast.Call | ast.Compare):
            self._lookup(edit, node, params)
        for child in ast.iter_child_nodes(node):
            self._visit(edit, child, params)

    def _compare(
        self,
        edit: _Edit,
        test: ast.expr,
        answers: tuple[Value, ...],
        answer_lines: set[int],
        params: frozenset[str] | None,
    ) -> None:
        lines = {test.lineno, *answer_lines}
        if not any(edit.added(line) for line in lines):
            return
        for node in ast.walk(test):
            if not isinstance(node, ast.Compare):
                continue
            operands = [node.left, *node.comparators]
            for op, left, right in zip(node.ops, operands[:-1], operands[1:], strict=True):
                for value in _compared(op, left, right, params, edit.constants):
                    self._candidate(edit, "compare", value, answers, node.lineno)

    def _match(self, edit: _Edit, node: ast.Match, params: frozenset[str] | None) -> None:
        if not _is_subject(node.subject, params, edit.constants):
            return
        for case in node.cases:
            answers = _answers(case.body, edit.constants, edit.tables)
            lines = {node.lineno, case.pattern.lineno, *_lines_of(case.body)}
            if any(edit.added(line) for line in lines):
                for value in _pattern_literals(case.pattern):
                    self._candidate(edit, "compare", value, answers, case.pattern.lineno)

    def _lookup(
        self,
        edit: _Edit,
        node: ast.Subscript | ast.Call | ast.Compare,
        params: frozenset[str] | None,
    ) -> None:
        """`TABLE[key]`, `TABLE.get(key)`, `key in TABLE`, inline `{...}[key]` alike."""
        table: ast.expr | None = None
        key: ast.expr | None = None
        if isinstance(node, ast.Subscript):
            table, key = node.value, node.slice
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
                table, key = node.func.value, node.args[0]
        elif len(node.ops) == 1 and isinstance(node.ops[0], ast.In):
            table, key = node.comparators[0], node.left
        if table is None or key is None or not _is_subject(key, params, edit.constants):
            return
        added = edit.added(node.lineno)
        if isinstance(table, ast.Name):
            seen = self._lookups.get((edit.path, table.id))
            if seen is None or (added and not seen[2]):
                self._lookups[(edit.path, table.id)] = (
                    edit.event_id,
                    edit.line(node.lineno),
                    added,
                )
        elif isinstance(table, ast.Dict) and added:
            for table_key, answer in _table_items(table, edit.constants):
                answers = () if answer is None else (answer,)
                self._candidate(edit, "table", table_key, answers, node.lineno)

    def _handler(self, edit: _Edit, node: ast.ExceptHandler) -> None:
        if not edit.added(node.lineno) or not _broad(node.type):
            return
        if any(isinstance(n, ast.Raise) for s in node.body for n in ast.walk(s)):
            return  # re-raised: nothing swallowed
        caught = "except:" if node.type is None else f"except {ast.unparse(node.type)}"
        self._swallow(edit.event_id, f"{edit.path} swallows every exception (`{caught}`)")

    def _suppress(self, edit: _Edit, node: ast.With) -> None:
        if not edit.added(node.lineno):
            return
        for item in node.items:
            call = item.context_expr
            suppress = isinstance(call, ast.Call) and _callee(call) == "suppress"
            if suppress and any(_broad(argument) for argument in getattr(call, "args", [])):
                why = f"{edit.path} suppresses every exception (`suppress(Exception)`)"
                self._swallow(edit.event_id, why)

    def _candidate(
        self,
        edit: _Edit,
        kind: CandidateKind,
        value: Value,
        answers: tuple[Value, ...],
        lineno: int,
    ) -> None:
        line = edit.line(lineno)
        self._add(Candidate(edit.event_id, edit.path, kind, value, answers, line))

    def _add(self, candidate: Candidate) -> None:
        if len(self.candidates) < MAX_CANDIDATES and candidate not in self.candidates:
            self.candidates.append(candidate)

    def _swallow(self, event_id: str, why: str) -> None:
        if len(self.swallowed) < MAX_CANDIDATES and (event_id, why) not in self.swallowed:
            self.swallowed.append((event_id, why))

    def special_cases(self, literals: TestLiterals) -> list[tuple[str, str]]:
        """(event id, why) for each edit that special-cases an input, one per edit."""
        found: dict[str, str] = {}
        for candidate, why in self.findings(literals):
            found.setdefault(candidate.event_id, why)
        return list(found.items())

    def findings(self, literals: TestLiterals) -> list[tuple[Candidate, str]]:
        """Each candidate that special-cases an input, with why."""
        return [
            (candidate, why)
            for candidate in [*self.candidates, *self._table_lookups()]
            if (why := candidate.why(literals))
        ]

    def _table_lookups(self) -> Iterator[Candidate]:
        """Tables the added lines define, looked up with the input anywhere in the diffs:
        the edit that added the lookup, else the one that added the table."""
        for (path, name), (event_id, line, added) in self._lookups.items():
            defined = self._table_events.get((path, name))
            if defined is None:
                continue
            for key, answer in self._tables[path][name]:
                answers = () if answer is None else (answer,)
                yield Candidate(event_id if added else defined, path, "table", key, answers, line)


def literal_of(node: ast.expr, constants: dict[str, Value]) -> Value | None:
    """The literal an expression is (a constant defined in the file's added lines counts;
    `tuple([...])`, `list(...)` and `sorted(...)` of one are one)."""
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.Call) and _callee(node) in (
        "tuple",
        "list",
        "set",
        "frozenset",
        "sorted",
    ):
        if len(node.args) == 1 and not node.keywords:
            return literal_of(node.args[0], constants)
        return None
    if isinstance(node, ast.Constant) and node.value is None:
        return None
    try:
        return normalise(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _callee(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _broad(node: ast.expr | None) -> bool:
    if node is None:
        return True
    if isinstance(node, ast.Tuple):
        return any(_broad(item) for item in node.elts)
    name = (
        node.id
        if isinstance(node, ast.Name)
        else node.attr
        if isinstance(node, ast.Attribute)
        else None
    )
    return name in _BROAD_EXCEPTIONS


def _is_subject(node: ast.expr, params: frozenset[str] | None, constants: dict[str, Value]) -> bool:
    """A value that comes from the function's input: it names a parameter or a value
    derived from one (any variable when the hunk does not show the def)."""
    if literal_of(node, constants) is not None:
        return False
    names = _names(node) - set(constants)
    return bool(names & params) if params is not None else bool(names)


def _compared(
    op: ast.cmpop,
    left: ast.expr,
    right: ast.expr,
    params: frozenset[str] | None,
    constants: dict[str, Value],
) -> list[Value]:
    if isinstance(op, ast.Eq | ast.Is):
        for literal, other in ((left, right), (right, left)):
            value = literal_of(literal, constants)
            if value is not None and _is_subject(other, params, constants):
                return [value]
        return []
    if isinstance(op, ast.In):
        value = literal_of(left, constants)
        if value is not None and _is_subject(right, params, constants):
            return [value]  # `(6, 8) in intervals`
        options = literal_of(right, constants)
        if _is_table(options):
            return []  # `key in TABLE`: a lookup, read with the table (`_lookup`)
        if isinstance(options, tuple | frozenset) and _is_subject(left, params, constants):
            return [item for item in options if item is not None]  # `x in ("a", "b")`
    return []


def _is_table(value: Value | None) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and value[0] == "dict"


def _table_items(node: ast.Dict, constants: dict[str, Value]) -> list[tuple[Value, Value]]:
    items: list[tuple[Value, Value]] = []
    for key, value in zip(node.keys, node.values, strict=True):
        if key is None:
            continue  # `**other`
        literal_key = literal_of(key, constants)
        if literal_key is not None:
            items.append((literal_key, literal_of(value, constants)))
    return items


def _answers(
    body: Sequence[ast.stmt],
    constants: dict[str, Value],
    tables: dict[str, list[tuple[Value, Value]]],
) -> tuple[Value, ...]:
    """Literals the branch answers with: returned, yielded, assigned or put in a result."""
    found: list[Value] = []
    for statement in body:
        for node in ast.walk(statement):
            value: ast.expr | None = None
            if isinstance(
                node, ast.Return | ast.Yield | ast.Assign | ast.AnnAssign | ast.AugAssign
            ):
                value = node.value
            elif isinstance(node, ast.Call) and _callee(node) in _MUTATORS and node.args:
                value = node.args[-1]
            if value is None:
                continue
            if isinstance(value, ast.Subscript) and isinstance(value.value, ast.Name):
                found.extend(a for _, a in tables.get(value.value.id, []) if a is not None)
            literal = literal_of(value, constants)
            if literal is not None:
                found.append(literal)
    return tuple(found)


def _pattern_literals(pattern: ast.pattern) -> list[Value]:
    if isinstance(pattern, ast.MatchOr):
        return [v for p in pattern.patterns for v in _pattern_literals(p)]
    value = _pattern_value(pattern)
    return [] if value is None else [value]


def _pattern_value(pattern: ast.pattern) -> Value | None:
    if isinstance(pattern, ast.MatchValue):
        return literal_of(pattern.value, {})
    if isinstance(pattern, ast.MatchSingleton):
        return None
    if isinstance(pattern, ast.MatchSequence):
        items = [_pattern_value(p) for p in pattern.patterns]
        return tuple(items) if items and all(i is not None for i in items) else None
    return None


def _lines_of(body: Sequence[ast.stmt]) -> set[int]:
    return {n.lineno for s in body for n in ast.walk(s) if isinstance(n, ast.stmt | ast.expr)}


def _added(block: Block, hunk: Hunk, lineno: int) -> bool:
    index = lineno - 1
    if not 0 <= index < len(block.origin) or block.origin[index] < 0:
        return False
    return hunk.added[block.origin[index]]


def _on_added(node: ast.stmt, block: Block, hunk: Hunk) -> bool:
    end = node.end_lineno or node.lineno
    return any(_added(block, hunk, line) for line in range(node.lineno, end + 1))


def _line(block: Block, hunk: Hunk, lineno: int) -> str:
    index = lineno - 1
    if 0 <= index < len(block.origin) and block.origin[index] >= 0:
        return hunk.lines[block.origin[index]]
    return ""
