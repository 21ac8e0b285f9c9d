"""The trace's reproduction: the tests its `test_run` events saw failing before the first
edit of code that is not a test. They are the verdict's target tests (verdict.py) when the
base snapshot's run confirms they fail.

A recorded test id may be relative to where pytest ran (`test_x.py::t` run from `tests/`);
QA's ids are relative to the repository's root, so an id also matches by path suffix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath

from prtrace.qa.overlay import is_test_file
from prtrace.schema import Event, FileEditEvent, TestRunEvent


def reproduction(events: Sequence[Event]) -> list[str]:
    """Failing test ids of the test runs before the first non-test edit, in order, once."""
    seen: dict[str, None] = {}
    for event in events:
        if isinstance(event, FileEditEvent) and not is_test_file(
            PurePosixPath(str(event.payload.path))
        ):
            break
        if isinstance(event, TestRunEvent):
            for test_id in event.payload.failing_tests:
                seen.setdefault(test_id)
    return list(seen)


def match_reproduction(recorded: Iterable[str], known: Iterable[str]) -> list[str]:
    """QA test ids the recorded ids name: the same id, or the only id ending in
    `/<recorded>` (pytest run from a subdirectory)."""
    known_ids = sorted(set(known))
    matched: dict[str, None] = {}
    for test_id in recorded:
        if test_id in known_ids:
            matched.setdefault(test_id)
            continue
        suffixed = [k for k in known_ids if k.endswith("/" + test_id.lstrip("./"))]
        if len(suffixed) == 1:
            matched.setdefault(suffixed[0])
    return sorted(matched)
