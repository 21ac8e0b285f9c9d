"""JUnit node ids, bounded output capture and QA settings (the verdict: test_qa_verdict)."""

from __future__ import annotations

import pytest

from prtrace.adapters.sandbox.processes import BoundedCapture
from prtrace.qa.junit import parse_junit
from prtrace.qa.settings import QASettings
from prtrace.settings import ConfigurationError

JUNIT = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="6">
<testcase classname="" name="tests.test_broken" file="tests/test_broken.py" time="0">
  <error message="collection failure">ImportError</error></testcase>
<testcase classname="tests.sub.test_cls.TestA" name="test_p[1-a.b]" file="tests/sub/test_cls.py"/>
<testcase classname="tests.test_ranges" name="test_ok" file="tests/test_ranges.py"/>
<testcase classname="tests.test_ranges" name="test_bad" file="tests/test_ranges.py">
  <failure message="assert 1 == 2"/></testcase>
<testcase classname="tests.test_ranges" name="test_skip" file="tests/test_ranges.py">
  <skipped message="no"/></testcase>
<testcase classname="tests.test_ranges" name="test_ok" file="tests/test_ranges.py">
  <error message="teardown failed"/></testcase>
<testcase classname="test_top.Outer.Inner" name="test_n" file="test_top.py"/>
</testsuite></testsuites>"""


def test_junit_cases_become_pytest_node_ids() -> None:
    parsed = parse_junit(JUNIT)
    assert parsed.outcomes == {
        "tests/test_broken.py": "error",
        "tests/sub/test_cls.py::TestA::test_p[1-a.b]": "passed",
        "tests/test_ranges.py::test_ok": "error",  # a teardown error after a pass: worst wins
        "tests/test_ranges.py::test_bad": "failed",
        "tests/test_ranges.py::test_skip": "skipped",
        "test_top.py::Outer::Inner::test_n": "passed",
    }
    assert parsed.collection_errors == ["tests/test_broken.py"]
    assert parsed.count("passed") == 2


def test_not_junit_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not a JUnit XML document"):
        parse_junit(b"<html>")


@pytest.mark.parametrize(
    "xml",
    [
        b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/shadow">]>'
        b'<testsuite><testcase classname="a" name="&x;"/></testsuite>',
        b'<!DOCTYPE t [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><testsuite/>',
    ],
)
def test_junit_with_a_dtd_is_refused(xml: bytes) -> None:
    with pytest.raises(ValueError, match="DTDs and entities are refused"):
        parse_junit(xml)


def test_bounded_capture_keeps_head_and_tail() -> None:
    capture = BoundedCapture(20)
    for index in range(100):
        capture.feed(f"{index:03d}".encode())
    value = capture.value()
    assert value.startswith(b"0000010020")
    assert value.endswith(b"6097098099")
    assert b"bytes cut" in value
    assert capture.dropped == 300 - 20


def test_qa_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRTRACE_SANDBOX_BACKEND", "docker")
    monkeypatch.setenv("PRTRACE_QA_MEMORY_MB", "512")
    monkeypatch.setenv("PRTRACE_QA_DEPENDENCY_NETWORK", "false")
    settings = QASettings.from_env(reruns=2)
    assert settings.backend == "docker"
    assert settings.limits.memory_mb == 512
    assert settings.dependency_network is False
    assert settings.reruns == 2
    monkeypatch.setenv("PRTRACE_SANDBOX_BACKEND", "none")
    with pytest.raises(ConfigurationError, match="PRTRACE_SANDBOX_BACKEND"):
        QASettings.from_env()


def test_inherited_tests_take_the_module_that_collected_them() -> None:
    """xunit1's file is where the test function is defined (a mixin in tests/__init__.py);
    pytest's node id, and the classname, name the module that collected it."""
    xml = b"""<testsuites><testsuite name="pytest">
<testcase classname="tests.test_rr.RRCacheTest" name="test_rr" file="tests/__init__.py"/>
<testcase classname="tests.test_lru.LRUCacheTest" name="test_rr" file="tests/__init__.py"/>
</testsuite></testsuites>"""
    files = {"tests/__init__.py", "tests/test_rr.py", "tests/test_lru.py"}
    parsed = parse_junit(xml, files.__contains__)
    assert set(parsed.outcomes) == {
        "tests/test_rr.py::RRCacheTest::test_rr",
        "tests/test_lru.py::LRUCacheTest::test_rr",
    }


def test_an_item_of_the_root_itself_keeps_its_node_id() -> None:
    xml = b"""<testsuites><testsuite name="pytest">
<testcase classname="" name="project" file="."><failure message="build failed"/></testcase>
</testsuite></testsuites>"""
    assert parse_junit(xml, lambda _: False).outcomes == {".::project": "failed"}


def test_a_doctest_of_a_text_file_keeps_pytests_node_id() -> None:
    xml = b"""<testsuites><testsuite name="pytest">
<testcase classname="README.rst" name="README.rst" file="README.rst"/>
<testcase classname="docs.usage.rst" name="usage.rst" file="docs/usage.rst"/>
<testcase classname="pkg.mod" name="pkg.mod.func" file="pkg/mod.py"/>
</testsuite></testsuites>"""
    assert set(parse_junit(xml, lambda _: True).outcomes) == {
        "README.rst::README.rst",
        "docs/usage.rst::usage.rst",
        "pkg/mod.py::pkg.mod.func",
    }
