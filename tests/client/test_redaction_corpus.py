"""Redaction against a corpus: every secret in `redaction_corpus/positives.txt` is caught,
and the false-positive rate over `negatives.txt` (hard cases: prose and code about
passwords and tokens from this repository's docs and sources and from HTTP libraries, git
log lines, digests, ids, flags naming secret files or variables) stays under a bound."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prtrace_client.redaction import MARKER_PATTERN, redact

CORPUS = Path(__file__).parent / "redaction_corpus"
KEY = b"corpus-key".ljust(32, b"\0")
MAX_FALSE_POSITIVE_RATE = 0.01
SECRET = re.compile(r"\{\{(.+?)\}\}")


def positives() -> list[str]:
    lines = (CORPUS / "positives.txt").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


@pytest.mark.parametrize("line", positives())
def test_no_secret_in_the_corpus_is_missed(line: str) -> None:
    secrets = SECRET.findall(line)
    assert secrets, "a positive line marks its secrets with {{…}}"
    text = SECRET.sub(r"\1", line)
    result = redact(text, KEY)
    for secret in secrets:
        assert secret not in result.text, f"{secret!r} missed in {result.text!r}"
    assert result.count == len(MARKER_PATTERN.findall(result.text)) >= len(secrets)
    # Around the secrets the text stays readable.
    for plain in SECRET.split(line)[::2]:
        for word in re.findall(r"[A-Za-z]{5,}", plain):
            assert word in result.text


def test_the_false_positive_rate_stays_under_its_bound() -> None:
    negatives = [line for line in (CORPUS / "negatives.txt").read_text().splitlines() if line]
    assert len(negatives) >= 500
    flagged = [line for line in negatives if redact(line, KEY).count]
    rate = len(flagged) / len(negatives)
    print(f"redaction false positives: {len(flagged)}/{len(negatives)} = {rate:.2%}")
    assert rate <= MAX_FALSE_POSITIVE_RATE, flagged
