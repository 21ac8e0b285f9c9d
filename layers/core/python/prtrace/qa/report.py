"""The QA report: the contract between the QA task, the judge and the record step.

Written by the QA runner as JSON to S3; read by the judge and the record step. Change it
deliberately: the judge's prompt and the stored trace status are built from these fields.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

QA_REPORT_VERSION: Final = "prtrace.qa/v1"

Verdict = Literal["resolved", "unresolved", "error"]
# Why a QA run could not decide: kept apart from the code's own fault (a failing test is
# not an error, it is the evidence).
# Each reason names the party at fault; docs/qa.md ("Errors") documents each with a remedy.
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
# Where the verdict's target tests came from (docs/qa.md, "The verdict").
TargetSource = Literal["reproduction", "base_failures", "fix_tests", "none"]
# SWE-bench's resolution of the target tests: all, some or none of them pass.
Resolution = Literal["full", "partial", "none"]
TestChange = Literal["added", "modified", "removed"]
# What the fix did to the tests or the harness that deserves a reviewer's eye. Blocking
# flags stop a `resolved` verdict (docs/qa.md, "Tamper flags", says what each one means).
# Flags that say the fix may have gamed its tests: an export leaves such instances out
# unless asked for them. Changed tests or harness alone are what honest fixes also do.
TamperFlagCode = Literal[
    "target_test_modified",
    "target_test_removed",
    "result_hook_added",
    "pytest_plugin_added",
    "pytest_detection_in_code",
    "target_input_special_cased",
    "interpreter_hook_added",
    "process_exit_added",
    "run_ended_by_repository",
]
FlagCode = Literal[
    "test_files_changed",
    "harness_changed",
    TamperFlagCode,
    "environment_differs",
    "dependencies_missing",
]
TAMPER_FLAGS: Final[frozenset[str]] = frozenset(get_args(TamperFlagCode))

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
    base: Outcome | None = Field(
        default=None, description="the base snapshot's own run (never overwritten)"
    )
    base_with_final_tests: Outcome | None = Field(
        default=None, description="the final's definition on the base code, when that ran"
    )
    held: Outcome | None = Field(
        default=None, description="the base's definition and harness on the final code"
    )
    target: bool = Field(default=False, description="one of the tests the verdict is about")
    changed_by_fix: TestChange | None = Field(
        default=None, description="what the fix did to this test's definition"
    )


class QAFlag(BaseModel):
    """Something the fix did to the tests, the harness or the test run."""

    model_config = _REPORT

    code: FlagCode
    blocking: bool = Field(description="true: the verdict cannot be `resolved`")
    detail: str
    paths: list[str] = Field(default_factory=list, description="files or test ids concerned")


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
    compiled_modules: list[str] = Field(
        default_factory=list, description="compiled extension modules in the workspace tested"
    )
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
    fail_to_absent: list[str] = Field(
        default_factory=list, description="failing before, gone or deselected on final"
    )
    fail_to_skipped: list[str] = Field(
        default_factory=list, description="failing before, skipped on final or held"
    )
    target_tests: list[str] = Field(
        default_factory=list, description="the tests the verdict is about (docs/qa.md)"
    )
    target_source: TargetSource = "none"
    unresolved_targets: list[str] = Field(
        default_factory=list, description="target tests that did not pass on the final code"
    )
    resolution: Resolution | None = None
    flags: list[QAFlag] = Field(default_factory=list)
    verdict_reason: str | None = Field(default=None, description="one sentence: why this verdict")
    changed_test_files: list[str] = Field(default_factory=list)
    changed_harness_files: list[str] = Field(default_factory=list)
    tests: list[TestOutcome] = Field(default_factory=list)
    base: RunSummary | None = None
    final: RunSummary | None = None
    # Only when the fix changed test files: the final's tests run on the base code. It
    # gives `before` to the tests the base does not have (SWE-bench's test patch on base).
    base_with_final_tests: RunSummary | None = None
    # Only when the fix changed test or harness files: the base's own tests, conftests and
    # pytest configuration run on the final code (the tests the candidate did not write).
    held: RunSummary | None = None

    @property
    def blocking_flags(self) -> list[QAFlag]:
        return [flag for flag in self.flags if flag.blocking]

    @property
    def tamper_flags(self) -> list[QAFlag]:
        return [flag for flag in self.flags if flag.code in TAMPER_FLAGS]

    duration_ms: int = 0
