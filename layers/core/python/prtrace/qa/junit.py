"""Read pytest's JUnit XML (junitparser) into outcomes keyed by pytest node id.

Test ids are pytest node ids (`tests/test_ranges.py::TestX::test_y[param]`), rebuilt from
the `file` attribute (pytest's `junit_family=xunit1`, which the runner asks for) and the
`classname`/`name` pair: the classname is the module's dotted path followed by any class
names, so what follows the module's dotted path are the classes. A module that fails to
import appears as one entry with the module's path as its id and outcome `error`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase

from prtrace.qa.report import Outcome

# When pytest reports the same id twice (a teardown error after a pass), the worst wins.
_SEVERITY: dict[Outcome, int] = {"absent": 0, "skipped": 1, "passed": 2, "failed": 3, "error": 4}


@dataclass
class JUnitOutcomes:
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    collection_errors: list[str] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for value in self.outcomes.values() if value == outcome)


def _module_file(classname: str, is_file: Callable[[str], bool]) -> tuple[str, list[str]] | None:
    """The longest dotted prefix of `classname` that is a module file in the tree, and the
    classes after it."""
    parts = classname.split(".")
    for cut in range(len(parts), 0, -1):
        candidate = "/".join(parts[:cut]) + ".py"
        if is_file(candidate):
            return candidate, parts[cut:]
    return None


def _dotted(file: str) -> str:
    """pytest's xunit1 classname of a file: `/` to `.`, only a `.py` suffix dropped (a
    doctest of README.rst has the classname `README.rst`)."""
    return file.replace("/", ".").removesuffix(".py")


def node_id(case: TestCase, is_file: Callable[[str], bool] | None = None) -> str:
    """`is_file` (a path relative to the root: is it a file of the tree?) settles tests
    inherited from a class in another module: xunit1's `file` is where a test function is
    defined (a base class in tests/__init__.py), while the node id names the module that
    collected it, which the classname carries."""
    file = case._elem.get("file")
    classname = case.classname or ""
    name = case.name or ""
    if file and PurePosixPath(file).name and classname and is_file is not None:
        module = _dotted(file)
        if classname != module and not classname.startswith(module + "."):
            found = _module_file(classname, is_file)
            if found is not None:
                return "::".join([found[0], *found[1], name])
    if not file:
        # No file attribute (xunit2 or another producer): best effort from the dotted path.
        module, _, cls = classname.rpartition(".")
        if cls and cls[:1].isupper():
            return f"{module.replace('.', '/')}.py::{cls}::{name}"
        return f"{classname.replace('.', '/')}.py::{name}"
    path = PurePosixPath(file)
    if not path.name:  # an item of the root itself (e.g. `.::project` from a plugin)
        return f"{file}::{name}"
    module = _dotted(file)
    if not classname:
        return f"{file}::{name}"
    if classname == module:
        classes: list[str] = []
    elif classname.startswith(module + "."):
        classes = classname[len(module) + 1 :].split(".")
    else:  # classname relative to another root: classes follow the module's own name
        parts = classname.split(".")
        stem = path.stem
        classes = parts[len(parts) - parts[::-1].index(stem) :] if stem in parts else []
    return "::".join([file, *classes, name])


def _outcome(case: TestCase) -> Outcome:
    results = case.result
    if any(isinstance(r, Error) for r in results):
        return "error"
    if any(isinstance(r, Failure) for r in results):
        return "failed"
    if any(isinstance(r, Skipped) for r in results):
        return "skipped"
    return "passed"


def _is_collection_error(case: TestCase) -> bool:
    return not case.classname and any(
        isinstance(r, Error) and (r.message or "") == "collection failure" for r in case.result
    )


def parse_junit(xml: bytes, is_file: Callable[[str], bool] | None = None) -> JUnitOutcomes:
    """Raise ValueError when the XML is not JUnit. The file was written inside the sandbox:
    a DTD (entity expansion, external entities) is refused before any parser sees it;
    pytest never writes one."""
    head = xml[:4096].lower()
    if b"<!doctype" in head or b"<!entity" in xml.lower():
        raise ValueError("not a JUnit XML document: DTDs and entities are refused")
    try:
        document = JUnitXml.fromstring(xml)
    except Exception as error:  # lxml/ElementTree raise several unrelated types
        raise ValueError(f"not a JUnit XML document: {error}") from None
    parsed = JUnitOutcomes()
    suites = [document] if document._tag == "testsuite" else list(document)
    for suite in suites:
        for case in suite:
            if not isinstance(case, TestCase):
                continue
            if _is_collection_error(case):
                test_id = case._elem.get("file") or case.name.replace(".", "/") + ".py"
                parsed.collection_errors.append(test_id)
                parsed.outcomes[test_id] = "error"
                continue
            test_id = node_id(case, is_file)
            outcome = _outcome(case)
            previous = parsed.outcomes.get(test_id, "absent")
            if _SEVERITY[outcome] > _SEVERITY[previous]:
                parsed.outcomes[test_id] = outcome
    return parsed
