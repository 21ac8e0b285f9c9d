"""The outcome stored on a trace when its pipeline ends, and shown by `GET /v1/traces/{id}`.

Built from what the steps produced (the Assemble summary, the QA report, the judge result),
but bounded: the trace item is one DynamoDB item (400 KB at most), so long lists and texts
are cut here, with counts saying how much there was. The full QA report and judge result
stay in S3, behind the trace's result links.

Shapes (JSON):
  complete  {"qa": QA | null,
             "qa_skipped": null | "no_snapshots" | "timeout" | "task_exited" | "out_of_memory",
             "judge": JUDGE, "metrics": {...}, "chain": {"key_id", "head", "length"},
             "event_count", "chunk_count", "recorded_at", "state_check": STATE | null}
     STATE  {"status": "match" | "state_mismatch" | "not_checked", "detail",
             "files_checked", "edits_applied", "first_mismatch": {"path", "reason",
             "detail", "event_seq", "unexplained_bytes"} | null, "mismatch_count",
             "unexplained_bytes", "unverified_count"} (prtrace.provenance.state_check),
             "provenance": {"manifest_sha256", "key_id", "algorithm"} | null
             (added by RecordStep when it signed the trace manifest)
     QA     {"verdict", "error_reason", "error_detail", "backend", "duration_ms",
             "fail_to_pass" | "pass_to_pass" | "pass_to_fail" | "fail_to_fail" |
             "fail_to_absent" | "fail_to_skipped" | "target_tests" | "unresolved_targets":
                 {"count", "ids", "truncated"},
             "target_source", "resolution", "verdict_reason",
             "flags": [{"code", "blocking", "detail", "paths", "path_count"}], "flag_count",
             "runs": {"base" | "final" | "base_with_final_tests" | "held":
                 {"exit_code", "passed", "failed", "errors", "skipped", "timed_out",
                  "error_reason", "log_sha256"}}}
             (the QA fields after `fail_to_fail` are absent on traces recorded before the QA
             report had them; when the QA task ended without a report (qa_skipped timeout,
             task_exited, out_of_memory) QA is this shape with verdict "error", the reason
             and its detail, and empty lists)
     JUDGE  {"status", "judge", "rubric_version", "overall", "summary", "problems",
             "needs_human_review", "scores": [SCORE], "stand_in": {"judge", "overall",
             "scores": [SCORE]} | null, "review": {"samples", "threshold", "spread",
             "reasons", "models": [{"judge", "samples", "overall", "scores"}]} | null}
     SCORE  {"dimension", "score", "rationale", "cited_event_ids"}
             (`overall` is the named judge's only: null when the model was unavailable,
             whose offline stand-in is under `stand_in`; `stand_in` and `review` are absent
             on traces recorded before they existed)
  rejected  {"reason": {"code", "detail", "chunk_seq", "event_seq", "event_id",
             "artifact_sha256"}, "recorded_at"}
  failed    {"stage", "error", "cause", "cause_truncated", "recorded_at"}
"""

from __future__ import annotations

from typing import Any, Final, Literal

import orjson

from prtrace.judge.result import DimensionScore, JudgeResult, ReviewFlag
from prtrace.provenance.state_check import StateCheck
from prtrace.qa.report import ErrorReason, QAReport

# Test ids per list (the most telling lists first share the byte budget).
MAX_TEST_IDS: Final = 200
MAX_TEST_ID_CHARS: Final = 512
MAX_TEST_ID_BYTES: Final = 64 * 1024
TEST_LISTS: Final = (
    "fail_to_pass",
    "pass_to_fail",
    "unresolved_targets",
    "target_tests",
    "fail_to_absent",
    "fail_to_skipped",
    "fail_to_fail",
    "pass_to_pass",
)
# The flags a QA report raised (prtrace.qa.report.QAFlag): blocking ones first, each with
# its detail and some of its paths, all of them within MAX_FLAG_BYTES (as JSON).
MAX_FLAGS: Final = 20
MAX_FLAG_BYTES: Final = 24 * 1024
MAX_FLAG_DETAIL_BYTES: Final = 400
MAX_FLAG_PATHS: Final = 10
MAX_FLAG_PATH_BYTES: Final = 400  # for all of one flag's paths
MAX_VERDICT_REASON_CHARS: Final = 1000
RUN_NAMES: Final = ("base", "final", "base_with_final_tests", "held")
MAX_RATIONALE_CHARS: Final = 1000
MAX_CITED_EVENTS: Final = 10
MAX_SUMMARY_CHARS: Final = 2000
MAX_PROBLEMS: Final = 5
MAX_PROBLEM_CHARS: Final = 300
MAX_DETAIL_CHARS: Final = 2000
MAX_ERROR_CHARS: Final = 256
MAX_CAUSE_CHARS: Final = 8 * 1024
MAX_METRICS_BYTES: Final = 16 * 1024
# Far below DynamoDB's 400 KB item limit, leaving room for the trace's own attributes.
MAX_OUTCOME_BYTES: Final = 160 * 1024

# Why a complete trace has no QA report: no snapshots to test, or the QA task ended without
# one (its state timeout; its container exited non-zero; ECS killed it for its memory use).
# The last three are reported once, never retried: the repository's outcome, not the
# infrastructure's (a task that never started is started again by the state machine).
QASkipped = Literal["no_snapshots", "timeout", "task_exited", "out_of_memory"]
# "pipeline": the execution itself ended (timed out, aborted, or failed recording the failure)
# before a stage could record it; the execution-end rule or the sweeper records it.
FailedStage = Literal["assemble", "qa", "judge", "record", "pipeline"]

QA_TIMEOUT_DETAIL: Final = "the QA task did not finish within its time limit"
# The QA report's error reason for each way the task ends without a report.
_NOT_REPORTED_REASON: Final[dict[str, ErrorReason]] = {
    "timeout": "timeout",
    "task_exited": "infra_error",  # the runner stores a report whenever it can
    "out_of_memory": "oom",
}


class OutcomeTooLarge(Exception):
    """A bounded outcome still came out larger than the item can take (a bug here)."""


def clip(text: str, limit: int) -> str:
    """At most `limit` characters; a cut text ends with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def bounded_test_lists(report: QAReport) -> dict[str, dict[str, Any]]:
    """Each list as {"count", "ids", "truncated"}: at most MAX_TEST_IDS ids per list and
    MAX_TEST_ID_BYTES for all of them, spent in TEST_LISTS order."""
    budget = MAX_TEST_ID_BYTES
    lists: dict[str, dict[str, Any]] = {}
    for name in TEST_LISTS:
        ids: list[str] = getattr(report, name)
        kept: list[str] = []
        for test_id in ids[:MAX_TEST_IDS]:
            shown = clip(test_id, MAX_TEST_ID_CHARS)
            cost = len(shown.encode())
            if cost > budget:
                break
            budget -= cost
            kept.append(shown)
        lists[name] = {"count": len(ids), "ids": kept, "truncated": len(kept) < len(ids)}
    return lists


def clip_bytes(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8 (never a split character); a cut text ends with an
    ellipsis."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"  # "…" is 3 bytes


def bounded_flags(report: QAReport) -> list[dict[str, Any]]:
    """The report's flags, blocking ones first (in the report's order otherwise), at most
    MAX_FLAGS and MAX_FLAG_BYTES; each detail and each flag's paths cut to their byte
    budgets (`flag_count` beside the list says how many there were)."""
    ordered = sorted(report.flags, key=lambda flag: not flag.blocking)
    views: list[dict[str, Any]] = []
    left = MAX_FLAG_BYTES
    for flag in ordered[:MAX_FLAGS]:
        budget = MAX_FLAG_PATH_BYTES
        paths: list[str] = []
        for path in flag.paths[:MAX_FLAG_PATHS]:
            shown = clip_bytes(path, budget)
            budget -= len(shown.encode())
            paths.append(shown)
            if budget <= 3:
                break
        view = {
            "code": flag.code,
            "blocking": flag.blocking,
            "detail": clip_bytes(flag.detail, MAX_FLAG_DETAIL_BYTES),
            "paths": paths,
            "path_count": len(flag.paths),
        }
        left -= _size(view)
        if left < 0:
            break
        views.append(view)
    return views


def _log_sha256(log_key: str | None) -> str | None:
    """The artifact's SHA-256 from its key (`…/artifacts/<sha256>`): the viewer fetches a
    run's log through GET /v1/traces/{id}/artifacts/{sha256}."""
    digest = (log_key or "").rsplit("/", 1)[-1]
    return digest if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest) else None


def run_views(report: QAReport) -> dict[str, dict[str, Any]]:
    """Each pytest run that happened (base, final, base with final tests, held): counts and
    its log's artifact SHA-256."""
    views: dict[str, dict[str, Any]] = {}
    for name in RUN_NAMES:
        run = getattr(report, name)
        if run is None:
            continue
        views[name] = {
            "exit_code": run.exit_code,
            "passed": run.passed,
            "failed": run.failed,
            "errors": run.errors,
            "skipped": run.skipped,
            "timed_out": run.timed_out,
            "error_reason": run.error_reason,
            "log_sha256": _log_sha256(run.log_key),
        }
    return views


def qa_summary(report: QAReport) -> dict[str, Any]:
    detail, reason = report.error_detail, report.verdict_reason
    return {
        "verdict": report.verdict,
        "error_reason": report.error_reason,
        "error_detail": None if detail is None else clip(detail, MAX_DETAIL_CHARS),
        "backend": report.backend,
        "duration_ms": report.duration_ms,
        **bounded_test_lists(report),
        "target_source": report.target_source,
        "resolution": report.resolution,
        "verdict_reason": None if reason is None else clip(reason, MAX_VERDICT_REASON_CHARS),
        "flags": bounded_flags(report),
        "flag_count": len(report.flags),
        "runs": run_views(report),
    }


def qa_timed_out() -> dict[str, Any]:
    """QA hit the state machine's time limit: no report, the verdict is an error."""
    return qa_not_reported("timeout", QA_TIMEOUT_DETAIL)


def qa_skipped_detail(
    skipped: QASkipped, exit_code: int | None = None, reason: str | None = None
) -> str:
    """What an outcome says about a QA task that ended without a report."""
    if skipped == "task_exited":
        code = "an unknown code" if exit_code is None else f"code {exit_code}"
        return f"the QA task exited with {code} before storing a report; it was not run again"
    if skipped == "out_of_memory":
        why = f" ({clip(reason, 200)})" if reason else ""
        return f"the QA task was stopped for using more memory than it has{why}; not run again"
    return QA_TIMEOUT_DETAIL


def qa_not_reported(skipped: QASkipped, detail: str) -> dict[str, Any]:
    """The QA view of a task that ended without a report: the verdict is an error whose
    reason says how it ended (docs/qa.md)."""
    empty = {"count": 0, "ids": [], "truncated": False}
    return {
        "verdict": "error",
        "error_reason": _NOT_REPORTED_REASON[skipped],
        "error_detail": clip(detail, MAX_DETAIL_CHARS),
        "backend": None,
        "duration_ms": None,
        **{name: dict(empty) for name in TEST_LISTS},
        "target_source": "none",
        "resolution": None,
        "verdict_reason": None,
        "flags": [],
        "flag_count": 0,
        "runs": {},
    }


def _score_views(scores: list[DimensionScore]) -> list[dict[str, Any]]:
    return [
        {
            "dimension": score.dimension,
            "score": score.score,
            "rationale": clip(score.rationale, MAX_RATIONALE_CHARS),
            "cited_event_ids": [clip(e, 128) for e in score.cited_event_ids[:MAX_CITED_EVENTS]],
        }
        for score in scores
    ]


def _review_view(review: ReviewFlag | None) -> dict[str, Any] | None:
    if review is None:
        return None
    return {
        "samples": review.samples,
        "threshold": review.threshold,
        "spread": dict(review.spread),
        "reasons": [clip(r, MAX_PROBLEM_CHARS) for r in review.reasons[:MAX_PROBLEMS]],
        "models": [
            {
                "judge": clip(model.judge, 128),
                "samples": model.samples,
                "overall": model.overall,
                "scores": dict(model.scores),
            }
            for model in review.models
        ],
    }


def judge_summary(result: JudgeResult) -> dict[str, Any]:
    stand_in = result.stand_in
    return {
        "status": result.status,
        "judge": result.judge,
        "rubric_version": result.rubric_version,
        "overall": result.overall,
        "summary": clip(result.summary, MAX_SUMMARY_CHARS),
        "problems": [clip(p, MAX_PROBLEM_CHARS) for p in result.problems[:MAX_PROBLEMS]],
        "needs_human_review": None if result.review is None else result.review.needs_human_review,
        "scores": _score_views(result.scores),
        # Labelled apart: a stand-in's overall is not the judge's (its `overall` is null).
        "stand_in": None
        if stand_in is None
        else {
            "judge": stand_in.judge,
            "overall": stand_in.overall,
            "scores": _score_views(stand_in.scores),
        },
        "review": _review_view(result.review),
    }


def bounded_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Metrics are small scalars and small maps of them; anything else is cut down, and
    should it still be too large only the scalars are kept."""
    bounded = _bounded_value(metrics, depth=0)
    assert isinstance(bounded, dict)
    if _size(bounded) <= MAX_METRICS_BYTES:
        return bounded
    return {k: v for k, v in bounded.items() if not isinstance(v, dict | list)}


def _bounded_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return clip(value, 200)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict) and depth < 2:
        items = list(value.items())[:64]
        return {clip(str(k), 100): _bounded_value(v, depth + 1) for k, v in items}
    if isinstance(value, list | tuple) and depth < 2:
        return [_bounded_value(v, depth + 1) for v in value[:32]]
    return None  # nested deeper than a summary needs


def complete_outcome(
    summary: dict[str, Any],
    qa: QAReport | None,
    qa_skipped: QASkipped | None,
    judge: JudgeResult,
    recorded_at: str,
    qa_detail: str | None = None,
) -> dict[str, Any]:
    """`summary` is the Assemble step's (event/chunk counts, chain, metrics); `qa_detail`
    says how a QA task that stored no report ended (qa_skipped_detail)."""
    if qa_skipped is not None and qa_skipped in _NOT_REPORTED_REASON:
        detail = qa_detail or qa_skipped_detail(qa_skipped)
        qa_view: dict[str, Any] | None = qa_not_reported(qa_skipped, detail)
    elif qa is not None:
        qa_view = qa_summary(qa)
    else:
        qa_view = None
    chain = summary["chain"]
    return _checked(
        {
            "qa": qa_view,
            "qa_skipped": qa_skipped,
            "judge": judge_summary(judge),
            "metrics": bounded_metrics(summary.get("metrics") or {}),
            "chain": {
                "key_id": clip(str(chain["key_id"]), 128),
                "head": clip(str(chain["head"]), 128),
                "length": chain["length"],
            },
            "event_count": summary["event_count"],
            "chunk_count": summary["chunk_count"],
            "recorded_at": recorded_at,
            "state_check": _state_view(summary.get("state_check")),
        }
    )


def _state_view(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if state is None:
        return None
    view = StateCheck.model_validate(state)  # bounded by construction (clipped details)
    return view.model_dump(mode="json", exclude={"mismatches", "unverified", "version"})


def rejected_outcome(reason: dict[str, Any], recorded_at: str) -> dict[str, Any]:
    return _checked(
        {
            "reason": {
                "code": clip(str(reason["code"]), 64),
                "detail": clip(str(reason["detail"]), MAX_DETAIL_CHARS),
                "chunk_seq": reason.get("chunk_seq"),
                "event_seq": reason.get("event_seq"),
                "event_id": _clip_optional(reason.get("event_id"), 128),
                "artifact_sha256": _clip_optional(reason.get("artifact_sha256"), 64),
            },
            "recorded_at": recorded_at,
        }
    )


def failed_outcome(stage: FailedStage, error: str, cause: str, recorded_at: str) -> dict[str, Any]:
    """`error` and `cause` as Step Functions caught them (the cause is often a JSON text
    with the error message and stack trace: kept as text, cut to MAX_CAUSE_CHARS)."""
    return _checked(
        {
            "stage": stage,
            "error": clip(error, MAX_ERROR_CHARS),
            "cause": clip(cause, MAX_CAUSE_CHARS),
            "cause_truncated": len(cause) > MAX_CAUSE_CHARS,
            "recorded_at": recorded_at,
        }
    )


def _clip_optional(value: Any, limit: int) -> str | None:
    return None if value is None else clip(str(value), limit)


def _size(value: Any) -> int:
    return len(orjson.dumps(value))


def _checked(outcome: dict[str, Any]) -> dict[str, Any]:
    size = _size(outcome)
    if size > MAX_OUTCOME_BYTES:
        raise OutcomeTooLarge(f"outcome is {size} bytes; the limit is {MAX_OUTCOME_BYTES}")
    return outcome
