"""What counts as a dependency declaration, and what its cache key covers."""

from __future__ import annotations

from pathlib import Path

import pytest

from prtrace.qa.declarations import read_declaration
from prtrace.qa.errors import QAError


def test_no_declaration_is_empty(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    assert read_declaration(tmp_path).empty


def test_requirements_and_pyproject_dependencies(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("attrs==25.1.0\n")
    (tmp_path / "requirements-dev.txt").write_text("-r requirements.txt\n")
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["idna==3.10"]\n')
    declaration = read_declaration(tmp_path)
    assert declaration.requirement_files == ["requirements-dev.txt", "requirements.txt"]
    assert declaration.project_requirements == ["idna==3.10"]
    assert not declaration.installable  # no [build-system], no setup.py


def test_the_key_covers_local_files_the_requirements_name(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    wheel = tmp_path / "wheels" / "dep-1.0-py3-none-any.whl"
    wheel.write_bytes(b"one")
    (tmp_path / "requirements.txt").write_text("./wheels/dep-1.0-py3-none-any.whl  # local\n")
    first = read_declaration(tmp_path).fingerprint
    wheel.write_bytes(b"two")  # same requirements text, other wheel: another key
    assert read_declaration(tmp_path).fingerprint != first


def test_invalid_pyproject_is_the_repositorys_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[project\n")
    with pytest.raises(QAError) as failed:
        read_declaration(tmp_path)
    assert failed.value.reason == "repo_error"
    assert "pyproject.toml" in failed.value.detail
