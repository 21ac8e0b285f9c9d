"""The traces of one tenant as the export job reads them: from the trace table and the
data bucket directly (the job holds no API token), shaped as the API shows them, so the
job and `prtrace export` select and read the same bundles."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final, Protocol

import orjson

from prtrace.dataset.collect import ResultKind, UnreadableTrace
from prtrace.ports import TraceStore
from prtrace.storage_keys import artifact_key, document_key, judge_result_key, qa_report_key

_KEYS: Final = {
    "document": document_key,
    "qa-report": qa_report_key,
    "judge-result": judge_result_key,
}
PAGE: Final = 100


class ReadsBlobs(Protocol):
    def get(self, key: str) -> bytes | None: ...


class StoreTraceSource:
    def __init__(self, traces: TraceStore, blobs: ReadsBlobs, tenant: str) -> None:
        self._traces = traces
        self._blobs = blobs
        self._tenant = tenant

    def iter_views(self) -> Iterator[Mapping[str, Any]]:
        after: str | None = None
        while True:
            page = self._traces.list_traces(self._tenant, PAGE, after)
            for trace in page.items:
                # Through JSON, as the API's list answers it: the same values, same types.
                yield orjson.loads(orjson.dumps(trace.public(brief=True)))
            if page.next_token is None:
                return
            after = page.next_token

    def result(self, trace_id: str, kind: ResultKind) -> bytes | None:
        data = self._blobs.get(_KEYS[kind](self._tenant, trace_id))
        if data is None and kind == "document":
            raise UnreadableTrace(f"the trace document of trace {trace_id} is not stored")
        return data

    def artifact(self, trace_id: str, sha256: str) -> bytes:
        data = self._blobs.get(artifact_key(self._tenant, trace_id, sha256))
        if data is None:
            raise UnreadableTrace(f"trace {trace_id} has no artifact with SHA-256 {sha256}")
        return data
