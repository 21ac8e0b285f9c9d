"""Reading the traces a dataset export takes, from wherever they are: through the public
API on a client (prtrace_client.export.ApiTraceSource) or from the stores on the service
(prtrace.adapters.export_source.StoreTraceSource). Both give the same views and bytes, so
`prtrace export` and the export job select and read the same bundles.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from prtrace.assemble.document import TraceDocument
from prtrace.dataset.files import Flagged, Skipped
from prtrace.dataset.rows import ExportFilter, TraceBundle, sorted_bundles
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


def collect(
    source: TraceSource,
    chosen: ExportFilter,
    *,
    on_trace: Callable[[str], None] | None = None,
) -> tuple[list[TraceBundle], list[Skipped], list[Flagged]]:
    """The traces the filter selects, with their results; those selected by their view
    but whose results could not be read (with why); and those left out because their QA
    report has tamper flags (unless the filter includes them), with the flags' codes."""
    bundles: list[TraceBundle] = []
    skipped: list[Skipped] = []
    flagged: list[Flagged] = []
    for view in source.iter_views():
        if not chosen.matches_view(view):
            continue
        trace_id = str(view["trace_id"])
        if on_trace:
            on_trace(trace_id)
        try:
            bundle = read_bundle(source, view)
        except (UnreadableTrace, UnsafeArchive) as exc:
            skipped.append(Skipped(trace_id, str(exc)))
            continue
        if not chosen.matches_bundle(bundle):
            continue
        codes = chosen.left_out_for_flags(bundle)
        if codes:
            flagged.append(Flagged(trace_id, tuple(codes)))
            continue
        bundles.append(bundle)
    return (
        sorted_bundles(bundles),
        sorted(skipped, key=lambda s: s.trace_id),
        sorted(flagged, key=lambda f: f.trace_id),
    )


def read_bundle(source: TraceSource, view: Mapping[str, Any]) -> TraceBundle:
    trace_id = str(view["trace_id"])
    links = view.get("links") or {}
    document_bytes = source.result(trace_id, "document")
    if document_bytes is None:
        raise UnreadableTrace(f"trace {trace_id} has no assembled document")
    document = TraceDocument.model_validate_json(document_bytes)
    report = None
    if links.get("qa_report", "listed") is not None:
        data = source.result(trace_id, "qa-report")
        report = None if data is None else QAReport.model_validate_json(data)
    data = source.result(trace_id, "judge-result")
    judge = None if data is None else JudgeResult.model_validate_json(data)
    if document.snapshots is None:
        return TraceBundle(view, document, report, judge)
    snapshots = document.snapshots
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
