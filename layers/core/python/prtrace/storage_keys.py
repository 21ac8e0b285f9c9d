"""Where a trace's objects live in the data bucket: one definition of each key.

Every key sits under the trace's prefix (`tenants/{tenant}/traces/{trace_id}/`): the chunk
bodies and artifacts ingestion stores and the pipeline's products, so a tenant's data
never leaves its prefix (and IAM policies can name these shapes).
"""

from __future__ import annotations

import re
from typing import Final

# The readiness probe lists this prefix (at most one key): it sits under `tenants/`, where
# every role may list, and no tenant has this name (tenant names start with a letter or
# a digit), so it is always empty.
READINESS_PREFIX: Final = "tenants/_readyz/"


def trace_prefix(tenant: str, trace_id: str) -> str:
    return f"tenants/{tenant}/traces/{trace_id}"


# Any key under a trace's prefix, built from trace_prefix itself: one shape.
_UNDER_A_TRACE: Final = re.compile(
    "^"
    + re.escape(trace_prefix("TENANT", "TRACE"))
    .replace("TENANT", "(?P<tenant>[^/]+)")
    .replace("TRACE", "(?P<trace>[^/]+)")
    + "/"
)


def tenant_of_trace_key(key: str) -> str | None:
    """The tenant whose trace prefix holds `key`, or None for a key under no trace."""
    match = _UNDER_A_TRACE.match(key)
    return match["tenant"] if match else None


def chunk_body_key(tenant: str, trace_id: str, chunk_seq: int, sha256: str) -> str:
    """A chunk's canonical body; named by its digest too, so a losing commit race leaves
    an orphan body instead of overwriting the winner's."""
    return f"{trace_prefix(tenant, trace_id)}/chunks/{chunk_seq:06d}-{sha256}.json"


def artifact_key(tenant: str, trace_id: str, sha256: str) -> str:
    """Artifacts are content-addressed within their trace."""
    return f"{trace_prefix(tenant, trace_id)}/artifacts/sha256/{sha256}"


def document_key(tenant: str, trace_id: str) -> str:
    """The assembled `TraceDocument` (written by the Assemble step)."""
    return f"{trace_prefix(tenant, trace_id)}/document.json"


def qa_report_key(tenant: str, trace_id: str) -> str:
    """The QA report (written by the QA task)."""
    return f"{trace_prefix(tenant, trace_id)}/qa/report.json"


def judge_result_key(tenant: str, trace_id: str) -> str:
    """The judge result (written by the Judge step)."""
    return f"{trace_prefix(tenant, trace_id)}/judge/result.json"


def manifest_draft_key(tenant: str, trace_id: str) -> str:
    """The trace manifest as the Assemble step knows it (prtrace.provenance.manifest; unsigned)."""
    return f"{trace_prefix(tenant, trace_id)}/manifest/assembled.json"


def manifest_key(tenant: str, trace_id: str) -> str:
    """The complete trace manifest (written and signed by the Record step)."""
    return f"{trace_prefix(tenant, trace_id)}/manifest.json"


def manifest_envelope_key(tenant: str, trace_id: str) -> str:
    """The manifest's signature: a DSSE envelope over an in-toto Statement."""
    return f"{trace_prefix(tenant, trace_id)}/manifest.dsse.json"


# ---- dataset exports (prtrace.dataset.exports): under the tenant, beside its traces ------------


def export_prefix(tenant: str, export_id: str) -> str:
    return f"tenants/{tenant}/exports/{export_id}"


def export_request_key(tenant: str, export_id: str) -> str:
    """What was asked (formats, filter) and when: written once, by the API."""
    return f"{export_prefix(tenant, export_id)}/request.json"


def export_file_key(tenant: str, export_id: str, name: str) -> str:
    """One file of the export (instances.jsonl, events.parquet, ...), by the job."""
    return f"{export_prefix(tenant, export_id)}/files/{name}"


def export_manifest_key(tenant: str, export_id: str) -> str:
    """The export's manifest.json: written last by the job, so its presence means done."""
    return f"{export_prefix(tenant, export_id)}/manifest.json"


def export_envelope_key(tenant: str, export_id: str) -> str:
    """The manifest's signature: a DSSE envelope over an in-toto Statement."""
    return f"{export_prefix(tenant, export_id)}/manifest.dsse.json"


def export_error_key(tenant: str, export_id: str) -> str:
    """Why the job could not finish, when it could say so."""
    return f"{export_prefix(tenant, export_id)}/error.json"
