"""What QA reads from the diff before any run (prtrace.qa.tamper) and the held workspace
(prtrace.qa.overlay.build_held): the flags each gaming shape raises, none for an honest fix
or for what the base already had."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from prtrace.qa.overlay import build_held, stage_base_harness
from prtrace.qa.tamper import TestDefinitions, scan, tree_changes
from tests.factories import write_files

TESTS = "def test_bug():\n    assert f() == 1\n\n\ndef test_other():\n    assert True\n"
PYPROJECT = '[project]\nname = "p"\n\n[tool.pytest.ini_options]\naddopts = "-q"\n'


@pytest.fixture
def base(tmp_path: Path) -> Path:
    return write_files(
        tmp_path / "base",
        {
            "pkg/__init__.py": "def f():\n    return 0\n",
            "tests/test_r.py": TESTS,
            "pyproject.toml": PYPROJECT,
        },
    )


def final_of(base: Path, tmp_path: Path, files: dict[str, str]) -> Path:
    import shutil

    final = tmp_path / "final"
    shutil.copytree(base, final)
    return write_files(final, files)


def codes(base: Path, final: Path) -> dict[str, bool]:
    return {flag.code: flag.blocking for flag in scan(base, final).flags}


FIX = {"pkg/__init__.py": "def f():\n    return 1\n"}


def test_an_honest_fix_raises_no_flag(base: Path, tmp_path: Path) -> None:
    assert codes(base, final_of(base, tmp_path, FIX)) == {}


def test_an_honest_fix_with_a_test_and_a_fixture_is_informative_only(
    base: Path, tmp_path: Path
) -> None:
    final = final_of(
        base,
        tmp_path,
        FIX
        | {
            "tests/test_new.py": "def test_new():\n    assert True\n",
            "tests/conftest.py": "import pytest\n\n@pytest.fixture\ndef x():\n    return 1\n",
        },
    )
    found = scan(base, final)
    assert {f.code: f.blocking for f in found.flags} == {
        "test_files_changed": False,
        "harness_changed": False,
    }
    assert found.changed_test_files == ["tests/test_new.py"]
    assert found.changed_harness_files == ["tests/conftest.py"]


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (
            {"tests/conftest.py": "def pytest_runtest_makereport(item, call):\n    pass\n"},
            "result_hook_added",
        ),
        (
            {
                "tests/conftest.py": "import pytest\n\n"
                '@pytest.hookimpl(specname="pytest_runtest_makereport")\ndef r(i, c):\n    pass\n'
            },
            "result_hook_added",
        ),
        (
            {"pkg/_hooks.py": "def pytest_report_teststatus(report):\n    pass\n"},
            "result_hook_added",
        ),
        (
            {"pyproject.toml": PYPROJECT.replace('"-q"', '"-q -p pkg._hooks"')},
            "pytest_plugin_added",
        ),
        ({"pytest.ini": "[pytest]\naddopts = -ppkg.plug\n"}, "pytest_plugin_added"),
        (
            {"pyproject.toml": PYPROJECT + '\n[project.entry-points.pytest11]\nx = "pkg.x"\n'},
            "pytest_plugin_added",
        ),
        ({"tests/conftest.py": 'pytest_plugins = ["pkg.plug"]\n'}, "pytest_plugin_added"),
        (
            {"pkg/__init__.py": "import os\nf = lambda: 'PYTEST_CURRENT_TEST' in os.environ\n"},
            "pytest_detection_in_code",
        ),
        (
            {"pkg/__init__.py": "import sys\nf = lambda: int('pytest' in sys.modules)\n"},
            "pytest_detection_in_code",
        ),
        ({"pkg/rewrite.py": "import pathlib\nJ = 'junit.xml'\n"}, "pytest_detection_in_code"),
        ({"sitecustomize.py": "import pkg\n"}, "interpreter_hook_added"),
        ({"pkg/zz.pth": "import pkg\n"}, "interpreter_hook_added"),
        ({"pkg/__init__.py": "import os\n\ndef f():\n    os._exit(0)\n"}, "process_exit_added"),
        ({"tests/conftest.py": "import sys\nsys.exit(0)\n"}, "process_exit_added"),
    ],
)
def test_each_gaming_shape_raises_its_blocking_flag(
    base: Path, tmp_path: Path, files: dict[str, str], code: str
) -> None:
    found = codes(base, final_of(base, tmp_path, files))
    assert found.get(code) is True, found


def test_what_the_base_already_had_is_not_flagged(tmp_path: Path) -> None:
    """A repository that ships a pytest plugin keeps its hooks: only additions count."""
    plugin = "def pytest_collection_modifyitems(items):\n    pass\n"
    base = write_files(tmp_path / "base", {"pkg/plugin.py": plugin, "tests/conftest.py": plugin})
    final = final_of(base, tmp_path, {"pkg/plugin.py": plugin + "\n# tidy\n"})
    assert codes(base, final) == {}


def test_a_deselection_in_the_configuration_is_a_harness_change(base: Path, tmp_path: Path) -> None:
    deselect = PYPROJECT.replace('"-q"', '"-q --deselect tests/test_r.py::test_bug"')
    found = scan(base, final_of(base, tmp_path, {"pyproject.toml": deselect}))
    assert found.changed_harness_files == ["pyproject.toml"]
    # The project's own metadata is not the harness.
    version = PYPROJECT.replace('name = "p"', 'name = "p"\nversion = "2"')
    assert scan(base, final_of(base, tmp_path / "v", {"pyproject.toml": version})).flags == []


def test_test_definitions_modified_removed_and_added(base: Path, tmp_path: Path) -> None:
    final = final_of(
        base,
        tmp_path,
        {
            "tests/test_r.py": "def test_bug():\n    assert f() == 2\n\n\n"
            "def test_added():\n    assert True\n"
        },
    )
    # Read before any run; formatting alone is not a change.
    definitions = TestDefinitions.read(base, final, tree_changes(base, final))
    (final / "tests/test_r.py").write_text(TESTS)
    assert definitions.changes(
        [
            "tests/test_r.py::test_bug",
            "tests/test_r.py::test_other",
            "tests/test_r.py::test_added",
            "tests/test_unchanged.py::test_x",
        ]
    ) == {
        "tests/test_r.py::test_bug": "modified",
        "tests/test_r.py::test_other": "removed",
        "tests/test_r.py::test_added": "added",
    }


def test_the_held_workspace_has_exactly_the_bases_tests_and_harness(
    base: Path, tmp_path: Path
) -> None:
    write_files(base, {"tests/conftest.py": "# base\n"})
    final = final_of(
        base,
        tmp_path,
        FIX
        | {
            "tests/test_r.py": "def test_bug():\n    assert True\n",
            "tests/conftest.py": "# final: rewrites reports\n",
            "pkg/conftest.py": "# planted next to the code\n",
            "pytest.ini": "[pytest]\naddopts = -p pkg.plug\n",
            "pyproject.toml": PYPROJECT.replace('"-q"', '"-p pkg.plug"'),
        },
    )
    os.symlink("../pkg", final / "tests" / "conftest_link.py")
    staged = tmp_path / "staged"
    stage_base_harness(base, staged)
    held = tmp_path / "held"
    assert build_held(final, staged, held) is True
    assert (held / "tests/test_r.py").read_text() == TESTS
    assert (held / "tests/conftest.py").read_text() == "# base\n"
    assert (held / "pyproject.toml").read_text() == PYPROJECT
    assert (held / "pkg/__init__.py").read_text() == FIX["pkg/__init__.py"]  # the final code
    for gone in ("pkg/conftest.py", "pytest.ini", "tests/conftest_link.py"):
        assert not os.path.lexists(held / gone), gone


def test_no_held_run_when_the_fix_left_tests_and_harness_alone(base: Path, tmp_path: Path) -> None:
    final = final_of(base, tmp_path, FIX)
    staged = tmp_path / "staged"
    stage_base_harness(base, staged)
    assert build_held(final, staged, tmp_path / "held") is False
