"""The trace-to-state check on synthetic workspaces, with diffs made by the recorder's own
diff function (prtrace_client.recorder.edits.file_edit)."""

from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prtrace.provenance.state_check import RecordedEdit, StateCheck, check_state
from prtrace_client.recorder.edits import MAX_DIFF_INPUT, file_edit

Tree = dict[str, bytes | tuple[bytes, int]]  # path -> content, or (content, mode)


def tar_gz(tree: Tree) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, value in sorted(tree.items()):
            content, mode = value if isinstance(value, tuple) else (value, 0o644)
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(content), mode
            archive.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def edit(seq: int, path: str, change: str, before: bytes, after: bytes, **kw: str) -> RecordedEdit:
    made = file_edit(path, change, before, after, kw.get("mode", "100644"), kw.get("old_path"))  # type: ignore[arg-type]
    return RecordedEdit(seq, path, made.change, made.diff, made.old_path)


def check(base: Tree, final: Tree, edits: list[RecordedEdit]) -> StateCheck:
    return check_state(
        edits,
        lambda: (io.BytesIO(tar_gz(base)), "application/gzip"),
        lambda: (io.BytesIO(tar_gz(final)), "application/gzip"),
    )


BASE: Tree = {
    "src/merge.py": b"def merge(a):\n    return a[:-1]\n",
    "README.md": b"# demo\n\nmerges intervals\n",
    "run.sh": (b"#!/bin/sh\necho hi\n", 0o755),
}


def test_every_kind_of_text_edit_reproduces_the_final_snapshot() -> None:
    fixed = b"def merge(a):\n    return a\n"
    final: Tree = {
        "src/merge.py": fixed,
        "README.rst": b"# demo\n\nmerges intervals\n",
        "tests/test_merge.py": b"from src.merge import merge\n",
        "run.sh": (b"#!/bin/sh\necho hi\n", 0o755),
    }
    edits = [
        edit(0, "src/merge.py", "modify", BASE["src/merge.py"], fixed),  # type: ignore[arg-type]
        edit(1, "README.rst", "rename", b"", b"", old_path="README.md"),
        edit(2, "tests/test_merge.py", "add", b"", b"from src.merge import merge\n"),
    ]
    result = check(BASE, final, edits)
    assert result.status == "match", result.mismatches
    assert (result.edits_applied, result.files_checked) == (3, 4)


def test_an_edit_left_out_names_the_file_and_the_unexplained_size() -> None:
    fixed = b"def merge(a):\n    return a\n"
    final = dict(BASE) | {"src/merge.py": fixed, "NOTES": b"todo\n"}
    edits = [edit(0, "NOTES", "add", b"", b"todo\n")]  # the merge.py edit is missing
    result = check(BASE, final, edits)
    assert result.status == "state_mismatch"
    assert result.first_mismatch is not None
    assert result.first_mismatch.path == "src/merge.py"
    assert result.first_mismatch.reason == "changed_without_edit"
    # "    return a[:-1]\n" out, "    return a\n" in
    assert result.first_mismatch.unexplained_bytes == len(b"    return a[:-1]\n") + len(
        b"    return a\n"
    )
    assert "src/merge.py" in result.headline()


def test_an_invented_edit_does_not_apply_or_leaves_a_different_file() -> None:
    invented = edit(0, "src/merge.py", "modify", BASE["src/merge.py"], b"def merge(a):\n    pass\n")  # type: ignore[arg-type]
    result = check(BASE, BASE, [invented])
    assert result.status == "state_mismatch"
    assert result.first_mismatch is not None
    assert (result.first_mismatch.path, result.first_mismatch.reason) == (
        "src/merge.py",
        "content_differs",
    )
    # An edit of content that was never there does not even apply.
    ghost = edit(0, "src/merge.py", "modify", b"something else\n", b"other\n")
    result = check(BASE, BASE, [ghost])
    assert result.first_mismatch is not None
    assert result.first_mismatch.reason == "diff_does_not_apply"
    assert result.first_mismatch.event_seq == 0


def test_an_invented_add_of_a_file_that_is_not_in_the_final_snapshot() -> None:
    result = check(BASE, BASE, [edit(0, "extra.py", "add", b"", b"x = 1\n")])
    assert result.first_mismatch is not None
    assert (result.first_mismatch.path, result.first_mismatch.reason) == (
        "extra.py",
        "missing_in_final",
    )


def test_a_rename_with_changes_moves_content_and_applies_its_hunks() -> None:
    before = b"".join(b"line %d\n" % i for i in range(20))
    after = before.replace(b"line 7\n", b"line seven\n")
    base = dict(BASE) | {"a.txt": before}
    final = {k: v for k, v in BASE.items()} | {"b.txt": after}
    result = check(base, final, [edit(0, "b.txt", "rename", before, after, old_path="a.txt")])
    assert result.status == "match", result.mismatches


def test_binary_files_are_checked_for_presence_and_mode_not_content() -> None:
    png = b"\x89PNG\r\n\x1a\n\0\0\0" + bytes(range(256))
    final = dict(BASE) | {"logo.png": png}
    result = check(BASE, final, [edit(0, "logo.png", "add", b"", png)])
    assert result.status == "match"
    assert [(u.path, u.reason) for u in result.unverified] == [("logo.png", "binary")]
    # A binary file the final snapshot does not hold is still a mismatch.
    result = check(BASE, BASE, [edit(0, "logo.png", "add", b"", png)])
    assert result.first_mismatch is not None
    assert result.first_mismatch.reason == "missing_in_final"


def test_files_over_the_diff_limit_are_unverified_content() -> None:
    big = b"x\n" * (MAX_DIFF_INPUT // 2 + 1)
    base = dict(BASE) | {"data.txt": big}
    final = dict(BASE) | {"data.txt": big + b"y\n"}
    result = check(base, final, [edit(0, "data.txt", "modify", big, big + b"y\n")])
    assert result.status == "match"
    assert [(u.path, u.reason) for u in result.unverified] == [("data.txt", "not_diffed")]


def test_modes_are_compared() -> None:
    final = dict(BASE) | {"run.sh": (b"#!/bin/sh\necho hi\n", 0o644)}
    result = check(BASE, final, [])
    assert result.first_mismatch is not None
    assert (result.first_mismatch.path, result.first_mismatch.reason) == ("run.sh", "mode_differs")
    # An added executable carries its mode in the diff header.
    final = dict(BASE) | {"new.sh": (b"echo\n", 0o755)}
    result = check(BASE, final, [edit(0, "new.sh", "add", b"", b"echo\n", mode="100755")])
    assert result.status == "match", result.mismatches


def test_a_delete_removes_the_file_and_must_remove_all_of_it() -> None:
    final = {k: v for k, v in BASE.items() if k != "README.md"}
    readme = BASE["README.md"]
    assert isinstance(readme, bytes)
    assert check(BASE, final, [edit(0, "README.md", "delete", readme, b"")]).status == "match"
    result = check(BASE, BASE, [edit(0, "README.md", "delete", readme, b"")])
    assert result.first_mismatch is not None
    assert result.first_mismatch.reason == "deleted_but_present"
    added = check(BASE, dict(BASE) | {"stray.txt": b"?\n"}, [])
    assert added.first_mismatch is not None
    assert (added.first_mismatch.path, added.first_mismatch.reason) == (
        "stray.txt",
        "added_without_edit",
    )


def test_redacted_diffs_are_unverified_and_may_be_left_out_of_the_final_snapshot() -> None:
    secret = b"token = 'ghp_" + b"R8mV2kQz7LwX4pN9sT1yB6cJ3hF5dG0aE2uK'\n"
    made = file_edit("conf.py", "add", b"", secret)
    assert "[REDACTED:" in made.diff
    result = check(BASE, BASE, [RecordedEdit(0, "conf.py", "add", made.diff)])
    assert result.status == "match"
    assert [(u.path, u.reason) for u in result.unverified] == [("conf.py", "redacted")]


def test_lines_without_a_final_newline_and_carriage_returns_apply_exactly() -> None:
    before = b"a\r\nb\r\nc"
    after = b"a\r\nB\r\nc\r\nd"
    base = dict(BASE) | {"crlf.txt": before}
    final = dict(BASE) | {"crlf.txt": after}
    assert check(base, final, [edit(0, "crlf.txt", "modify", before, after)]).status == "match"


def test_edits_apply_in_seq_order_on_top_of_each_other() -> None:
    one, two, three = b"a\n", b"a\nb\n", b"a\nb\nc\n"
    base = dict(BASE) | {"f.txt": one}
    final = dict(BASE) | {"f.txt": three}
    edits = [edit(1, "f.txt", "modify", two, three), edit(0, "f.txt", "modify", one, two)]
    assert check(base, final, edits).status == "match"
    assert check(base, final, edits[:1]).first_mismatch is not None


def test_a_snapshot_that_is_not_an_archive_is_an_error() -> None:
    from prtrace.provenance.state_check import StateCheckError

    with pytest.raises(StateCheckError, match="not a readable tar"):
        check_state(
            [],
            lambda: (io.BytesIO(b"not a tar at all" * 100), "application/x-tar"),
            lambda: (io.BytesIO(b""), "application/x-tar"),
        )


def test_the_mismatch_reaches_the_outcome_and_the_judge() -> None:
    from prtrace.judge.offline import score_offline
    from prtrace.judge.prompt import build_prompt
    from prtrace.judge.rubric import load_rubric
    from prtrace.pipeline.outcome import complete_outcome
    from prtrace.provenance.state_check import summary
    from tests.judge_factories import sample_document
    from tests.pipeline_factories import judge_result

    fixed = b"def merge(a):\n    return a\n"
    state = check(BASE, dict(BASE) | {"src/merge.py": fixed}, [])
    assert state.status == "state_mismatch"

    assembled = {
        "event_count": 1,
        "chunk_count": 1,
        "chain": {"key_id": "k1", "head": "0" * 64, "length": 1},
        "metrics": {},
        "state_check": summary(state),
    }
    outcome = complete_outcome(
        assembled, None, "no_snapshots", judge_result(), "2026-12-05T00:00:00Z"
    )
    assert outcome["state_check"]["status"] == "state_mismatch"
    assert outcome["state_check"]["first_mismatch"]["path"] == "src/merge.py"
    assert outcome["state_check"]["unexplained_bytes"] > 0

    document = sample_document().model_copy(update={"state_check": state})
    rubric = load_rubric()
    prompt = build_prompt(document, None, rubric, document.metrics)
    assert "## Trace-to-state check" in prompt.user
    assert "state_mismatch: src/merge.py: changed_without_edit" in prompt.user
    offline = score_offline(document, None, rubric, document.metrics)
    assert "do not reproduce the final snapshot" in offline.summary


def test_exports_carry_the_state_check() -> None:
    from prtrace.dataset.rows import state_columns
    from tests.judge_factories import sample_document

    document = sample_document()
    assert state_columns(document) == {
        "state_check": None,
        "state_first_mismatch": None,
        "state_unexplained_bytes": None,
    }
    state = check(BASE, dict(BASE) | {"stray.txt": b"?\n"}, [])
    assert state_columns(document.model_copy(update={"state_check": state})) == {
        "state_check": "state_mismatch",
        "state_first_mismatch": "stray.txt",
        "state_unexplained_bytes": 2,
    }


_LINE = st.text(alphabet="ab \t\r\u2028é", max_size=6)


@settings(max_examples=150, deadline=None)
@given(
    before=st.lists(_LINE, max_size=12).map("\n".join),
    after=st.lists(_LINE, max_size=12).map("\n".join),
)
def test_any_text_edit_the_recorder_diffs_applies_exactly(before: str, after: str) -> None:
    """Whatever the lines (carriage returns, U+2028, no final newline), the recorder's diff
    applied to the base gives the final content."""
    old, new = before.encode(), after.encode()
    base = dict(BASE) | {"f.txt": old}
    final = dict(BASE) | {"f.txt": new}
    result = check(base, final, [edit(0, "f.txt", "modify", old, new)])
    assert result.status == "match", (result.mismatches, before, after)
