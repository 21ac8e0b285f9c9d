"""The documentation site builds with `mkdocs build --strict` (a broken link or anchor fails
it, as a page with one shows), its API reference is generated from the committed OpenAPI
document, and the README stays the short way in: the two commands, links that resolve."""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
OPENAPI = ROOT / "functions" / "api" / "openapi.json"
README = ROOT / "README.md"
SET_UP_COMMANDS = (
    "make demo   # the example trace through the whole pipeline on the local cloud",
    "make test   # the whole test suite",
)
# A markdown link's target: [text](target), up to a space (a title) or the closing bracket.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)[^)]*\)")


def _mkdocs_build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = _mkdocs_build(ROOT / "mkdocs.yml", out)
    assert built.returncode == 0, built.stdout + built.stderr
    return out


@pytest.mark.slow
def test_the_site_builds_strict(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "RUNBOOK" / "index.html").is_file()


@pytest.mark.slow
def test_the_api_reference_is_generated_from_the_openapi_document(site: Path) -> None:
    page = (site / "api" / "reference" / "index.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))
    paths = orjson.loads(OPENAPI.read_bytes())["paths"]
    assert paths
    assert [path for path in paths if path not in text] == []


@pytest.mark.slow
def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path) -> None:
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    (tmp_path / "functions" / "api").mkdir(parents=True)
    shutil.copy(OPENAPI, tmp_path / "functions" / "api" / "openapi.json")
    index = tmp_path / "docs" / "index.md"
    index.write_text(
        index.read_text() + "\n[gone](no-such-page.md), [nowhere](concepts.md#no-such-anchor)\n"
    )

    built = _mkdocs_build(tmp_path / "mkdocs.yml", tmp_path / "site")

    assert built.returncode != 0
    output = built.stdout + built.stderr
    assert "no-such-page.md" in output
    assert "no-such-anchor" in output


def test_the_readme_is_short_and_starts_from_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < 200
    for command in SET_UP_COMMANDS:
        assert command in text.splitlines()
    assert "docs/verification.md" in text


def test_the_readme_links_resolve() -> None:
    targets = LINK.findall(README.read_text())
    local = [t for t in targets if not re.match(r"[a-z]+:", t) and not t.startswith("#")]
    assert local
    missing = [t for t in local if not (ROOT / t.split("#")[0]).exists()]
    assert missing == []
