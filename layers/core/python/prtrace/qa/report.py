"""The QA report: the contract between the QA task, the judge and the record step.

Written by the QA runner as JSON to S3; read by the judge and the record step. Change it
deliberately: the judge's prompt and the stored trace status are built from these fields.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field

QA_REPORT_VERSION: Final = "prtrace.qa/v1"

Verdict = Literal["resolved", "unresolved", "error"]
# Why a QA run could not decide: kept apart from the code's own fault (a failing test is
# not an error, it is the evidence).
# Each reason names the party at fault; README "QA sandbox" documents each with a remedy.
ErrorReason = Literal[
    "timeout",
    "oom",
    "collection_error",
    "repo_error",  # the repository's own configuration, conftest or plugins (pytest exit 3/4)
    "infra_error",  # prtrace or the sandbox failed
    "unsafe_archive",
    "dependency_install_failed",
]
WorkspaceInstall = Literal["editable", "src_path", "none"]
PytestSource = Literal["repository", "runner"]
Outcome = Literal["passed", "failed", "error", "skipped", "absent"]

_REPORT = ConfigDict(extra="forbid", frozen=True)


class TestOutcome(BaseModel):
    """One test id (a pytest node id) before and after the fix. `before` is the outcome on
    the base code (with the final's test files when the fix changed tests)."""

    model_config = _REPORT
    __test__ = False  # not a pytest class

    test_id: str
    before: Outcome
    after: Outcome
    flaky: bool = False


class RunSummary(BaseModel):
    """One pytest run (base or final) as the sandbox saw it."""

    model_config = _REPORT

    exit_code: int | None
    duration_ms: int
    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    timed_out: bool = False
    error_reason: ErrorReason | None = None
    # Modules that failed to import: they are not tests, so they are listed here only.
    collection_errors: list[str] = Field(default_factory=list)
    pytest_version: str | None = Field(default=None, description="the pytest that ran")
    pytest_source: PytestSource | None = Field(
        default=None, description="repository: its environment's own; runner: prtrace's"
    )
    workspace_install: WorkspaceInstall | None = Field(
        default=None,
        description="editable: installed from the workspace; src_path: its build failed, "
        "src/ first on the path; none: nothing to build",
    )
    install_detail: str | None = None
    dependency_sources: list[str] = Field(
        default_factory=list, description="where the installed test dependencies were declared"
    )
    log_key: str | None = Field(default=None, description="artifact key of the truncated log")
    junit_key: str | None = Field(default=None, description="artifact key of the JUnit XML")


class QAReport(BaseModel):
    model_config = _REPORT

    version: Literal["prtrace.qa/v1"] = QA_REPORT_VERSION
    trace_id: str
    verdict: Verdict
    error_reason: ErrorReason | None = None
    error_detail: str | None = None
    backend: str
    fail_to_pass: list[str] = Field(default_factory=list)
    pass_to_pass: list[str] = Field(default_factory=list)
    pass_to_fail: list[str] = Field(default_factory=list)
    fail_to_fail: list[str] = Field(default_factory=list)
    tests: list[TestOutcome] = Field(default_factory=list)
    base: RunSummary | None = None
    final: RunSummary | None = None
    # Only when the fix changed test files: the final's tests run on the base code. Its
    # outcomes are then the `before` of each test (SWE-bench's test patch on the base).
    base_with_final_tests: RunSummary | None = None
    duration_ms: int = 0
