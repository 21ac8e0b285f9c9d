"""Workspace snapshots: .gitignore respected, secret files left out, a size cap that names
the biggest files, and archives that are the same bytes for the same tree."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from examples import snapshots as example_snapshots
from prtrace_client.recorder.snapshot import (
    SnapshotError,
    SnapshotTooLarge,
    is_secret_file,
    snapshot_workspace,
)
from tests.client.recorder.conftest import run_git


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        return {member.name: member for member in archive.getmembers()}


def read_member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        handle = archive.extractfile(name)
        assert handle is not None
        return handle.read()


def test_tracked_and_untracked_files_are_archived_but_ignored_ones_are_not(
    buggy_repo: Path,
) -> None:
    (buggy_repo / "notes.txt").write_text("untracked but not ignored\n")
    (buggy_repo / "debug.log").write_text("ignored by *.log\n")
    (buggy_repo / "__pycache__").mkdir()
    (buggy_repo / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (buggy_repo / "README.md").unlink()  # tracked, deleted in the working tree

    snapshot = snapshot_workspace(buggy_repo)

    names = set(members(snapshot.data))
    assert "notes.txt" in names
    assert "ranges/merge.py" in names
    assert "ranges" in names  # parent directories are entries too
    assert "debug.log" not in names
    assert not any(name.startswith("__pycache__") for name in names)
    assert "README.md" not in names
    assert ".git" not in names
    assert not any(n.startswith(".git/") for n in names)
    assert (
        read_member(snapshot.data, "ranges/merge.py")
        == (buggy_repo / "ranges" / "merge.py").read_bytes()
    )


def test_secret_files_are_excluded_by_default(buggy_repo: Path) -> None:
    secrets = [
        ".env",
        ".env.production",
        "deploy/server.pem",
        "deploy/tls.key",
        "id_rsa",
        "keys/id_ed25519.pub",
        "cert.p12",
        ".netrc",
        "config/credentials.json",
        ".aws/credentials",
    ]
    for name in secrets:
        (buggy_repo / name).parent.mkdir(parents=True, exist_ok=True)
        (buggy_repo / name).write_text("SECRET\n")
    run_git(buggy_repo, "add", "-f", ".env")  # even when tracked

    snapshot = snapshot_workspace(buggy_repo)

    names = set(members(snapshot.data))
    assert sorted(snapshot.excluded) == sorted(secrets)
    assert not names & set(secrets)
    kept = snapshot_workspace(buggy_repo, exclude=())
    assert set(secrets) <= set(members(kept.data))


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        (".env", True),
        ("app/.env.local", True),
        ("a/b/id_rsa", True),
        ("src/keys.py", False),
        ("environment.py", False),
        ("docs/keyboard.md", False),
        ("monkey.py", False),
        ("home/.ssh/config", True),
    ],
)
def test_secret_file_names(name: str, secret: bool) -> None:
    assert is_secret_file(name) is secret


def test_a_workspace_over_the_cap_names_its_biggest_files(buggy_repo: Path) -> None:
    (buggy_repo / "data").mkdir()
    (buggy_repo / "data" / "huge.bin").write_bytes(b"x" * 50_000)
    (buggy_repo / "data" / "big.bin").write_bytes(b"x" * 20_000)

    with pytest.raises(SnapshotTooLarge) as caught:
        snapshot_workspace(buggy_repo, max_bytes=30_000)

    message = str(caught.value)
    assert "over the 30,000 byte snapshot cap" in message
    assert message.index("data/huge.bin (50,000 bytes)") < message.index("data/big.bin")
    assert caught.value.biggest[0] == ("data/huge.bin", 50_000)


def test_the_same_tree_gives_the_same_bytes(buggy_repo: Path, tmp_path: Path) -> None:
    first = snapshot_workspace(buggy_repo).data
    os.utime(buggy_repo / "ranges" / "merge.py", (1, 1))
    (buggy_repo / "ranges" / "merge.py").chmod(0o600)
    second = snapshot_workspace(buggy_repo).data
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    info = members(first)["ranges/merge.py"]
    assert (info.mtime, info.uid, info.gid, info.uname, info.mode) == (0, 0, 0, "", 0o644)
    assert gzip.decompress(first)  # a plain gzip stream
    assert first[4:8] == b"\0\0\0\0"  # no timestamp in the gzip header


def test_executable_bit_and_symlinks_are_kept(buggy_repo: Path) -> None:
    script = buggy_repo / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    (buggy_repo / "link.py").symlink_to("ranges/merge.py")
    found = members(snapshot_workspace(buggy_repo).data)
    assert found["run.sh"].mode == 0o755
    assert found["link.py"].issym()
    assert found["link.py"].linkname == "ranges/merge.py"


def test_outside_a_git_repository_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="git ls-files"):
        snapshot_workspace(tmp_path)


def test_committed_example_snapshots_match_the_example_repository() -> None:
    """The example's archives are built by the same writer; they must not drift."""
    built = example_snapshots.build()
    for name, data in built.items():
        committed = (example_snapshots.TRACE_DIR / "artifacts" / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == hashlib.sha256(committed).hexdigest(), name
