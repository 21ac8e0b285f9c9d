"""Names of the CloudWatch metrics the functions publish (Powertools metrics, embedded in
their logs) and the stack's dashboard and alarms read: kept in one place so neither side
can rename a metric without the other.

Powertools adds a `service` dimension to every metric a `Metrics` instance publishes.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final = "prtrace"

API_SERVICE: Final = "prtrace-api"
JUDGE_SERVICE: Final = "prtrace-judge"
RECORD_SERVICE: Final = "prtrace-record"

# API: stored (not replayed) chunk PUTs and the events they held.
CHUNKS_STORED: Final = "ChunksStored"
EVENTS_STORED: Final = "EventsStored"

# Judge: 1 per judged trace whose model could not be reached (offline scores stood in),
# else 0; tokens the model counted and, when prices are configured, their cost in USD.
JUDGE_UNAVAILABLE: Final = "JudgeUnavailable"
# Judge: 1 per trace the offline judge scored although the mode allowed the model (`auto`
# with no key in the secret: a missing or emptied secret), else 0; not published in
# `offline` mode, where offline scores are what was asked for.
JUDGE_OFFLINE_FALLBACK: Final = "JudgeOfflineFallback"
JUDGE_PROMPT_TOKENS: Final = "JudgePromptTokens"
JUDGE_COMPLETION_TOKENS: Final = "JudgeCompletionTokens"
JUDGE_COST_USD: Final = "JudgeCostUsd"

# Record: 1 per completed trace, with a `verdict` dimension (prtrace.qa.report.Verdict).
QA_VERDICT: Final = "QaVerdict"
VERDICT_DIMENSION: Final = "verdict"
