"""The workspace project is what the tests import: installed editable into the run's own
environment with the dependencies it declares, the repository's own pytest when it names
one, and `src/` on the path when the project cannot be built."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.sandbox.conftest import Backend
from tests.sandbox.helpers import run_qa, wheel

SETUPTOOLS = (
    '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
)
SUBTRACT, ADD = "    return a - b\n", "    return a + b\n"


def _project(root: Path, name: str, files: dict[str, str | bytes]) -> Path:
    repo = root / name
    for path, body in files.items():
        target = repo / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(body, bytes):
            target.write_bytes(body)
        else:
            target.write_text(body)
    return repo


def _pair(root: Path, files: dict[str, str | bytes], package: str = "calc") -> tuple[Path, Path]:
    base = _project(root, "base", files)
    final = root / "final"
    shutil.copytree(base, final)
    module = final / "src" / package / "__init__.py"
    module.write_text(module.read_text().replace(SUBTRACT, ADD))
    return base, final


CALC = "def add(a, b):\n" + SUBTRACT
PROVES_WHICH_FILE = (
    "import calc\n\n"
    "def test_add():\n    assert calc.add(2, 3) == 5\n\n"
    "def test_imported_from_the_workspace():\n"
    "    assert calc.__file__ == '/workspace/src/calc/__init__.py', calc.__file__\n"
)


def test_a_released_copy_dragged_in_by_a_test_dependency_is_not_what_runs(
    backend: Backend, scratch: Path, pypi: str
) -> None:
    """src layout; its test dependency `needs-calc` requires `calc`, and a released `calc`
    (with the fix already in it) sits in the index the requirements name. Without the
    workspace installed, that copy is what `import calc` finds and no test fails on base."""
    released = wheel("calc", "1.0", "def add(a, b):\n" + ADD)
    dragger = wheel("needs_calc", "0.1", "", requires=("calc",))
    base, final = _pair(
        scratch,
        {
            "pyproject.toml": SETUPTOOLS + '[project]\nname = "calc"\nversion = "1.0"\n',
            "src/calc/__init__.py": CALC,
            "tests/test_calc.py": PROVES_WHICH_FILE,
            "requirements-test.txt": "--find-links ./wheels\nneeds_calc==0.1\n",
            "wheels/calc-1.0-py3-none-any.whl": released,
            "wheels/needs_calc-0.1-py3-none-any.whl": dragger,
        },
    )
    report, _ = run_qa(backend, scratch, base, final)
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == ["tests/test_calc.py::test_add"]
    assert report.pass_to_pass == ["tests/test_calc.py::test_imported_from_the_workspace"]
    assert report.final is not None
    assert report.final.workspace_install == "editable"
    assert report.final.dependency_sources == ["requirements-test.txt"]


def test_a_repository_pinning_an_older_pytest_runs_its_own(
    bwrap: Backend, scratch: Path, pypi: str
) -> None:
    """Its conftest uses a hook signature pytest 9 removed (`path`): with the runner's pytest
    the run would be a usage error. It pins pytest 7, so pytest 7 runs it."""
    base, final = _pair(
        scratch,
        {
            "pyproject.toml": SETUPTOOLS + '[project]\nname = "calc"\nversion = "1.0"\n'
            '[project.optional-dependencies]\ntest = ["pytest==7.4.4"]\n',
            "src/calc/__init__.py": CALC,
            "tests/test_calc.py": PROVES_WHICH_FILE,
            "conftest.py": "def pytest_ignore_collect(path, config):\n"
            "    return path.basename == 'ignored'\n",
        },
    )
    report, _ = run_qa(bwrap, scratch, base, final)
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == ["tests/test_calc.py::test_add"]
    assert report.final is not None
    assert report.final.pytest_version == "7.4.4"
    assert report.final.pytest_source == "repository"
    assert report.final.dependency_sources == [
        "pyproject.toml [project.optional-dependencies].test"
    ]


def test_a_project_that_cannot_be_built_runs_from_src(bwrap: Backend, scratch: Path) -> None:
    broken_build = (
        '[build-system]\nrequires = ["no-such-backend-prtrace"]\n'
        'build-backend = "no_such_backend"\n[project]\nname = "calc"\nversion = "1.0"\n'
    )
    base, final = _pair(
        scratch,
        {
            "pyproject.toml": broken_build,
            "src/calc/__init__.py": CALC,
            "tests/test_calc.py": PROVES_WHICH_FILE,
        },
    )
    report, _ = run_qa(
        bwrap, scratch, base, final, dependency_network=False, cache_dir=scratch / "cache"
    )  # a cold cache
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == ["tests/test_calc.py::test_add"]
    assert report.final is not None
    assert report.final.workspace_install == "src_path"
    assert report.final.pytest_source == "runner"
    assert "no-such-backend-prtrace" in (report.final.install_detail or "")


NODE_ID_SUITE: dict[str, str | bytes] = {
    "src/calc/__init__.py": (
        'def add(a, b):\n    """\n    >>> add(2, 3)\n    5\n    """\n' + SUBTRACT
    ),
    "tests/unit/test_shapes.py": (
        "import pytest\nimport calc\n\n"
        "class TestAdd:\n"
        "    class TestNested:\n"
        "        def test_deep(self):\n            assert calc.add(1, 1) == 2\n\n"
        "    @pytest.mark.parametrize('x', [1, 'a.b', 'sp ace'])\n"
        "    def test_param(self, x):\n            assert calc.add(0, 0) == 0\n\n"
        "def test_top():\n    assert calc.add(2, 2) == 4\n"
    ),
    "tests/test_broken.py": "import not_installed_anywhere\n",
}


@pytest.mark.parametrize("pytest_version", ["7.4.4", "8.4.2", "9.0.1"])
def test_node_ids_are_the_same_with_pytest_7_8_and_9(
    bwrap: Backend, scratch: Path, pypi: str, pytest_version: str
) -> None:
    base, final = _pair(
        scratch,
        {
            **NODE_ID_SUITE,
            "pyproject.toml": SETUPTOOLS + '[project]\nname = "calc"\nversion = "1.0"\n'
            '[tool.pytest.ini_options]\naddopts = "--doctest-modules"\n'
            'testpaths = ["src", "tests"]\n',
            "requirements/test.txt": f"pytest=={pytest_version}\n",
        },
    )
    report, _ = run_qa(bwrap, scratch, base, final)
    assert report.final is not None
    assert (report.final.pytest_version, report.final.pytest_source) == (
        pytest_version,
        "repository",
    )
    assert report.final.collection_errors == ["tests/test_broken.py"]
    assert report.fail_to_pass == [
        "src/calc/__init__.py::calc.add",
        "tests/unit/test_shapes.py::TestAdd::TestNested::test_deep",
        "tests/unit/test_shapes.py::test_top",
    ]
    assert report.pass_to_pass == [
        "tests/unit/test_shapes.py::TestAdd::test_param[1]",
        "tests/unit/test_shapes.py::TestAdd::test_param[a.b]",
        "tests/unit/test_shapes.py::TestAdd::test_param[sp ace]",
    ]
    assert report.verdict == "resolved"


EXTENSION_PROJECT: dict[str, str | bytes] = {
    "pyproject.toml": SETUPTOOLS + '\n[project]\nname = "fastr"\nversion = "0.1"\n',
    "setup.py": (
        "from setuptools import Extension, setup\n\n"
        "setup(packages=['fastr'], package_dir={'': 'src'}, ext_modules=[\n"
        "    Extension('fastr._speed', ['src/fastr/_speed.c'], optional=True)])\n"
    ),
    "src/fastr/__init__.py": (
        "try:\n    from fastr._speed import add as fast_add\n"
        "except ImportError:\n    fast_add = None\n\n\n"
        "def add(a, b):\n" + SUBTRACT
    ),
    "src/fastr/_speed.c": (
        "#define PY_SSIZE_T_CLEAN\n#include <Python.h>\n"
        "static PyObject *add(PyObject *self, PyObject *args) {\n"
        '    long a, b;\n    if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;\n'
        "    return PyLong_FromLong(a + b);\n}\n"
        'static PyMethodDef methods[] = {{"add", add, METH_VARARGS, NULL}, {NULL}};\n'
        'static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};\n'
        "PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }\n"
    ),
    "tests/test_add.py": (
        "import pytest\n\nimport fastr\n\n\n"
        "@pytest.mark.parametrize('impl', [fastr.add, fastr.fast_add], ids=['py', 'c'])\n"
        "def test_add(impl):\n"
        "    if impl is None:\n        pytest.skip('no extension')\n"
        "    assert impl(2, 3) == 5\n\n\n"
        "def test_the_extension_was_built():\n    assert fastr.fast_add is not None\n"
    ),
}


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_an_extension_built_on_one_side_is_tested_on_both(
    backend: Backend, scratch: Path, warm: bool
) -> None:
    """The environment is prepared once for both sides (same declarations, same C
    sources); the extension its install compiles into the workspace reaches the other
    snapshot too, cold cache or warm, so both are tested on the same build."""
    base, final = _pair(scratch, EXTENSION_PROJECT, "fastr")
    if warm:
        run_qa(backend, scratch, base, final, "tr_warmup")
    report, _ = run_qa(backend, scratch, base, final, "tr_ext")
    assert report.verdict == "resolved", report.error_detail
    assert report.fail_to_pass == ["tests/test_add.py::test_add[py]"]
    assert "tests/test_add.py::test_the_extension_was_built" in report.pass_to_pass
    assert report.base is not None
    assert report.final is not None
    assert report.base.compiled_modules == report.final.compiled_modules == ["src/fastr/_speed"]
    assert not [f for f in report.flags if f.code == "environment_differs"]


def test_a_build_only_one_side_has_is_a_blocking_flag(backend: Backend, scratch: Path) -> None:
    """The fix's C source does not compile: the final is tested without the extension the
    base had. That is not a comparison QA can vouch for."""
    base, final = _pair(scratch, EXTENSION_PROJECT, "fastr")
    source = final / "src" / "fastr" / "_speed.c"
    source.write_text(source.read_text().replace("return PyLong_FromLong", "return }{"))
    report, _ = run_qa(backend, scratch, base, final)
    assert report.verdict != "resolved"
    (flag,) = [f for f in report.flags if f.code == "environment_differs"]
    assert flag.blocking
    assert "compiled only on base: src/fastr/_speed" in flag.detail
