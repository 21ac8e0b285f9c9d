"""Every unsafe-archive case is refused with reason `unsafe_archive`, naming the member and
the rule, both by the extractor and end to end (the QA report); nothing lands outside."""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
import tarfile
from pathlib import Path

import pytest

from prtrace.adapters.artifacts import DirectoryArtifactStore
from prtrace.qa.archive import ArchiveLimits, extract_archive
from prtrace.qa.errors import QAError, UnsafeArchive
from prtrace.qa.service import QAService
from prtrace.qa.snapshots import fetch_snapshot
from prtrace.schema import BlobRef
from prtrace.storage_keys import artifact_key
from tests.sandbox.archives import Member, compress, tar_bytes
from tests.sandbox.conftest import Backend

TOKEN = secrets.token_hex(6)
ESCAPE = f"/var/tmp/prtrace-escape-{TOKEN}"  # noqa: S108 - must never be created
SMALL = ArchiveLimits(
    max_members=10, max_file_bytes=1024, max_total_bytes=4096, ratio_grace_bytes=0
)
GOOD = Member("ok.txt", data=b"fine")

CASES: dict[str, tuple[list[Member], str, str]] = {
    # case: (members, member named in the refusal, words of the reason)
    "absolute path": ([GOOD, Member(ESCAPE, data=b"x")], ESCAPE, "absolute path"),
    "dot-dot": (
        [Member("../../../../../../.." + ESCAPE, data=b"x")],
        "../../../../../../.." + ESCAPE,
        "'..' component",
    ),
    "symlink absolute": ([Member("link", tarfile.SYMTYPE, linkname="/etc")], "link", "outside"),
    "symlink relative out": (
        [Member("a/link", tarfile.SYMTYPE, linkname="../../etc")],
        "a/link",
        "outside",
    ),
    "symlink chain out": (
        [
            Member("a/b/c", tarfile.DIRTYPE, mode=0o755),
            Member("a/b/c/s", tarfile.SYMTYPE, linkname="../../.."),  # the root: fine alone
            Member("a/b/c/x", tarfile.SYMTYPE, linkname="s/.."),  # lexically a/b/c: fine alone
        ],
        "a/b/c/x",
        "chain resolves outside",
    ),
    "write through symlink": (
        [
            Member("sub", tarfile.DIRTYPE, mode=0o755),
            Member("d", tarfile.SYMTYPE, linkname="sub"),
            Member("d/file", data=b"x"),
        ],
        "d/file",
        "not a directory",
    ),
    "hard link absolute": (
        [Member("h", tarfile.LNKTYPE, linkname="/etc/passwd")],
        "h",
        "outside the tree",
    ),
    "hard link dot-dot": (
        [Member("h", tarfile.LNKTYPE, linkname="../outside")],
        "h",
        "outside the tree",
    ),
    "hard link to nothing extracted": (
        [Member("h", tarfile.LNKTYPE, linkname="later.txt"), Member("later.txt", data=b"x")],
        "h",
        "not a regular file of this archive",
    ),
    "character device": ([Member("null", tarfile.CHRTYPE)], "null", "device"),
    "block device": ([Member("sda", tarfile.BLKTYPE)], "sda", "device"),
    "fifo": ([Member("pipe", tarfile.FIFOTYPE)], "pipe", "fifo"),
    "duplicate": ([GOOD, GOOD], "ok.txt", "duplicate"),
    "member count": ([Member(f"f{i}", data=b"x") for i in range(11)], "f10", "more than 10"),
    "file size": ([Member("big", data=b"x" * 2048)], "big", "over the 1024 byte cap"),
    "total size": (
        [Member(f"part{i}", data=b"x" * 1000) for i in range(5)],
        "part4",
        "total over the 4096 byte cap",
    ),
}


def _refusal(
    members: list[Member], dest: Path, media_type: str = "application/x-tar"
) -> UnsafeArchive:
    archive = dest.parent / f"{dest.name}.archive"
    archive.write_bytes(compress(tar_bytes(members), media_type))
    with pytest.raises(UnsafeArchive) as refused:
        extract_archive(archive, media_type, dest, SMALL)
    return refused.value


@pytest.mark.parametrize("case", sorted(CASES))
def test_extractor_refuses(case: str, tmp_path: Path) -> None:
    members, member, why = CASES[case]
    dest = tmp_path / "dest"
    dest.mkdir()
    refusal = _refusal(members, dest)
    assert refusal.reason == "unsafe_archive"
    assert refusal.member == member
    assert why in refusal.why
    assert not Path(ESCAPE).exists()
    assert not (tmp_path / "outside").exists()


@pytest.mark.parametrize("media_type", ["application/gzip", "application/zstd"])
def test_decompression_bomb_is_refused_while_streaming(media_type: str, tmp_path: Path) -> None:
    # 64 MiB of zeros in one member compresses ~1000:1; the caps stop it long before.
    bomb = tar_bytes([Member("zeros", data=bytes(64 * 1024 * 1024))])
    archive = tmp_path / "bomb"
    archive.write_bytes(compress(bomb, media_type))
    assert archive.stat().st_size < 1024 * 1024
    dest = tmp_path / "dest"
    dest.mkdir()
    limits = ArchiveLimits(max_ratio=50, ratio_grace_bytes=1024 * 1024)
    with pytest.raises(UnsafeArchive) as refused:
        extract_archive(archive, media_type, dest, limits)
    assert refused.value.member == "<archive>"
    assert "compression ratio above 50:1" in refused.value.why
    assert sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()) < 8 * 1024 * 1024


def test_expansion_beyond_the_total_cap_is_refused_while_streaming(tmp_path: Path) -> None:
    # A header that lies small is caught by the stream counter, not only by declared sizes.
    archive = tmp_path / "big.tar.gz"
    archive.write_bytes(
        compress(tar_bytes([Member("a", data=os.urandom(64 * 1024))]), "application/gzip")
    )
    dest = tmp_path / "dest"
    dest.mkdir()
    limits = ArchiveLimits(max_total_bytes=16 * 1024, max_members=1, max_file_bytes=1 << 30)
    with pytest.raises(UnsafeArchive) as refused:
        extract_archive(archive, "application/gzip", dest, limits)
    assert "byte cap" in refused.value.why


def test_archive_that_is_not_what_its_media_type_says_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "plain.tar"
    archive.write_bytes(tar_bytes([GOOD]))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchive) as refused:
        extract_archive(archive, "application/gzip", dest)
    assert "unreadable archive" in refused.value.why


@pytest.mark.parametrize(
    "media_type", ["application/x-tar", "application/gzip", "application/zstd"]
)
def test_a_safe_archive_extracts_with_links_inside_and_no_special_bits(
    media_type: str, tmp_path: Path
) -> None:
    members = [
        Member("repo", tarfile.DIRTYPE, mode=0o755),
        Member("repo/README.md", data=b"hello"),
        Member("repo/run.sh", data=b"#!/bin/sh", mode=0o4755),  # setuid is dropped
        Member("repo/docs/README.md", tarfile.SYMTYPE, linkname="../README.md"),
        Member("repo/copy.md", tarfile.LNKTYPE, linkname="repo/README.md"),
    ]
    archive = tmp_path / "snapshot"
    archive.write_bytes(compress(tar_bytes(members), media_type))
    dest = tmp_path / "dest"
    dest.mkdir()
    extract_archive(archive, media_type, dest, owner=(65534, 65534))
    repo = dest / "repo"
    assert (repo / "docs" / "README.md").read_bytes() == b"hello"
    assert (repo / "copy.md").stat().st_ino == (repo / "README.md").stat().st_ino
    assert stat.S_IMODE((repo / "run.sh").stat().st_mode) == 0o755
    assert (repo / "README.md").stat().st_uid == 65534


# ---- end to end: the QA report says why, and no sandbox ever runs ------------------------


def _store(root: Path, body: bytes, media_type: str) -> tuple[DirectoryArtifactStore, BlobRef]:
    store = DirectoryArtifactStore(root / "artifacts")
    digest = hashlib.sha256(body).hexdigest()
    store.put_if_absent(artifact_key("t1", "tr_x", digest), body, digest, media_type)
    ref = BlobRef(
        uri=f"artifact://sha256/{digest}", sha256=digest, size=len(body), media_type=media_type
    )
    return store, ref


@pytest.mark.parametrize("case", ["absolute path", "symlink chain out", "fifo", "member count"])
def test_qa_report_names_the_unsafe_member(case: str, bwrap: Backend, scratch: Path) -> None:
    members, member, why = CASES[case]
    good = tar_bytes([GOOD])
    _, good_ref = _store(scratch, good, "application/x-tar")
    store, bad_ref = _store(scratch, tar_bytes(members), "application/x-tar")
    settings = bwrap.settings(archive_limits=SMALL)
    report = QAService(bwrap.sandbox, store, settings, bwrap.owner).run(
        "t1", "tr_x", good_ref, bad_ref
    )
    assert report.verdict == "error"
    assert report.error_reason == "unsafe_archive"
    assert report.error_detail is not None
    assert report.error_detail.startswith("final snapshot: ")
    assert repr(member) in report.error_detail
    assert why in report.error_detail
    assert report.base is None  # refused before anything ran
    assert not Path(ESCAPE).exists()


def test_snapshot_with_other_bytes_than_its_ref_is_refused_before_opening(tmp_path: Path) -> None:
    store, ref = _store(tmp_path, tar_bytes([GOOD]), "application/x-tar")
    swapped = ref.model_copy(update={"sha256": "0" * 64, "uri": "artifact://sha256/" + "0" * 64})
    # Same bytes stored under the swapped digest's key: the content no longer matches.
    body = store.get(artifact_key("t1", "tr_x", ref.sha256))
    (tmp_path / "artifacts" / artifact_key("t1", "tr_x", "0" * 64)).parent.mkdir(
        parents=True, exist_ok=True
    )
    (tmp_path / "artifacts" / artifact_key("t1", "tr_x", "0" * 64)).write_bytes(body)
    with pytest.raises(QAError) as refused:
        fetch_snapshot(store, "t1", "tr_x", swapped, tmp_path / "download")
    assert refused.value.reason == "unsafe_archive"
    assert "SHA-256" in refused.value.detail


def test_snapshot_larger_than_its_ref_is_refused(tmp_path: Path) -> None:
    store, ref = _store(tmp_path, tar_bytes([GOOD]), "application/x-tar")
    short = ref.model_copy(update={"size": ref.size - 1})
    with pytest.raises(QAError) as refused:
        fetch_snapshot(store, "t1", "tr_x", short, tmp_path / "download")
    assert refused.value.reason == "unsafe_archive"
    assert "larger than its declared" in refused.value.detail


def test_snapshot_with_an_unsupported_media_type_is_refused(tmp_path: Path) -> None:
    store, ref = _store(tmp_path, b"PK\x03\x04", "application/zip")
    with pytest.raises(QAError) as refused:
        fetch_snapshot(store, "t1", "tr_x", ref, tmp_path / "download")
    assert refused.value.reason == "unsafe_archive"
    assert "application/zip" in refused.value.detail


def test_missing_snapshot_is_an_infrastructure_error(tmp_path: Path) -> None:
    _, ref = _store(tmp_path / "elsewhere", tar_bytes([GOOD]), "application/x-tar")
    with pytest.raises(QAError) as refused:
        fetch_snapshot(
            DirectoryArtifactStore(tmp_path / "empty"), "t1", "tr_x", ref, tmp_path / "d"
        )
    assert refused.value.reason == "infra_error"
