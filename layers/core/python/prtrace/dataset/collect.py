"""Reading the traces a dataset export takes, from wherever they are: through the public
API on a client (prtrace_client.export.ApiTraceSource) or from the stores on the service
(prtrace.adapters.export_source.StoreTraceSource). Both give the same views and bytes, so
`prtrace export` and the export job select and read the same bundles.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from prtrace.dataset.document_stream import document_header, load_document
from prtrace.dataset.files import Flagged, Skipped, Unusable
from prtrace.dataset.rows import ExportFilter, TraceBundle
from prtrace.judge.result import JudgeResult
from prtrace.patches import workspace_patch
from prtrace.qa.archive import extract_archive
from prtrace.qa.errors import UnsafeArchive
from prtrace.qa.report import QAReport

ResultKind = Literal["document", "qa-report", "judge-result"]


class UnreadableTrace(Exception):
    """A selected trace whose results cannot be read (the message says why): skipped."""


class TraceSource(Protocol):
    def iter_views(self) -> Iterable[Mapping[str, Any]]:
        """The tenant's trace views, as the API lists them (`TraceRecord.public(brief)`)."""

    def result(self, trace_id: str, kind: ResultKind) -> bytes | None:
        """A pipeline product's bytes; None when the trace has none (QA skipped, judge not
        stored). Raises UnreadableTrace when it should exist and cannot be read."""

    def artifact(self, trace_id: str, sha256: str) -> bytes:
        """A stored artifact's bytes. Raises UnreadableTrace."""


class Selection:
    """The traces an export takes, read one at a time in trace id order as it is iterated
    (each bundle is dropped before the next is read, and a large trace's events are read
    one at a time from its document's bytes, so memory follows the largest document).
    Iterating fills `skipped` (selected by their view, results unreadable, with why),
    `flagged` (left out for tamper flags unless the filter includes them) and `unusable`
    (left out as not usable unless it includes those). Iterate once."""

    def __init__(
        self,
        source: TraceSource,
        chosen: ExportFilter,
        on_trace: Callable[[str], None] | None = None,
    ) -> None:
        self._source, self._chosen, self._on_trace = source, chosen, on_trace
        # The views are small; sorting them first gives trace id order without holding
        # any trace's results.
        views = [view for view in source.iter_views() if chosen.matches_view(view)]
        self.views = sorted(views, key=lambda view: str(view["trace_id"]))
        self.skipped: list[Skipped] = []
        self.flagged: list[Flagged] = []
        self.unusable: list[Unusable] = []
        self._iterated = False

    def __iter__(self) -> Iterator[TraceBundle]:
        if self._iterated:
            raise RuntimeError("a selection is read once: collect() again for another pass")
        self._iterated = True
        for view in self.views:
            trace_id = str(view["trace_id"])
            if self._on_trace:
                self._on_trace(trace_id)
            try:
                bundle = read_bundle(self._source, view)
            except (UnreadableTrace, UnsafeArchive) as exc:
                self.skipped.append(Skipped(trace_id, str(exc)))
                continue
            if not self._chosen.matches_bundle(bundle):
                continue
            codes = self._chosen.left_out_for_flags(bundle)
            if codes:
                self.flagged.append(Flagged(trace_id, tuple(codes)))
                continue
            reasons = self._chosen.left_out_as_unusable(bundle)
            if reasons:
                self.unusable.append(Unusable(trace_id, tuple(reasons)))
                continue
            yield bundle
            del bundle  # not held while the next trace is read

    def read_artifact(self, trace_id: str, sha256: str) -> bytes | None:
        """An artifact a trajectory cites; None when it cannot be read (the step says so)."""
        try:
            return self._source.artifact(trace_id, sha256)
        except UnreadableTrace:
            return None


def collect(
    source: TraceSource,
    chosen: ExportFilter,
    *,
    on_trace: Callable[[str], None] | None = None,
) -> Selection:
    """The traces the filter selects, to be read as the selection is iterated."""
    return Selection(source, chosen, on_trace)


def read_bundle(source: TraceSource, view: Mapping[str, Any]) -> TraceBundle:
    trace_id = str(view["trace_id"])
    links = view.get("links") or {}
    document_bytes = source.result(trace_id, "document")
    if document_bytes is None:
        raise UnreadableTrace(f"trace {trace_id} has no assembled document")
    # A large document streams: its events are read one at a time as the export goes.
    document = load_document(document_bytes)
    report = None
    if links.get("qa_report", "listed") is not None:
        data = source.result(trace_id, "qa-report")
        report = None if data is None else QAReport.model_validate_json(data)
    data = source.result(trace_id, "judge-result")
    judge = None if data is None else JudgeResult.model_validate_json(data)
    snapshots = document_header(document).snapshots
    if snapshots is None:
        return TraceBundle(view, document, report, judge)
    with tempfile.TemporaryDirectory(prefix="prtrace-export-") as scratch:
        trees = []
        for side, ref in (("base", snapshots.base), ("final", snapshots.final)):
            archive = Path(scratch) / f"{side}.archive"
            archive.write_bytes(source.artifact(trace_id, ref.sha256))
            root = Path(scratch) / side
            root.mkdir()
            extract_archive(archive, ref.media_type, root)
            trees.append(_read_tree(root))
    patch = workspace_patch(trees[0], trees[1])
    return TraceBundle(view, document, report, judge, patch, "snapshots")


def _read_tree(root: Path) -> dict[str, bytes]:
    """Regular files by relative POSIX path (symlinks are not followed or diffed)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }
