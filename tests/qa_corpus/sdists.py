"""Download (once, into a cache) and unpack the pinned sdists of the QA corpus."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from tests.qa_corpus.projects import CorpusProject

VARIANTS = ("original", "buggy")


class CorpusUnavailable(RuntimeError):
    """The package index could not be reached, so the sdist cannot be had."""


class SdistChecksumError(RuntimeError):
    """A downloaded (or cached) sdist does not have the pinned SHA-256."""


def default_cache_dir() -> Path:
    return Path(os.environ.get("PRTRACE_CORPUS_CACHE", "~/.cache/prtrace/qa-corpus")).expanduser()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path) -> None:
    try:
        import httpx
    except ImportError:  # pragma: no cover - the project venv has httpx
        httpx = None  # type: ignore[assignment]
    if httpx is not None:
        try:
            with (
                httpx.stream("GET", url, follow_redirects=True, timeout=60.0) as response,
                target.open("wb") as fh,
            ):
                response.raise_for_status()
                for chunk in response.iter_bytes():
                    fh.write(chunk)
        except httpx.HTTPError as exc:
            raise CorpusUnavailable(f"cannot download {url}: {exc}") from exc
        return
    try:
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as fh:  # noqa: S310
            while chunk := response.read(1 << 16):
                fh.write(chunk)
    except (urllib.error.URLError, OSError) as exc:
        raise CorpusUnavailable(f"cannot download {url}: {exc}") from exc


def fetch_sdist(project: CorpusProject, cache_dir: Path | None = None) -> Path:
    """Return the path of the project's verified sdist, downloading it once."""
    cache = default_cache_dir() if cache_dir is None else cache_dir
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / project.sdist_url.rsplit("/", 1)[-1]
    if target.is_file():
        if _sha256(target) == project.sdist_sha256:
            return target
        target.unlink()
    fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _download(project.sdist_url, tmp)
        actual = _sha256(tmp)
        if actual != project.sdist_sha256:
            raise SdistChecksumError(
                f"{project.sdist_url}: sha256 {actual} != pinned {project.sdist_sha256}"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def inject_bug(project: CorpusProject, root: Path) -> None:
    """Replace the project's single ``bug_original`` line with ``bug_replacement``."""
    path = root / project.bug_path
    with path.open(encoding="utf-8", newline="") as fh:
        lines = fh.read().splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.rstrip("\r\n") == project.bug_original]
    if len(hits) != 1:
        raise ValueError(
            f"{project.name}: expected exactly one line {project.bug_original!r} "
            f"in {project.bug_path}, found {len(hits)}"
        )
    (index,) = hits
    line = lines[index]
    ending = line[len(line.rstrip("\r\n")) :]
    lines[index] = project.bug_replacement + ending
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("".join(lines))


def materialize(
    project: CorpusProject, dest: Path, variant: str, cache_dir: Path | None = None
) -> Path:
    """Unpack the sdist into ``dest`` and return the project root inside it.

    ``variant`` is "original" (as shipped) or "buggy" (the one-line bug injected).
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    sdist = fetch_sdist(project, cache_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as archive:
        tops = {Path(member.name).parts[0] for member in archive.getmembers()}
        if len(tops) != 1:
            raise ValueError(f"{sdist.name}: expected one top-level directory, got {tops}")
        archive.extractall(dest, filter="data")
    root = dest / tops.pop()
    if variant == "buggy":
        inject_bug(project, root)
    return root
