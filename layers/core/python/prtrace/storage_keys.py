"""Where the pipeline's products live in the data bucket: one definition of each key.

Every key sits under the trace's prefix (`tenants/{tenant}/traces/{trace_id}/`), next to the
chunks and artifacts ingestion stores, so a tenant's data never leaves its prefix.
"""

from __future__ import annotations

from prtrace.ingest import trace_prefix


def document_key(tenant: str, trace_id: str) -> str:
    """The assembled `TraceDocument` (written by the Assemble step)."""
    return f"{trace_prefix(tenant, trace_id)}/document.json"


def qa_report_key(tenant: str, trace_id: str) -> str:
    """The QA report (written by the QA task)."""
    return f"{trace_prefix(tenant, trace_id)}/qa/report.json"


def judge_result_key(tenant: str, trace_id: str) -> str:
    """The judge result (written by the Judge step)."""
    return f"{trace_prefix(tenant, trace_id)}/judge/result.json"
