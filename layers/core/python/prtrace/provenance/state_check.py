"""Trace-to-state check: do the recorded `file_edit` diffs, applied in order to the base
snapshot, reproduce the final snapshot?

Every file the snapshots hold (regular files and symlinks; a symlink's content is its
target) is compared by content and git mode (100644, 100755, 120000). A file the edits do
not touch must be byte-identical in both snapshots; a touched file must equal the base
content with every recorded diff applied, exactly (no fuzz, no offset search: the recorder
writes exact diffs, so a hunk that does not apply is evidence, not noise).

What the diffs cannot show is handled, and reported as `unverified` rather than guessed:
- binary files ("Binary files a/x and b/x differ") and files over the recorder's diff
  limit ("Files a/x and b/x differ (… not diffed over … bytes)"): the edit says the file
  changed, not how; its existence, path and mode are still checked, its content is not.
- redacted diffs (a `[REDACTED:…]` marker): the snapshot holds the secret in clear, the
  diff a marker, so the content cannot be compared; a redacted file that is missing from
  the final snapshot is explained (the recorder can leave such files out of it).
Renames move the file (content and mode) and then apply the diff's hunks, if any; mode
changes are applied when a diff carries git's `old mode`/`new mode` (or `new file mode`)
lines. Text is compared as UTF-8 decoded with replacement, as the recorder diffs it.

A mismatch does not reject the trace: the result (`state_mismatch`, the first differing
file, the size of the unexplained change) travels with it to the outcome, the judge and
the exports.
"""

from __future__ import annotations

import difflib
import hashlib
import re
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import IO, Annotated, Any, Final, Literal, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field

from prtrace.snapshot_media import tar_stream

STATE_CHECK_VERSION: Final = "prtrace.state_check/v1"
MAX_LISTED: Final = 20  # mismatches and unverified files listed (counts say how many)
MAX_MEMBERS: Final = 100_000
MAX_TOTAL_BYTES: Final = 2 * 1024**3  # uncompressed bytes read from one snapshot
KEEP_UNTOUCHED_BYTES: Final = 1024 * 1024  # untouched files kept to size a difference
KEEP_BUDGET_BYTES: Final = 64 * 1024 * 1024
KEEP_TOUCHED_BYTES: Final = 32 * 1024 * 1024  # edited files kept to apply diffs
MAX_SIZING_BYTES: Final = 1024 * 1024  # line-diff sizing above this uses file sizes
_READ_BLOCK: Final = 1024 * 1024
REDACTION_MARKER: Final = re.compile(
    r"\[REDACTED:[a-z0-9-]+(?::(?:hmac-sha256|sha256)=[0-9a-f]{64})?\]"
)
_HUNK: Final = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
REGULAR: Final = "100644"
EXECUTABLE: Final = "100755"
SYMLINK: Final = "120000"

MismatchReason = Literal[
    "changed_without_edit",  # an untouched file differs between base and final
    "added_without_edit",  # the final snapshot has a file no edit created
    "removed_without_edit",  # a base file is gone from the final snapshot, no edit deleted it
    "content_differs",  # base + the file's diffs is not the final content
    "mode_differs",  # the file's mode is not the one the edits leave
    "missing_in_final",  # an edit leaves the file in place, the final snapshot lacks it
    "deleted_but_present",  # the edits delete (or rename away) a file the final snapshot has
    "diff_does_not_apply",  # a diff's context or removed lines are not in the file
    "edit_of_missing_file",  # a modify/delete/rename of a file that is not there
    "add_of_existing_file",  # an add of a file that is already there
]
UnverifiedReason = Literal["binary", "not_diffed", "redacted", "too_large"]


class StateMismatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    reason: MismatchReason
    detail: str
    event_seq: int | None = None  # the edit, where one edit is to blame
    unexplained_bytes: Annotated[int, Field(ge=0)]


class UnverifiedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    reason: UnverifiedReason


class StateCheck(BaseModel):
    """The check's result, bounded (it travels in Step Functions state and the outcome)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal["prtrace.state_check/v1"] = STATE_CHECK_VERSION
    # not_checked: a snapshot could not be read as an archive (`detail` says why)
    status: Literal["match", "state_mismatch", "not_checked"]
    detail: str | None = None
    files_checked: Annotated[int, Field(ge=0)]
    edits_applied: Annotated[int, Field(ge=0)]
    first_mismatch: StateMismatch | None = None
    mismatch_count: Annotated[int, Field(ge=0)] = 0
    unexplained_bytes: Annotated[int, Field(ge=0)] = 0
    mismatches: list[StateMismatch] = Field(default_factory=list)
    unverified_count: Annotated[int, Field(ge=0)] = 0
    unverified: list[UnverifiedFile] = Field(default_factory=list)

    def headline(self) -> str:
        if self.status == "not_checked":
            return f"not_checked: {self.detail}"
        if self.first_mismatch is None:
            return f"match ({self.files_checked} files, {self.edits_applied} edits)"
        first = self.first_mismatch
        return (
            f"state_mismatch: {first.path}: {first.reason} ({first.unexplained_bytes} bytes "
            f"unexplained; {self.mismatch_count} files differ, {self.unexplained_bytes} "
            "bytes in all)"
        )


@dataclass(frozen=True)
class RecordedEdit:
    """One `file_edit` event, its diff already read (inline or from its artifact)."""

    seq: int
    path: str
    change: Literal["add", "modify", "delete", "rename"]
    diff: str
    old_path: str | None = None


class StateCheckError(Exception):
    """A snapshot cannot be read for the check (not a tar, over the caps)."""


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


# ---- snapshots --------------------------------------------------------------------------


@dataclass
class _Entry:
    mode: str
    size: int
    sha256: str | None  # None: content unknown (binary/not diffed/redacted edit)
    content: bytes | None = None
    unverified: UnverifiedReason | None = None


def _git_mode(member: tarfile.TarInfo) -> str:
    if member.issym():
        return SYMLINK
    return EXECUTABLE if member.mode & 0o111 else REGULAR


def _member_name(raw: str) -> str:
    return "/".join(part for part in raw.split("/") if part not in ("", "."))


class _Counting:
    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size if size >= 0 else _READ_BLOCK)
        self.total += len(data)
        if self.total > MAX_TOTAL_BYTES:
            raise StateCheckError(f"snapshot expands beyond {MAX_TOTAL_BYTES} bytes")
        return data


def _decompressed(raw: Readable, media_type: str) -> Readable:
    stream = tar_stream(cast("IO[bytes]", raw), media_type)
    if stream is None:
        raise StateCheckError(f"snapshot media type {media_type!r} is not a tar archive")
    return stream


def read_snapshot(raw: Readable, media_type: str, touched: Iterable[str]) -> dict[str, _Entry]:
    """Every regular file and symlink of a snapshot archive, streamed: digest, size, mode,
    and the content of touched files (to apply diffs to) and of small untouched ones
    (within a budget, to size an unexplained change)."""
    wanted = set(touched)
    entries: dict[str, _Entry] = {}
    budget = KEEP_BUDGET_BYTES
    stream = _Counting(_decompressed(raw, media_type))
    try:
        with tarfile.open(fileobj=stream, mode="r|") as archive:  # type: ignore[call-overload]
            for count, member in enumerate(archive, start=1):
                if count > MAX_MEMBERS:
                    raise StateCheckError(f"snapshot has more than {MAX_MEMBERS} members")
                name = _member_name(member.name)
                if not name or not (member.isreg() or member.issym()):
                    continue
                data: bytes | None
                if member.issym():
                    link = member.linkname.encode()
                    data, digest, size = link, hashlib.sha256(link).hexdigest(), len(link)
                else:
                    data, digest, size = _read_member(archive, member, name in wanted, budget)
                if data is not None and name not in wanted:
                    budget -= len(data)
                entries[name] = _Entry(_git_mode(member), size, digest, data)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise StateCheckError(f"snapshot is not a readable tar archive: {exc}") from None
    return entries


def _read_member(
    archive: tarfile.TarFile, member: tarfile.TarInfo, touched: bool, budget: int
) -> tuple[bytes | None, str, int]:
    source = archive.extractfile(member)
    if source is None:  # pragma: no cover - regular members always have data
        return b"", hashlib.sha256(b"").hexdigest(), 0
    keep = member.size <= (KEEP_TOUCHED_BYTES if touched else min(KEEP_UNTOUCHED_BYTES, budget))
    digest = hashlib.sha256()
    parts: list[bytes] = []
    while block := source.read(_READ_BLOCK):
        digest.update(block)
        if keep:
            parts.append(block)
    return (b"".join(parts) if keep else None), digest.hexdigest(), member.size


# ---- diffs ------------------------------------------------------------------------------


class _DoesNotApply(Exception):
    pass


@dataclass
class _ParsedDiff:
    kind: Literal["text", "binary", "not_diffed", "redacted"]
    new_mode: str | None = None
    hunks: list[tuple[int, int, list[tuple[str, str]]]] = field(default_factory=list)


def _diff_lines(diff: str) -> list[str]:
    """The diff's lines, split on "\\n" only (a file line may hold "\\r" or U+2028)."""
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_diff(diff: str) -> _ParsedDiff:
    if REDACTION_MARKER.search(diff):
        return _ParsedDiff("redacted")
    parsed = _ParsedDiff("text")
    lines = _diff_lines(diff)
    index = 0
    while index < len(lines) and not lines[index].startswith("@@"):
        line = lines[index]
        if line.startswith(("new file mode ", "new mode ")):
            parsed.new_mode = line.rsplit(" ", 1)[1]
        elif line.startswith("Binary files ") and line.endswith(" differ"):
            parsed.kind = "binary"
        elif line.startswith("Files ") and " differ" in line:
            parsed.kind = "not_diffed"
        index += 1
    if parsed.kind != "text":
        return parsed
    while index < len(lines):
        header = _HUNK.match(lines[index])
        if header is None:
            raise _DoesNotApply(f"line {index + 1} of the diff is not a hunk header")
        old_start, old_count = int(header.group(1)), int(header.group(2) or "1")
        new_count = int(header.group(4) or "1")
        index += 1
        body: list[tuple[str, str]] = []
        old_seen = new_seen = 0
        while index < len(lines) and (old_seen < old_count or new_seen < new_count):
            line = lines[index]
            tag, text = line[:1], line[1:] + "\n"
            if tag not in (" ", "-", "+"):
                raise _DoesNotApply(f"line {index + 1} of the diff is not a hunk line")
            index += 1
            if index < len(lines) and lines[index].startswith("\\"):
                text = text[:-1]  # "\ No newline at end of file"
                index += 1
            body.append((tag, text))
            old_seen += tag != "+"
            new_seen += tag != "-"
        if (old_seen, new_seen) != (old_count, new_count):
            raise _DoesNotApply("a hunk is shorter than its header says")
        parsed.hunks.append((old_start, old_count, body))
    return parsed


def apply_hunks(text: str, hunks: Sequence[tuple[int, int, list[tuple[str, str]]]]) -> str:
    """Apply exact hunks (no fuzz, no offset search) to `text`; _DoesNotApply otherwise."""
    old = text.splitlines(keepends=True)  # as the recorder split the file for difflib
    out: list[str] = []
    pos = 0
    for old_start, old_count, body in hunks:
        start = old_start - 1 if old_count else old_start
        if start < pos or start > len(old):
            raise _DoesNotApply(f"hunk at line {old_start} is out of order or past the end")
        out.extend(old[pos:start])
        pos = start
        for tag, line in body:
            if tag == "+":
                out.append(line)
                continue
            if pos >= len(old) or old[pos] != line:
                found = old[pos] if pos < len(old) else "<end of file>"
                raise _DoesNotApply(
                    f"line {pos + 1}: the diff expects {line[:80]!r}, the file has {found[:80]!r}"
                )
            if tag == " ":
                out.append(line)
            pos += 1
    out.extend(old[pos:])
    return "".join(out)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# ---- the check --------------------------------------------------------------------------


def _unexplained(expected: _Entry | None, actual: _Entry | None) -> int:
    """Bytes of the lines that differ, or the larger size where content is not at hand."""
    a = expected.content if expected is not None else b""
    b = actual.content if actual is not None else b""
    a_size = expected.size if expected is not None else 0
    b_size = actual.size if actual is not None else 0
    if a is None or b is None or max(len(a), len(b)) > MAX_SIZING_BYTES:
        return max(a_size, b_size)
    old, new = _text(a).splitlines(keepends=True), _text(b).splitlines(keepends=True)
    total = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(
        None, old, new, autojunk=False
    ).get_opcodes():
        if tag != "equal":
            total += sum(len(s.encode()) for s in old[i1:i2])
            total += sum(len(s.encode()) for s in new[j1:j2])
    return total


class _Checker:
    def __init__(self, base: dict[str, _Entry]) -> None:
        self.tree = base
        self.touched: set[str] = set()
        self.failed: set[str] = set()  # a diff did not apply: the file is reported already
        self.mismatches: list[StateMismatch] = []
        self.applied = 0

    def mismatch(self, path: str, reason: MismatchReason, detail: str, **extra: Any) -> None:
        self.failed.add(path)
        self.mismatches.append(
            StateMismatch(
                path=path[:1024],
                reason=reason,
                detail=detail[:500],
                event_seq=extra.get("event_seq"),
                unexplained_bytes=extra.get("unexplained_bytes", 0),
            )
        )

    def apply(self, edit: RecordedEdit) -> None:
        where = f"edit seq {edit.seq} ({edit.change} {edit.path})"
        self.touched.update(p for p in (edit.path, edit.old_path) if p)
        try:
            parsed = parse_diff(edit.diff)
        except _DoesNotApply as exc:
            self.mismatch(edit.path, "diff_does_not_apply", f"{where}: {exc}", event_seq=edit.seq)
            self.tree.pop(edit.path, None)
            return
        source = edit.old_path if edit.change == "rename" else edit.path
        entry = self.tree.get(source) if source else None
        if edit.change == "add":
            if entry is not None:
                self.mismatch(
                    edit.path,
                    "add_of_existing_file",
                    f"{where}: the file already exists",
                    event_seq=edit.seq,
                    unexplained_bytes=entry.size,
                )
            entry = _Entry(parsed.new_mode or REGULAR, 0, hashlib.sha256(b"").hexdigest(), b"")
        elif entry is None:
            self.mismatch(
                edit.path,
                "edit_of_missing_file",
                f"{where}: {source} is not in the workspace at this point",
                event_seq=edit.seq,
            )
            if edit.change == "delete":
                return
            entry = _Entry(parsed.new_mode or REGULAR, 0, None, None, "too_large")
        if edit.change == "rename" and source is not None:
            self.tree.pop(source, None)
        if parsed.new_mode is not None:
            entry.mode = parsed.new_mode
        if parsed.kind != "text":
            entry.content, entry.sha256, entry.unverified = None, None, parsed.kind
        elif entry.content is not None:
            try:
                result = apply_hunks(_text(entry.content), parsed.hunks).encode()
            except _DoesNotApply as exc:
                self.mismatch(
                    edit.path, "diff_does_not_apply", f"{where}: {exc}", event_seq=edit.seq
                )
                entry.content, entry.sha256, entry.unverified = None, None, "too_large"
            else:
                entry.content, entry.size = result, len(result)
                entry.sha256 = hashlib.sha256(result).hexdigest()
        elif parsed.hunks and entry.unverified is None:
            entry.sha256, entry.unverified = None, "too_large"  # content was not kept
        self.applied += 1
        if edit.change == "delete":
            if parsed.kind == "text" and entry.content not in (None, b""):
                self.mismatch(
                    edit.path,
                    "diff_does_not_apply",
                    f"{where}: the diff does not remove all of the file "
                    f"({len(entry.content or b'')} bytes are left)",
                    event_seq=edit.seq,
                    unexplained_bytes=len(entry.content or b""),
                )
            self.tree.pop(edit.path, None)
            return
        self.tree[edit.path] = entry

    def compare(self, final: dict[str, _Entry]) -> list[UnverifiedFile]:
        unverified: list[UnverifiedFile] = []
        for path in sorted(set(self.tree) | set(final)):
            if path in self.failed:
                continue
            expected, actual = self.tree.get(path), final.get(path)
            touched = path in self.touched
            if expected is not None and expected.unverified is not None:
                unverified.append(UnverifiedFile(path=path, reason=expected.unverified))
                if actual is None and expected.unverified != "redacted":
                    self.mismatch(
                        path,
                        "missing_in_final",
                        "the edits leave this file in place; the final snapshot lacks it",
                        unexplained_bytes=expected.size,
                    )
                elif actual is not None and expected.unverified != "redacted":
                    self._compare_mode(path, expected, actual)
                continue
            if expected is None and actual is not None:
                reason: MismatchReason = "deleted_but_present" if touched else "added_without_edit"
                self.mismatch(
                    path,
                    reason,
                    f"the final snapshot has this file ({actual.size} bytes); "
                    + ("no edit created it" if not touched else "the edits deleted it"),
                    unexplained_bytes=actual.size,
                )
            elif actual is None and expected is not None:
                reason = "removed_without_edit" if not touched else "missing_in_final"
                self.mismatch(
                    path,
                    reason,
                    f"the final snapshot lacks this file ({expected.size} bytes expected)",
                    unexplained_bytes=expected.size,
                )
            elif expected is not None and actual is not None:
                if not self._same_content(expected, actual):
                    unexplained = _unexplained(expected, actual)
                    self.mismatch(
                        path,
                        "content_differs" if touched else "changed_without_edit",
                        f"expected {expected.size} bytes (SHA-256 {str(expected.sha256)[:12]}), "
                        f"the final snapshot has {actual.size} (SHA-256 "
                        f"{str(actual.sha256)[:12]})",
                        unexplained_bytes=unexplained,
                    )
                else:
                    self._compare_mode(path, expected, actual)
        return unverified

    def _compare_mode(self, path: str, expected: _Entry, actual: _Entry) -> None:
        if expected.mode != actual.mode:
            self.mismatch(
                path,
                "mode_differs",
                f"the edits leave mode {expected.mode}, the final snapshot has {actual.mode}",
            )

    @staticmethod
    def _same_content(expected: _Entry, actual: _Entry) -> bool:
        if expected.sha256 == actual.sha256:
            return True
        # The recorder diffs text decoded with replacement: compare it the same way.
        if expected.content is None or actual.content is None:
            return False
        return _text(expected.content) == _text(actual.content)


def not_checked(detail: str) -> StateCheck:
    return StateCheck(status="not_checked", detail=detail[:500], files_checked=0, edits_applied=0)


def summary(result: StateCheck) -> dict[str, Any]:
    """The bounded view the Assemble step passes on (the document holds the lists)."""
    return result.model_dump(mode="json", exclude={"mismatches", "unverified"})


def check_state(
    edits: Sequence[RecordedEdit],
    open_base: Callable[[], tuple[IO[bytes] | Readable, str]],
    open_final: Callable[[], tuple[IO[bytes] | Readable, str]],
) -> StateCheck:
    """Apply `edits` (in seq order) to the base snapshot and compare with the final one.
    `open_*` return (stream, media type); the streams are read once, to the end."""
    touched = {p for e in edits for p in (e.path, e.old_path) if p}
    stream, media_type = open_base()
    base = read_snapshot(stream, media_type, touched)
    checker = _Checker(base)
    for edit in sorted(edits, key=lambda e: e.seq):
        checker.apply(edit)
    stream, media_type = open_final()
    final = read_snapshot(stream, media_type, touched)
    unverified = checker.compare(final)
    mismatches = checker.mismatches
    return StateCheck(
        status="state_mismatch" if mismatches else "match",
        files_checked=len(set(checker.tree) | set(final)),
        edits_applied=checker.applied,
        first_mismatch=mismatches[0] if mismatches else None,
        mismatch_count=len(mismatches),
        unexplained_bytes=sum(m.unexplained_bytes for m in mismatches),
        mismatches=mismatches[:MAX_LISTED],
        unverified_count=len(unverified),
        unverified=unverified[:MAX_LISTED],
    )
