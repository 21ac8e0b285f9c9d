"""Why a QA run stopped before it could compare the two snapshots.

Every failure of the QA machinery is raised as a QAError with a reason from the report's
taxonomy, so the runner always writes a report (verdict `error`) instead of crashing.
"""

from __future__ import annotations

from prtrace.qa.report import ErrorReason


class QAError(Exception):
    def __init__(self, reason: ErrorReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: ErrorReason = reason
        self.detail = detail


class UnsafeArchive(QAError):
    """An archive member that extraction refuses; names the member and the rule it broke."""

    def __init__(self, member: str, why: str) -> None:
        super().__init__("unsafe_archive", f"{member!r}: {why}")
        self.member = member
        self.why = why


class BackendUnavailable(QAError):
    """The selected sandbox backend cannot run here. Never silently replaced by another."""

    def __init__(self, backend: str, why: str) -> None:
        super().__init__("infra_error", f"sandbox backend {backend!r} is unavailable: {why}")
        self.backend = backend
