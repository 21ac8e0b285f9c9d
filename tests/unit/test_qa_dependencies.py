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


def _write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


BUILD = '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'


def test_test_extras_are_installed_with_the_project(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pyproject.toml": BUILD + '[project]\nname = "x"\ndependencies = ["attrs"]\n'
            "[project.optional-dependencies]\n"
            'test = ["pytest<8"]\ntesting = ["hypothesis"]\ndev = ["mypy"]\ndocs = ["sphinx"]\n'
        },
    )
    declaration = read_declaration(tmp_path)
    assert declaration.installable
    assert declaration.extras == ["test", "testing"]  # dev only when no test-named extra
    assert declaration.names_pytest()
    assert "pyproject.toml [project.optional-dependencies].test" in declaration.sources


def test_dev_extra_when_no_test_extra(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pyproject.toml": BUILD + '[project]\nname = "x"\n'
            '[project.optional-dependencies]\ndev = ["pytest"]\n'
        },
    )
    assert read_declaration(tmp_path).extras == ["dev"]


def test_requirements_folder_prefers_test_files(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "requirements/base.txt": "attrs\n",
            "requirements/tests.txt": "-r base.txt\npytest\n",
            "requirements/dev.txt": "mypy\n",
            "requirements/docs.txt": "sphinx\n",
        },
    )
    declaration = read_declaration(tmp_path)
    assert declaration.requirement_files == ["requirements/tests.txt"]
    # The nested -r file is part of the cache key.
    first = declaration.fingerprint
    (tmp_path / "requirements/base.txt").write_text("attrs==25.1.0\n")
    assert read_declaration(tmp_path).fingerprint != first


def test_dependency_groups_with_includes(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pyproject.toml": "[dependency-groups]\n"
            'lint = ["ruff"]\ncommon = ["attrs"]\n'
            'test = ["pytest==7.4.4", {include-group = "common"}]\n'
        },
    )
    declaration = read_declaration(tmp_path)
    assert declaration.requirements == ["pytest==7.4.4", "attrs"]
    assert declaration.sources == ["pyproject.toml [dependency-groups].test"]


def test_tox_deps_keep_plain_lines_and_requirement_files(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "tox.ini": "[tox]\nenvlist = py311\n\n[testenv]\ndeps =\n"
            "    pytest>=7\n    -r{toxinidir}/requirements-test.txt\n"
            "    py38: importlib-metadata\n    {[base]deps}\n    -e .\ncommands = pytest\n",
            "requirements-test.txt": "freezegun\n",
        },
    )
    declaration = read_declaration(tmp_path)
    assert declaration.requirements == ["pytest>=7"]
    assert declaration.requirement_files == ["requirements-test.txt"]


def test_setup_cfg_extras_and_setup_py_make_it_installable(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "setup.py": "from setuptools import setup\nsetup()\n",
            "setup.cfg": "[metadata]\nname = x\n\n[options.extras_require]\n"
            "testing =\n    pytest\n    pytest-mock\n",
        },
    )
    declaration = read_declaration(tmp_path)
    assert declaration.installable
    assert declaration.extras == ["testing"]
    assert declaration.sources == ["setup.cfg [options.extras_require].testing"]


def test_setup_py_alone_asks_for_the_usual_test_extras(tmp_path: Path) -> None:
    _write(tmp_path, {"setup.py": "from setuptools import setup\nsetup()\n"})
    declaration = read_declaration(tmp_path)
    assert declaration.extras == ["test", "tests", "testing"]


def test_explicit_table_wins_over_discovery(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pyproject.toml": BUILD + '[project]\nname = "x"\n'
            '[project.optional-dependencies]\ntest = ["a"]\nci = ["b"]\n'
            '[tool.prtrace.qa]\nextras = ["ci"]\nrequirements = ["ci/reqs.txt"]\n'
            'pytest_args = ["tests/unit", "-p", "no:randomly"]\n',
            "ci/reqs.txt": "c\n",
            "requirements.txt": "ignored\n",
        },
    )
    declaration = read_declaration(tmp_path)
    assert declaration.extras == ["ci"]
    assert declaration.requirement_files == ["ci/reqs.txt"]
    assert declaration.pytest_args == ["tests/unit", "-p", "no:randomly"]


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ('extras = "test"', "must be a list of strings"),
        ('extras = ["nope"]', "does not declare"),
        ('requirements = ["missing.txt"]', "not in the workspace"),
        ('python = "3.12"', "unknown key 'python'"),
    ],
)
def test_a_bad_explicit_table_is_the_repositorys_error(
    tmp_path: Path, table: str, complaint: str
) -> None:
    _write(tmp_path, {"pyproject.toml": f"[tool.prtrace.qa]\n{table}\n"})
    with pytest.raises(QAError) as failed:
        read_declaration(tmp_path)
    assert failed.value.reason == "repo_error"
    assert complaint in failed.value.detail
    assert "[tool.prtrace.qa]" in failed.value.detail


def test_a_dependency_group_cycle_is_the_repositorys_error(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pyproject.toml": "[dependency-groups]\n"
            'test = [{include-group = "other"}]\nother = [{include-group = "test"}]\n'
        },
    )
    with pytest.raises(QAError) as failed:
        read_declaration(tmp_path)
    assert failed.value.reason == "repo_error"


def test_tox_extras_and_prefixed_requirement_files(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pyproject.toml": BUILD + '[project]\nname = "x"\n'
            '[project.optional-dependencies]\ncheck = ["a"]\ninflect = ["b"]\ndocs = ["c"]\n',
            "tox.ini": "[testenv]\nextras =\n    check\n    inflect\n    py38: docs\n",
            "requirements/requirements-tests.txt": "pytest\n",
            "requirements/requirements-docs.txt": "sphinx\n",
        },
    )
    declaration = read_declaration(tmp_path)
    assert declaration.extras == ["check", "inflect"]  # only with no test-named extra
    assert declaration.requirement_files == ["requirements/requirements-tests.txt"]
    assert "tox.ini [testenv] extras" in declaration.sources


def test_root_requirements_files_for_other_tools_are_left_out(tmp_path: Path) -> None:
    for name in (
        "requirements.txt",
        "requirements-test.txt",
        "test-requirements.txt",
        "dev.requirements.txt",
        "requirements-mypy.txt",
        "requirements_docs.txt",
        "lint-requirements.txt",
    ):
        (tmp_path / name).write_text("attrs\n")
    assert read_declaration(tmp_path).requirement_files == [
        "dev.requirements.txt",
        "requirements-test.txt",
        "requirements.txt",
        "test-requirements.txt",
    ]


@pytest.mark.parametrize(
    ("config_file", "text", "plugin"),
    [
        ("pytest.ini", "[pytest]\naddopts = -ra --cov=pkg --cov-branch\n", "pytest-cov"),
        ("setup.cfg", "[tool:pytest]\naddopts = -n auto\n", "pytest-xdist"),
        ("tox.ini", "[pytest]\nasyncio_mode = auto\n", "pytest-asyncio"),
        (
            "pyproject.toml",
            '[tool.pytest.ini_options]\naddopts = ["--benchmark-skip"]\n',
            "pytest-benchmark",
        ),
    ],
)
def test_a_plugin_the_pytest_configuration_needs_is_added_once_undeclared(
    tmp_path: Path, config_file: str, text: str, plugin: str
) -> None:
    (tmp_path / config_file).write_text(text)
    declaration = read_declaration(tmp_path)
    assert declaration.config_plugins == [plugin]
    assert plugin in declaration.requirements
    assert any(
        source.startswith(f"{plugin}: the pytest configuration uses")
        for source in declaration.sources
    )
    # Declared already: nothing is added.
    (tmp_path / "requirements-test.txt").write_text(f"{plugin}==1.0  # pinned\n")
    assert read_declaration(tmp_path).config_plugins == []


def test_no_plugin_is_added_for_what_no_configuration_asks(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = -ra --no-header -p no:cacheprovider\n"
    )
    assert read_declaration(tmp_path).config_plugins == []


def test_the_key_covers_what_a_build_compiles_and_not_the_python_code(tmp_path: Path) -> None:
    (tmp_path / "setup.py").write_text("from setuptools import setup\nsetup()\n")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "_speed.c").write_text("int x;\n")
    (tmp_path / "pkg" / "__init__.py").write_text("X = 1\n")
    first = read_declaration(tmp_path).fingerprint
    (tmp_path / "pkg" / "__init__.py").write_text("X = 2\n")  # the fix in Python: shared
    assert read_declaration(tmp_path).fingerprint == first
    (tmp_path / "pkg" / "_speed.c").write_text("int y;\n")  # the fix in C: its own build
    assert read_declaration(tmp_path).fingerprint != first


def test_build_outputs_reach_a_workspace_without_overwriting_or_following_links(
    tmp_path: Path,
) -> None:
    import os

    from prtrace.qa.dependencies import TestSetup, apply_build_outputs

    kept = tmp_path / "env" / "workspace-build"
    for relative in ("pkg/_speed.so", "pkg.egg-info/PKG-INFO", "linked/x.so", "pkg/mine.py"):
        (kept / relative).parent.mkdir(parents=True, exist_ok=True)
        (kept / relative).write_text("built")
    workspace = tmp_path / "ws"
    (workspace / "pkg").mkdir(parents=True)
    (workspace / "pkg" / "mine.py").write_text("the snapshot's")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", workspace / "linked")
    setup = TestSetup(
        build_dir=kept,
        build_outputs=["pkg/_speed.so", "pkg.egg-info/PKG-INFO", "linked/x.so", "pkg/mine.py"],
    )
    assert apply_build_outputs(setup, workspace, (os.getuid(), os.getgid())) == 2
    assert (workspace / "pkg" / "_speed.so").read_text() == "built"
    assert (workspace / "pkg.egg-info" / "PKG-INFO").is_file()
    assert (workspace / "pkg" / "mine.py").read_text() == "the snapshot's"
    assert not (tmp_path / "elsewhere" / "x.so").exists()
