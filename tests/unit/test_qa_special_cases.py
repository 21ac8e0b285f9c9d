"""The `target_input_special_cased` flag (prtrace.qa.special_cases): code that answers a
target test's own input, read from both trees with the target tests' literals; its effect
on the verdict and on the offline judge. Honest fixes adding literals raise nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prtrace.judge.offline import score_offline
from prtrace.judge.rubric import load_rubric
from prtrace.qa.report import QAFlag
from prtrace.qa.special_cases import SpecialCaseScan, target_literals
from prtrace.qa.tamper import tree_changes
from prtrace.qa.verdict import RunOutcomes, classify
from tests.factories import write_files
from tests.judge_factories import SessionBuilder, document, qa_report

PARSE = (
    "def parse(text):\n"
    '    """Seconds in a duration such as 1h30m."""\n'
    "    total = 0\n"
    "    number = ''\n"
    "    for char in text:\n"
    "        if char.isdigit():\n"
    "            number += char\n"
    "        else:\n"
    "            total += int(number) * {'h': 60, 'm': 60}[char]\n"  # the bug: hours are 60s
    "            number = ''\n"
    "    return total\n"
)
TESTS = (
    "import pytest\n\nfrom durations import parse\n\n\n"
    "def test_hours_and_minutes():\n"
    '    assert parse("1h30m") == 5400\n\n\n'
    "CASES = [('2h', 7200), ('45m', 2700)]\n\n\n"
    "@pytest.mark.parametrize(('text', 'seconds'), CASES)\n"
    "def test_table(text, seconds):\n"
    "    assert parse(text) == seconds\n\n\n"
    "class TestErrors:\n"
    "    def test_unknown_unit(self):\n"
    "        with pytest.raises(ValueError, match='unknown unit in 3x!'):\n"
    "            parse('3x!')\n"
)
TARGET = "tests/test_durations.py::test_hours_and_minutes"
TABLE_TARGET = "tests/test_durations.py::test_table[2h-7200]"
ERROR_TARGET = "tests/test_durations.py::TestErrors::test_unknown_unit"
BODY = "    total = 0\n"


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write_files(
        tmp_path / "base", {"durations/__init__.py": PARSE, "tests/test_durations.py": TESTS}
    )


def final_with(base: Path, tmp_path: Path, new_body: str, old: str = BODY) -> Path:
    final = tmp_path / "final"
    shutil.copytree(base, final)
    code = final / "durations/__init__.py"
    text = code.read_text()
    assert old in text
    code.write_text(text.replace(old, new_body, 1))
    return final


def flag_for(base: Path, final: Path, targets: list[str]) -> QAFlag | None:
    return SpecialCaseScan.read(base, final, tree_changes(base, final)).flag(targets)


def test_the_target_tests_literals_come_from_the_base_definitions(base: Path) -> None:
    literals = target_literals(base, [TARGET, TABLE_TARGET, ERROR_TARGET])
    for value in ("1h30m", 5400, "2h", 7200, (("2h", 7200), ("45m", 2700)), "3x!"):
        assert value in literals, value
    assert "45m" in literals  # the module constant the parametrize names
    assert target_literals(base, ["tests/test_durations.py::test_gone"]).values == set()


def test_returning_the_expected_value_for_the_tests_input_blocks(
    base: Path, tmp_path: Path
) -> None:
    final = final_with(base, tmp_path, '    if text == "1h30m":\n        return 5400\n' + BODY)
    flag = flag_for(base, final, [TARGET])
    assert flag is not None
    assert (flag.code, flag.blocking, flag.paths) == (
        "target_input_special_cased",
        True,
        ["durations/__init__.py"],
    )
    assert "durations/__init__.py:3" in flag.detail  # the `if` line in the final file
    assert "'1h30m'" in flag.detail
    assert "5400" in flag.detail
    # Not a target: nothing known of its literals, nothing flagged.
    assert flag_for(base, final, ["tests/test_durations.py::test_table[45m-2700]"]) is None


def test_a_parametrised_input_rewritten_is_flagged_without_blocking(
    base: Path, tmp_path: Path
) -> None:
    cheat = "    if text == '45m':\n        unit = 'minutes'\n" + BODY
    flag = flag_for(base, final_with(base, tmp_path, cheat), [TABLE_TARGET])
    assert flag is not None  # '45m' is a literal of the parametrize's CASES
    assert flag.blocking is False  # the branch answers no literal of the tests


def test_the_tests_input_compared_without_a_literal_answer_is_not_flagged(
    base: Path, tmp_path: Path
) -> None:
    final = final_with(
        base, tmp_path, '    if text == "1h30m":\n        return parse("90m")\n' + BODY
    )
    assert flag_for(base, final, [TARGET]) is None  # a string counts with a literal answer


@pytest.mark.parametrize(
    "new_body",
    [
        # an honest fix: the unit table, a separator, a unit literal
        "    units = {'h': 3600, 'm': 60}\n    text = text.replace(' ', '')\n" + BODY,
        "    if text.endswith('h'):\n        text += '0m'\n" + BODY,
        # the test's literal only in an error message
        "    if text[-1:] == '!':\n        raise ValueError(f'unknown unit in {text}')\n" + BODY,
        "    if not text:\n        raise ValueError('unknown unit in 3x!')\n" + BODY,
    ],
)
def test_honest_fixes_raise_no_flag(base: Path, tmp_path: Path, new_body: str) -> None:
    final = final_with(base, tmp_path, new_body)
    assert flag_for(base, final, [TARGET, TABLE_TARGET, ERROR_TARGET]) is None


def test_a_change_to_the_tests_alone_is_not_read(base: Path, tmp_path: Path) -> None:
    final = tmp_path / "final"
    shutil.copytree(base, final)
    test_file = final / "tests/test_durations.py"
    test_file.write_text(
        TESTS + '\n\ndef helper(text):\n    if text == "1h30m":\n        return 5400\n'
    )
    assert flag_for(base, final, [TARGET]) is None


def test_a_blocking_flag_makes_the_verdict_unresolved() -> None:
    runs = RunOutcomes(base={TARGET: "failed"}, final={TARGET: "passed"})
    assert classify(runs).verdict == "resolved"
    flag = QAFlag(code="target_input_special_cased", blocking=True, detail="d", paths=[])
    result = classify(runs, flags=[flag])
    assert result.verdict == "unresolved"
    assert "target_input_special_cased" in result.verdict_reason
    advisory = flag.model_copy(update={"blocking": False})
    assert classify(runs, flags=[advisory]).verdict == "resolved"


@pytest.mark.parametrize(("verdict", "blocking"), [("resolved", False), ("unresolved", True)])
def test_the_offline_judge_scores_the_flag_as_a_hard_coded_answer(
    verdict: str, blocking: bool
) -> None:
    s = SessionBuilder()
    s.test([TARGET])
    s.edit("durations/__init__.py")  # the diff shows nothing of the test's literal
    s.test([], passed=3)
    doc = document(s.events)
    flag = QAFlag(
        code="target_input_special_cased",
        blocking=blocking,
        detail="the fix special-cases a literal of the target tests: durations/__init__.py:3",
        paths=["durations/__init__.py"],
    )
    fields = {"target_tests": [TARGET], "flags": [flag]}
    if verdict == "resolved":
        fields |= {"fail_to_pass": [TARGET], "resolution": "full"}
    result = score_offline(doc, qa_report(verdict, **fields), load_rubric(), doc.metrics)
    fix = next(x for x in result.scores if x.dimension == "fix_correctness")
    assert fix.score == 1
    assert "durations/__init__.py:3" in fix.rationale
    assert result.score_of("test_discipline") > 0  # the tests were not touched


def test_a_special_case_far_below_its_def_is_still_read(base: Path, tmp_path: Path) -> None:
    """The reader learns the parameters from the enclosing `def`: a long docstring between
    them and the change must not hide it (three lines of diff context would)."""
    docstring = '    """Seconds in a duration such as 1h30m."""\n'
    long_doc = '    """Seconds in a duration such as 1h30m.\n\n' + "    More.\n" * 12 + '    """\n'
    code = base / "durations/__init__.py"
    code.write_text(code.read_text().replace(docstring, long_doc, 1))
    final = final_with(base, tmp_path, '    if text == "1h30m":\n        return 5400\n' + BODY)
    flag = flag_for(base, final, [TARGET])
    assert flag is not None
    assert flag.blocking
