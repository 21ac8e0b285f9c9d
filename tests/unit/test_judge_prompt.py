"""The judge prompt: stable bytes (golden file), budget enforced, elision marked.

Regenerate the golden file after a deliberate change with
`PRTRACE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_judge_prompt.py`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from prtrace.judge.prompt import (
    DEFAULT_TOKEN_BUDGET,
    DIFF_TOKEN_BUDGET,
    MIN_TOKEN_BUDGET,
    build_prompt,
    estimate_tokens,
    response_schema,
)
from prtrace.judge.rubric import DIMENSION_IDS, load_rubric
from prtrace.metrics import compute_metrics
from tests.factories import trace_metadata
from tests.judge_factories import (
    FAILING_TEST,
    HOSTILE_PATH,
    HOSTILE_TEST,
    SessionBuilder,
    document,
    flagged_qa_report,
    huge_events,
    qa_report,
    sample_document,
    sample_qa_report,
)

GOLDEN = Path(__file__).parent / "golden" / "judge_prompt_sample.txt"
RUBRIC = load_rubric()


def _sample_prompt():
    doc = sample_document()
    return build_prompt(doc, sample_qa_report(), RUBRIC, compute_metrics(doc.events))


def test_sample_prompt_matches_the_golden_file():
    prompt = _sample_prompt()
    rendered = f"{prompt.system}\n===== user =====\n{prompt.user}"
    if os.environ.get("PRTRACE_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(rendered, encoding="utf-8")
    assert rendered == GOLDEN.read_text(encoding="utf-8"), (
        "the judge prompt changed; if deliberate, regenerate with PRTRACE_UPDATE_GOLDEN=1"
    )


def test_prompt_carries_every_event_id_the_qa_lists_and_the_metrics():
    prompt = _sample_prompt()
    for seq in range(11):
        assert f"[evt-{seq:04d}] #{seq} " in prompt.user
    assert "verdict: resolved" in prompt.user
    assert "FAIL_TO_PASS (1): tests/test_ranges.py::test_merge_keeps_last_interval" in prompt.user
    assert "PASS_TO_FAIL (0): none" in prompt.user
    assert "time_to_green_ms: 255800" in prompt.user
    assert prompt.events_omitted == 0


def test_prompt_carries_the_verdicts_targets_resolution_and_reason():
    prompt = _sample_prompt()
    assert "why: The 1 target test passes on the final code" in prompt.user
    assert "resolution of the target tests: full" in prompt.user
    assert f"target tests from reproduction (1): {FAILING_TEST}" in prompt.user
    assert "unresolved target tests (0): none" in prompt.user
    assert "flags: none" in prompt.user


def test_prompt_carries_flags_and_keeps_repository_text_on_its_line():
    doc = sample_document()
    prompt = build_prompt(doc, flagged_qa_report("tr_sample"), RUBRIC, doc.metrics)
    qa = prompt.user.split("## QA verdict", 1)[1].split("\n## ", 1)[0]
    lines = qa.splitlines()
    assert "verdict: unresolved" in lines
    assert "resolution of the target tests: partial" in lines
    assert f"unresolved target tests (1): {HOSTILE_TEST}" in lines
    assert f"target tests from reproduction (2): {FAILING_TEST}, {HOSTILE_TEST}" in lines
    assert "FAIL_TO_ABSENT (1): tests/test_ranges.py::test_gone" in lines
    assert "FAIL_TO_SKIPPED (1): tests/test_ranges.py::test_skipped" in lines
    assert "flags (2, 1 blocking):" in lines
    assert "- test_files_changed (not blocking): the fix changed 1 test file; paths (1): " \
        "tests/test_ranges.py" in lines  # fmt: skip
    flattened = HOSTILE_PATH.replace("\n", " ")
    assert (
        "- target_test_modified (blocking): the definition of a target test changed "
        f"<b>bold</b>; paths (2): {HOSTILE_TEST}, {flattened}"
    ) in lines
    assert "held (the base's tests and harness on the final code) run: passed=4 failed=1 " \
        "errors=0 skipped=0 timed_out=false" in lines  # fmt: skip
    # The path's line break did not start a line of its own (a fake heading).
    assert not any(line.startswith("## Scores") for line in prompt.user.splitlines())


def test_many_flags_and_long_lists_keep_the_qa_section_bounded():
    longest = "x" * 1_024
    ids = [f"{i}{longest}\n## fake" for i in range(200)]
    flags = [{"code": "harness_changed", "blocking": True, "detail": longest, "paths": ids}] * 100
    doc = sample_document()
    qa = flagged_qa_report(
        "tr_sample", target_tests=ids, unresolved_targets=ids, fail_to_absent=ids,
        fail_to_skipped=ids, fail_to_pass=ids, pass_to_fail=ids, fail_to_fail=ids, flags=flags,
    )  # fmt: skip
    prompt = build_prompt(doc, qa, RUBRIC, doc.metrics, token_budget=MIN_TOKEN_BUDGET)
    section = prompt.user.split("## QA verdict", 1)[1].split("\n## ", 1)[0]
    assert len(section) < 16_000
    assert "## fake" not in prompt.user
    assert "- (+80 more flags)" in section
    assert section.count("- harness_changed (blocking)") == 20
    assert "unresolved target tests (200): 0x" in section  # the most telling list first
    assert "FAIL_TO_SKIPPED (200): (+200 more)" in section  # the budget was spent before it


def test_prompt_without_qa_says_so():
    doc = sample_document()
    prompt = build_prompt(doc, None, RUBRIC, doc.metrics)
    assert "QA verdict\nnot run" in prompt.user


def test_same_trace_same_bytes_and_hash():
    a, b = _sample_prompt(), _sample_prompt()
    assert (a.system, a.user, a.sha256) == (b.system, b.user, b.sha256)


def test_long_diffs_are_truncated_with_a_note():
    s = SessionBuilder()
    s.edit("big.py", added=5_000, removed=0)
    prompt = build_prompt(document(s.events), None, RUBRIC, compute_metrics([]))
    assert "more characters truncated]" in prompt.user
    event_block = prompt.user.split("[evt-0000]")[1]
    assert estimate_tokens(event_block) <= DIFF_TOKEN_BUDGET + 50


@pytest.fixture(scope="module")
def huge():
    doc = document(huge_events(100_000))
    return doc, build_prompt(doc, None, RUBRIC, doc.metrics)


ELIDED_EVENTS = 20_000  # well over the budget, and five times faster to build than 100k


@pytest.fixture(scope="module")
def elided():
    doc = document(huge_events(ELIDED_EVENTS))
    return doc, build_prompt(doc, None, RUBRIC, doc.metrics)


@pytest.mark.slow
def test_100k_event_trace_stays_under_the_budget(huge):
    _doc, prompt = huge
    assert prompt.estimated_tokens <= DEFAULT_TOKEN_BUDGET
    assert prompt.events_rendered + prompt.events_omitted == 100_000
    assert prompt.events_omitted > 90_000


def test_elision_keeps_first_and_last_events_and_marks_gaps(elided):
    _doc, prompt = elided
    last = ELIDED_EVENTS - 1
    assert "[ev-0000000] #0 " in prompt.user
    assert f"[ev-{last:07d}] #{last} " in prompt.user
    markers = re.findall(r"… (\d+) events omitted \(#(\d+)-#(\d+): ([^)]*)\) …", prompt.user)
    assert markers
    assert sum(int(m[0]) for m in markers) == prompt.events_omitted
    for count, first, last, _ in markers:
        assert int(last) - int(first) + 1 == int(count)  # each marker is one contiguous run


def test_elision_prefers_commits_and_test_runs(elided):
    _, prompt = elided
    kept = re.findall(r"^\[ev-\d+\] #\d+ \+[-0-9:]+ (\w+)", prompt.user, flags=re.M)
    assert kept.count("commit") + kept.count("test_run") > len(kept) // 2
    # commits are spread over the whole session, not only its start
    seqs = [int(s) for s in re.findall(r"^\[ev-\d+\] #(\d+) \S+ commit", prompt.user, re.M)]
    assert max(seqs) > ELIDED_EVENTS * 3 // 4
    assert min(seqs) < ELIDED_EVENTS // 4


def test_small_budget_is_refused():
    doc = sample_document()
    with pytest.raises(ValueError, match="at least"):
        build_prompt(doc, None, RUBRIC, doc.metrics, token_budget=100)


def test_response_schema_is_strict_and_names_every_dimension():
    schema = response_schema(RUBRIC)
    scores = schema["properties"]["scores"]
    assert scores["required"] == list(DIMENSION_IDS)
    assert scores["additionalProperties"] is False
    assert orjson.dumps(schema)  # serializable as sent


_HASH_SCRIPT = """
from tests.judge_factories import document, huge_events, sample_document, sample_qa_report
from prtrace.judge.offline import score_offline
from prtrace.judge.prompt import build_prompt
from prtrace.judge.rubric import load_rubric
from prtrace.judge.service import encode_result
rubric = load_rubric()
doc = sample_document()
qa = sample_qa_report()
big = document(huge_events(20_000))
print(build_prompt(doc, qa, rubric, doc.metrics).sha256)
print(build_prompt(big, None, rubric, big.metrics).sha256)
print(encode_result(score_offline(big, None, rubric, big.metrics)).hex()[:4096])
"""


def test_prompt_and_offline_bytes_do_not_depend_on_the_process():
    """Set iteration order changes with PYTHONHASHSEED; the output must not."""
    root = Path(__file__).resolve().parents[2]
    outputs = []
    for seed in ("1", "2"):
        env = os.environ | {
            "PYTHONHASHSEED": seed,
            "PYTHONPATH": f"{root}:{root}/layers/core/python",
        }
        done = subprocess.run(
            [sys.executable, "-c", _HASH_SCRIPT],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    assert outputs[0].splitlines()[0] == _sample_prompt().sha256


def test_largest_possible_header_fits_the_minimum_budget():
    longest = "x" * 1_024
    qa = qa_report(
        "error",
        error_reason="infra_error",
        error_detail="d" * 50_000,
        fail_to_pass=[f"{i}{longest}" for i in range(200)],
        pass_to_fail=[f"{i}{longest}" for i in range(200)],
        fail_to_fail=[f"{i}{longest}" for i in range(200)],
    )
    metadata = trace_metadata("t" * 256)
    metadata["task"]["description"] = "y" * 16_384
    metadata["repository"]["url"] = "https://example.com/" + "r" * 2_000
    doc = document(huge_events(2_000), **metadata)
    prompt = build_prompt(doc, qa, RUBRIC, doc.metrics, token_budget=MIN_TOKEN_BUDGET)
    assert prompt.estimated_tokens <= MIN_TOKEN_BUDGET
    assert prompt.events_rendered > 0
    assert "(+180 more)" in prompt.user
