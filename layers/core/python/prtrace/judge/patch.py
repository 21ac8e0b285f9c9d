"""The fix itself for the judge's prompt: the base→final patch of a trace.

From the workspace snapshots when the trace has them (the trees QA tested): the same safe
archive reader and the same unified diff as the dataset export (prtrace.qa.archive,
prtrace.dataset.rows.workspace_patch), within the judge's own size bounds, reading only the
files that differ. Without snapshots, or when they cannot be read within the bounds, the
recorded `file_edit` diffs grouped per file stand in, labelled as such: they are what the
session says it did, not necessarily the code it ended with.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from prtrace.assemble.document import TraceDocument
from prtrace.judge.text import quote
from prtrace.patches import file_diffs, workspace_patch
from prtrace.qa.archive import ArchiveLimits, extract_archive
from prtrace.qa.errors import UnsafeArchive
from prtrace.schema import BlobRef, FileEditEvent

PatchSource = Literal["snapshots", "edits"]
# A stored snapshot archive above this is not downloaded by the judge (the edits stand in).
SNAPSHOT_MAX_BYTES: Final = 64 * 1024 * 1024
# Two snapshots extracted side by side stay within the Lambda's default 512 MB of /tmp.
JUDGE_ARCHIVE_LIMITS: Final = ArchiveLimits(
    max_members=50_000,
    max_file_bytes=32 * 1024 * 1024,
    max_total_bytes=224 * 1024 * 1024,
)
# A changed file above this is named, not diffed (difflib's cost grows with its size).
DIFF_FILE_MAX_BYTES: Final = 1024 * 1024
PATH_CHARS: Final = 200


@dataclass(frozen=True)
class FileDiff:
    path: str
    text: str


@dataclass(frozen=True)
class PatchEvidence:
    """What changed, file by file. `detail` says where it came from (and, for `edits`,
    why the snapshots were not used); `not_diffed` names changed files without a text
    diff (binary, too large), each with why."""

    source: PatchSource
    detail: str
    files: tuple[FileDiff, ...]
    not_diffed: tuple[tuple[str, str], ...] = ()


ArtifactReader = Callable[[BlobRef], bytes | None]


def patch_evidence(document: TraceDocument, read: ArtifactReader | None) -> PatchEvidence:
    """The snapshots' patch when they can be read (`read` returns an artifact's bytes, None
    when it is not stored), else the recorded edits with the reason."""
    snapshots = document.snapshots
    if snapshots is None:
        return patch_from_edits(document, "the trace has no workspace snapshots")
    if read is None:
        return patch_from_edits(document, "the snapshots were not read")
    sides = (("base", snapshots.base), ("final", snapshots.final))
    for side, ref in sides:
        if ref.size > SNAPSHOT_MAX_BYTES:
            return patch_from_edits(
                document,
                f"the {side} snapshot is {ref.size:,} bytes, over the judge's "
                f"{SNAPSHOT_MAX_BYTES:,}",
            )
    archives: list[bytes] = []
    for side, ref in sides:
        data = read(ref)
        if data is None:
            return patch_from_edits(document, f"the {side} snapshot is not stored")
        if hashlib.sha256(data).hexdigest() != ref.sha256:
            return patch_from_edits(document, f"the {side} snapshot does not match its digest")
        archives.append(data)
    try:
        files, not_diffed = patch_from_archives(
            (archives[0], snapshots.base.media_type), (archives[1], snapshots.final.media_type)
        )
    except UnsafeArchive as refused:
        return patch_from_edits(document, f"a snapshot was refused: {refused}")
    return PatchEvidence(
        "snapshots",
        "diff of the base and final workspace snapshots (the code QA tested)",
        files,
        not_diffed,
    )


def patch_from_archives(
    base: tuple[bytes, str], final: tuple[bytes, str], limits: ArchiveLimits | None = None
) -> tuple[tuple[FileDiff, ...], tuple[tuple[str, str], ...]]:
    """The file diffs turning the `base` archive's tree into the `final` one's (each given
    as bytes and media type), and the changed files left without a diff. Raises
    UnsafeArchive when either archive is refused."""
    limits = limits or JUDGE_ARCHIVE_LIMITS
    with tempfile.TemporaryDirectory(prefix="prtrace-judge-") as scratch:
        roots = []
        for side, (data, media_type) in (("base", base), ("final", final)):
            archive = Path(scratch) / f"{side}.archive"
            archive.write_bytes(data)
            root = Path(scratch) / side
            root.mkdir()
            extract_archive(archive, media_type, root, limits)
            archive.unlink()
            roots.append(root)
        before, after, not_diffed = _changed_files(roots[0], roots[1])
    patch = workspace_patch(before, after)
    return tuple(FileDiff(path, text) for path, text in file_diffs(patch)), not_diffed


def _regular_files(root: Path) -> Iterator[str]:
    """Regular files by relative POSIX path (symlinks are not followed or diffed, as in the
    export)."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path.relative_to(root).as_posix()


def _changed_files(
    base: Path, final: Path
) -> tuple[dict[str, bytes], dict[str, bytes], tuple[tuple[str, str], ...]]:
    """The contents of the files that differ (one pair in memory at a time while
    comparing), and those that differ but get no text diff."""
    before: dict[str, bytes] = {}
    after: dict[str, bytes] = {}
    not_diffed: list[tuple[str, str]] = []
    for name in sorted(set(_regular_files(base)) | set(_regular_files(final))):
        old, new = base / name, final / name
        old_size = old.stat().st_size if old.is_file() else None
        new_size = new.stat().st_size if new.is_file() else None
        if max(old_size or 0, new_size or 0) > DIFF_FILE_MAX_BYTES:
            if old_size != new_size or old.read_bytes() != new.read_bytes():
                not_diffed.append(
                    (name, f"{old_size or 0:,} -> {new_size or 0:,} bytes, too large")
                )
            continue
        old_data = old.read_bytes() if old_size is not None else None
        new_data = new.read_bytes() if new_size is not None else None
        if old_data == new_data:
            continue
        if not (_is_text(old_data) and _is_text(new_data)):
            not_diffed.append((name, "binary"))
            continue
        if old_data is not None:
            before[name] = old_data
        if new_data is not None:
            after[name] = new_data
    return before, after, tuple(not_diffed)


def _is_text(data: bytes | None) -> bool:
    if data is None:
        return True
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def patch_from_edits(document: TraceDocument, why: str) -> PatchEvidence:
    """Each edited file's recorded diffs in seq order: what the session says it changed.
    Per-edit diffs do not compose into one diff against the base without the base's
    content, so they are shown as recorded, under the file's name."""
    edits: dict[str, list[str]] = {}
    for event in document.events:
        if not isinstance(event, FileEditEvent):
            continue
        edit = event.payload
        moved = f" from {quote(edit.old_path, PATH_CHARS)}" if edit.old_path else ""
        line = (
            f"# [{event.event_id}] #{event.seq} {edit.change}{moved} "
            f"+{edit.lines_added} -{edit.lines_removed}"
        )
        if edit.diff:
            line += "\n" + edit.diff.rstrip("\n")
        elif edit.diff_ref is not None:
            line += f" (diff in artifact, {edit.diff_ref.size:,} bytes, not shown)"
        edits.setdefault(edit.path, []).append(line)
    files = tuple(
        FileDiff(path, f"# file {quote(path, PATH_CHARS)}: {len(lines)} edits\n" + "\n".join(lines))
        for path, lines in sorted(edits.items())
    )
    return PatchEvidence(
        "edits",
        f"the recorded file edits, per file (not a verified base→final diff: {why})",
        files,
    )
