"""A corpus of real PyPI projects (pinned sdists, as shipped) for QA tests.

Each entry names one released sdist, a one-line semantic bug to inject into it and
the pytest node ids that the bug turns from passing to failing (FAIL_TO_PASS when
the buggy tree is the base and the original the final snapshot).

Only the standard library is imported here so that the module loads anywhere.
``python -m tests.qa_corpus.verify_bare`` checks every entry against a bare pytest run.
"""

from __future__ import annotations

from dataclasses import dataclass

FEATURES = frozenset(
    {
        "flat",
        "src",
        "namespace",
        "extras-test",
        "requirements-folder",
        "dependency-groups",
        "tox-deps",
        "setup-cfg-extras",
        "requirements-txt",
        "old-pytest",
        "conftest-plugins",
        "data-files",
        "doctests",
        "self-dependency",
        "c-extension-optional",
        "c-extension-required",
        "undeclared-plugin",
        "gettext-i18n",
    }
)


@dataclass(frozen=True)
class CorpusProject:
    name: str
    distribution: str
    version: str
    sdist_url: str
    sdist_sha256: str
    features: tuple[str, ...]
    bug_path: str
    bug_original: str
    bug_replacement: str
    fail_to_pass: tuple[str, ...]
    pytest_seconds: float
    # Arguments for ``uv pip install`` run in the project root that install the
    # project editable with its test dependencies, as the sdist declares them.
    install: tuple[str, ...] = ()
    # Where the sdist declares its test dependencies (file and table/section).
    test_deps_declared_in: str = ""
    notes: str = ""


PROJECTS: tuple[CorpusProject, ...] = (
    CorpusProject(
        name="jaraco-text",
        distribution="jaraco.text",
        version="4.3.0",
        sdist_url=(
            "https://files.pythonhosted.org/packages/be/8c/"
            "c74f1107719400477289d99cd2c0b5b7809a45f60acecfb5ef961c3533c8/jaraco_text-4.3.0.tar.gz"
        ),
        sdist_sha256="ddd5eb6259d0701e08cb642c8d6b63bcc73947d03df9239ea67bbef911b3e4e1",
        features=("flat", "namespace", "extras-test", "data-files", "doctests"),
        bug_path="jaraco/text/__init__.py",
        bug_original="    return '\\n\\n'.join(wrapped)",
        bug_replacement="    return '\\n'.join(wrapped)",
        fail_to_pass=(
            "jaraco/text/__init__.py::jaraco.text.unwrap",
            "jaraco/text/__init__.py::jaraco.text.wrap",
        ),
        pytest_seconds=0.5,
        install=("-e", ".[test]"),
        test_deps_declared_in=(
            "pyproject.toml [project.optional-dependencies] test; tox.ini [testenv] extras adds "
            "inflect (and linters), which QA leaves out when an extra is test-named, so "
            "jaraco/text/show-newlines.py fails to import on both sides"
        ),
    ),
    CorpusProject(
        name="jaraco-functools",
        distribution="jaraco.functools",
        version="4.6.0",
        sdist_url=(
            "https://files.pythonhosted.org/packages/6c/1f/"
            "c23395957d41ccf27c4e535c3d334c4051e5395b3752057ba4cbaec35c56/"
            "jaraco_functools-4.6.0.tar.gz"
        ),
        sdist_sha256="880c577ec9720b3a052d5bc611fb9f2269b3d87902ef42440df443b88e443280",
        features=("flat", "namespace", "extras-test", "doctests"),
        bug_path="jaraco/functools/__init__.py",
        bug_original="        return lambda *args, **kwargs: f1(f2(*args, **kwargs))",
        bug_replacement="        return lambda *args, **kwargs: f2(f1(*args, **kwargs))",
        fail_to_pass=(
            "jaraco/functools/__init__.py::jaraco.functools.apply",
            "jaraco/functools/__init__.py::jaraco.functools.compose",
            "jaraco/functools/__init__.py::jaraco.functools.print_yielded",
        ),
        pytest_seconds=3.4,
        install=("-e", ".[test]"),
        test_deps_declared_in="pyproject.toml [project.optional-dependencies] test",
    ),
    CorpusProject(
        name="pluggy",
        distribution="pluggy",
        version="1.7.0",
        sdist_url=(
            "https://files.pythonhosted.org/packages/bf/db/"
            "7fc19e6f2dc92a966727031389fc2e08b558f0f25eb7403c1119ad4713cd/pluggy-1.7.0.tar.gz"
        ),
        sdist_sha256="d1eaa46ebb595891b860ab086b4d09c8588af65ebd4361b8e8f4bb8920b90ba8",
        features=("src", "dependency-groups", "self-dependency"),
        bug_path="src/pluggy/_tracing.py",
        bug_original="        lines = [f\"{indent}{content} [{':'.join(tags)}]\\n\"]",
        bug_replacement="        lines = [f\"{indent}{content} [{'.'.join(tags)}]\\n\"]",
        fail_to_pass=("testing/test_tracer.py::test_simple",),
        pytest_seconds=0.7,
        install=("-e", ".", "--group", "testing"),
        test_deps_declared_in="pyproject.toml [dependency-groups] testing",
    ),
    CorpusProject(
        name="cachetools",
        distribution="cachetools",
        version="8.0.2",
        sdist_url=(
            "https://files.pythonhosted.org/packages/75/28/"
            "eb1ac766e4c0c439506a654186de8e2cfcd99035218a9393986103a0fdf0/cachetools-8.0.2.tar.gz"
        ),
        sdist_sha256="30ac523adfc118b51d2b2e7bad8a0ddb31370dfe2700c7f10ca224f36ccf81e0",
        features=("src", "tox-deps"),
        bug_path="src/cachetools/__init__.py",
        bug_original="        key = self.__choice(keys)",
        bug_replacement="        key = max(keys)",
        fail_to_pass=(
            "tests/test_func.py::RRDecoratorTest::test_rr_choice",
            "tests/test_rr.py::RRCacheTest::test_rr",
            "tests/test_rr.py::RRCacheTest::test_rr_bad_choice",
            "tests/test_rr.py::RRCacheTest::test_rr_copy",
            "tests/test_rr.py::RRCacheTest::test_rr_update_existing",
        ),
        pytest_seconds=1.0,
        install=("-e", ".", "pytest", "pytest-cov"),
        test_deps_declared_in="tox.ini [testenv] deps (pytest, pytest-cov)",
    ),
    CorpusProject(
        name="mock",
        distribution="mock",
        version="5.2.0",
        sdist_url=(
            "https://files.pythonhosted.org/packages/07/8c/"
            "14c2ae915e5f9dca5a22edd68b35be94400719ccfa068a03e0fb63d0f6f6/mock-5.2.0.tar.gz"
        ),
        sdist_sha256="4e460e818629b4b173f32d08bf30d3af8123afbb8e04bb5707a1fd4799e503f0",
        features=("flat", "setup-cfg-extras"),
        bug_path="mock/mock.py",
        bug_original="    if args_string:",
        bug_replacement="    if args_string and not kwargs_string:",
        fail_to_pass=(
            "mock/tests/testhelpers.py::CallTest::test_repr",
            "mock/tests/testhelpers.py::TestCallList::test_call_list_str",
            "mock/tests/testmock.py::MockTest::test_assert_called_with_failure_message",
        ),
        pytest_seconds=3.1,
        install=("-e", ".[test]"),
        test_deps_declared_in="setup.cfg [options.extras_require] test",
    ),
    CorpusProject(
        name="freezegun",
        distribution="freezegun",
        version="1.5.5",
        sdist_url=(
            "https://files.pythonhosted.org/packages/95/dd/"
            "23e2f4e357f8fd3bdff613c1fe4466d21bfb00a6177f238079b17f7b1c84/freezegun-1.5.5.tar.gz"
        ),
        sdist_sha256="ac7742a6cc6c25a2c35e9292dfd554b897b517d2dec26891a2e8debf205cb94a",
        features=("flat", "requirements-txt"),
        bug_path="freezegun/api.py",
        bug_original="        return (self - _EPOCHTZ).total_seconds()  # type: ignore",
        bug_replacement="        return (self - _EPOCH).total_seconds()  # type: ignore",
        fail_to_pass=("tests/test_datetimes.py::test_timestamp_with_tzoffset",),
        pytest_seconds=1.5,
        install=("-e", ".", "-r", "requirements.txt"),
        test_deps_declared_in="requirements.txt (tox.ini [testenv] deps = -rrequirements.txt)",
    ),
    CorpusProject(
        name="click",
        distribution="click",
        version="8.1.7",
        sdist_url=(
            "https://files.pythonhosted.org/packages/96/d3/"
            "f04c7bfcf5c1862a2a5b845c6b2b360488cf47af55dfa79c98f6a6bf98b5/click-8.1.7.tar.gz"
        ),
        sdist_sha256="ca9853ad459e787e2192211578cc907e7594e294c7ccc834310722b41b9ca6de",
        features=("src", "requirements-folder", "old-pytest"),
        bug_path="src/click/utils.py",
        bug_original='        if word[-1] == ".":  # sentence end, truncate without "..."',
        bug_replacement='        if word[-1] == ",":  # sentence end, truncate without "..."',
        fail_to_pass=(
            "tests/test_utils.py::test_make_default_short_help[-sentence < max]",
            "tests/test_utils.py::test_make_default_short_help[no-wrap mark-sentence < max]",
        ),
        pytest_seconds=1.2,
        install=("-e", ".", "-r", "requirements/tests.txt"),
        test_deps_declared_in=(
            "requirements/tests.txt (pip-compiled, pytest==7.4.0; tox.ini [testenv] deps)"
        ),
    ),
    CorpusProject(
        name="arrow",
        distribution="arrow",
        version="1.4.0",
        sdist_url=(
            "https://files.pythonhosted.org/packages/b9/33/"
            "032cdc44182491aa708d06a68b62434140d8c50820a087fac7af37703357/arrow-1.4.0.tar.gz"
        ),
        sdist_sha256="ed0cc050e98001b8779e84d461b0098c4ac597e88704a655582b21d116e526d7",
        features=("flat", "extras-test", "requirements-folder", "conftest-plugins"),
        bug_path="arrow/locales.py",
        bug_original='                return f"{n}rd"',
        bug_replacement='                return f"{n}th"',
        fail_to_pass=("tests/test_locales.py::TestEnglishLocale::test_ordinal_number",),
        pytest_seconds=10.4,
        install=("-e", ".", "-r", "requirements/requirements-tests.txt"),
        test_deps_declared_in=(
            "requirements/requirements-tests.txt (tox.ini [testenv] deps); the same list is "
            "pyproject.toml [project.optional-dependencies] test"
        ),
    ),
    CorpusProject(
        name="itsdangerous",
        distribution="itsdangerous",
        version="2.2.0",
        sdist_url=(
            "https://files.pythonhosted.org/packages/9c/cb/"
            "8ac0172223afbccb63986cc25049b154ecfb5e85932587206f42317be31d/itsdangerous-2.2.0.tar.gz"
        ),
        sdist_sha256="e0050c0b7da1eea53ffaf149c0cfbb5c6e2e2b69c4bef22c81fa6eb73e5f6173",
        features=("src", "requirements-folder"),
        bug_path="src/itsdangerous/timed.py",
        bug_original="            if age < 0:",
        bug_replacement="            if ts_int < 0:",
        fail_to_pass=(
            "tests/test_itsdangerous/test_timed.py::TestTimestampSigner::test_future_age",
        ),
        pytest_seconds=0.8,
        install=("-e", ".", "-r", "requirements/tests.txt"),
        test_deps_declared_in="requirements/tests.txt (pip-compiled; tox.ini [testenv] deps)",
    ),
    CorpusProject(
        name="markupsafe",
        distribution="MarkupSafe",
        version="3.0.4",
        sdist_url=(
            "https://files.pythonhosted.org/packages/38/9b/"
            "e422a865e1d5d57d0e509b4e0bf1c1a70a7f6382c29a5aa428df994c8bc8/markupsafe-3.0.4.tar.gz"
        ),
        sdist_sha256="2e9ad7dd851bf45fab9f75cbff4cb493fee9979e8d8c7c9c3ee119022518edd6",
        features=("src", "dependency-groups", "c-extension-optional"),
        bug_path="src/markupsafe/__init__.py",
        bug_original='        value = " ".join(value.split())',
        bug_replacement='        value = "".join(value.split())',
        fail_to_pass=(
            "tests/test_markupsafe.py::test_escaping[markupsafe._native]",
            "tests/test_markupsafe.py::test_escaping[markupsafe._speedups]",
        ),
        pytest_seconds=0.8,
        install=("-e", ".", "--group", "tests"),
        test_deps_declared_in="pyproject.toml [dependency-groups] tests",
        notes=(
            "setup.py builds the C extension markupsafe._speedups if it can and falls back to "
            "pure Python if not; tests/conftest.py parametrises an autouse fixture over "
            "markupsafe._native and markupsafe._speedups, the latter skipped when the "
            "extension is missing. The bug (Markup.striptags) is in code both use, so "
            "FAIL_TO_PASS holds one id per implementation: the [markupsafe._speedups] ids "
            "only exist when the extension was compiled into the tree of that side (without "
            "it the parameter is None and the id becomes [None], skipped)"
        ),
    ),
    CorpusProject(
        name="bitarray",
        distribution="bitarray",
        version="3.12.3",
        sdist_url=(
            "https://files.pythonhosted.org/packages/a9/cc/"
            "aa09a20048dd650d9a36bd70c26b2688413066d65acc9f484f94b9929108/bitarray-3.12.3.tar.gz"
        ),
        sdist_sha256="919e35a951c0a551631b94bf568f3f5e38d004e0c60866cb2ca51bd8c4778fec",
        features=("flat", "c-extension-required"),
        bug_path="bitarray/_util.c",
        bug_original="    x = (unsigned char) zlc(a);",
        bug_replacement="    x = 0;",
        fail_to_pass=(
            "bitarray/test_util.py::ParityTests::test_explicit",
            "bitarray/test_util.py::ParityTests::test_random",
            "bitarray/test_util.py::ParityTests::test_zeros_ones",
        ),
        pytest_seconds=2.5,
        install=("-e", ".", "pytest"),
        test_deps_declared_in=(
            "nothing: the tests are unittest modules inside the package (bitarray.test()); "
            "pytest is not declared"
        ),
        notes=(
            "bitarray/__init__.py imports the C extensions bitarray._bitarray and "
            "bitarray._util (setup.py ext_modules, no fallback), which an editable install "
            "compiles into the tree; the bug is in C (util.parity ignores the last, partial "
            "byte), so each side's extension must be compiled from that side's source. "
            "bitarray/test_free_threading.py fails to collect on both sides (it asserts a "
            "free-threaded interpreter at import)"
        ),
    ),
    CorpusProject(
        name="parse",
        distribution="parse",
        version="1.22.4",
        sdist_url=(
            "https://files.pythonhosted.org/packages/9e/0f/"
            "4bada23d2848aaa61f3577181dbd83895fa49fb9beb406835ed7eaca1b96/parse-1.22.4.tar.gz"
        ),
        sdist_sha256="706d458feed5a81b02768d3156e8070baf6cee7d150a3a3c0cd43101a875c3b5",
        features=("flat", "doctests", "undeclared-plugin"),
        bug_path="parse/__init__.py",
        bug_original="    return float(string[:-1]) / 100.0",
        bug_replacement="    return float(string[:-1]) / 10.0",
        fail_to_pass=("tests/test_parse.py::test_numbers",),
        pytest_seconds=1.5,
        install=("-e", ".", "pytest", "pytest-cov"),
        test_deps_declared_in=(
            "nothing: pyproject.toml [tool.pytest.ini_options] addopts has --cov=parse "
            "--cov-report=term-missing --cov-append --cov-branch (pytest-cov) and "
            "--doctest-modules --doctest-glob=README.rst, but no file of the sdist declares "
            "pytest or pytest-cov; without pytest-cov pytest exits 4 (unrecognized arguments)"
        ),
    ),
    CorpusProject(
        name="humanize",
        distribution="humanize",
        version="4.17.0",
        sdist_url=(
            "https://files.pythonhosted.org/packages/d0/a7/"
            "5391f6db94bf16289ca63ce2632eef2eba7b9991e701016ac66f04539d47/humanize-4.17.0.tar.gz"
        ),
        sdist_sha256="1d6a36c453dbfbb3f0b34601d2e0b4ce5d48d780305cd45714843f0068fde6ac",
        features=("src", "extras-test", "doctests", "gettext-i18n"),
        bug_path="src/humanize/number.py",
        bug_original='    N_("one"),',
        bug_replacement='    "one",',
        fail_to_pass=(
            "tests/test_i18n.py::test_update_translations[de_DE-eins]",
            "tests/test_i18n.py::test_update_translations[fr_FR-un]",
        ),
        pytest_seconds=7.2,
        install=("-e", ".[tests]"),
        test_deps_declared_in=(
            "pyproject.toml [project.optional-dependencies] tests (pytest>=9, freezegun, "
            "pytest-benchmark, pytest-codspeed, pytest-cov); tox.ini [testenv] extras = tests"
        ),
        notes=(
            "The sdist ships the compiled catalogues (src/humanize/locale/*/LC_MESSAGES/"
            "humanize.mo, gitignored in the repository, hatch build artifacts), which the "
            "i18n tests load. The bug drops the N_() marker from one apnumber word: at run "
            "time nothing changes (N_ is a no-op and the shipped .mo still has the word), but "
            "scripts/update-translations.sh (xgettext, msgmerge, msgfmt) no longer extracts "
            "it, which only tests/test_i18n.py::test_update_translations sees; that test "
            "skips unless bash, xgettext, msgmerge and msgfmt (GNU gettext) are on PATH. "
            "pytest >= 9 is needed: the configuration is the [tool.pytest] table "
            "(minversion 9.0)"
        ),
    ),
)

BY_NAME: dict[str, CorpusProject] = {project.name: project for project in PROJECTS}
