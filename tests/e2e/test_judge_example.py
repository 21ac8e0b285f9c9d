"""`python -m examples.judge_sample` scores the example trace offline, or with the model
when one is configured (here the local OpenAI-compatible test server)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from examples import judge_sample
from prtrace.canonical import canonical_json
from prtrace.integrity import compute_chain
from prtrace.judge.result import OFFLINE_JUDGE
from tests.fake_openai import answer, completion, fake_openai_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_model_configured(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "PRTRACE_OPENAI_SECRET_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_example_document_is_assembled_like_the_pipeline():
    doc = judge_sample.example_document()
    assert doc.chain.length == len(doc.events) == 11
    assert doc.metrics["test_runs_failing"] == 1
    canonical = [canonical_json(e.model_dump(mode="json", exclude_none=True)) for e in doc.events]
    expected = compute_chain(judge_sample.EXAMPLE_CHAIN_KEY, doc.trace_id, canonical)[-1]
    assert doc.chain.head == expected


@pytest.mark.parametrize(("verdict", "fix_score"), [("resolved", 5), ("unresolved", 1)])
def test_offline_scores_follow_the_qa_verdict(verdict, fix_score):
    result = judge_sample.judge_example(verdict)
    assert result.judge == OFFLINE_JUDGE
    assert result.score_of("fix_correctness") == fix_score


def test_with_a_model_configured(monkeypatch):
    with fake_openai_server() as fake:
        fake.push(completion(answer({"diagnosis": 5})))
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        result = judge_sample.judge_example("resolved")
    assert result.judge.startswith("openai:")
    assert result.score_of("diagnosis") == 5


def test_command_line_prints_the_scores():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "PRTRACE_"))}
    done = subprocess.run(
        [sys.executable, "-m", "examples.judge_sample", "--qa", "none"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert OFFLINE_JUDGE in done.stdout
    assert "status ok" in done.stdout
