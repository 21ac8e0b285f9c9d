"""The settings family: each variable named by its model, one error format naming the
variables and never their values, and the tables of docs/configuration.md generated from the
models."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra_cdk import config as deploy_config
from prtrace.judge.settings import JudgeSettings
from prtrace.pipeline.settings_table import BEGIN, END, markdown, rows
from prtrace.qa.settings import QASettings, QATaskInput
from prtrace.settings import ConfigurationError, Settings

CONFIGURATION_PAGE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_the_configuration_table_is_the_generated_one() -> None:
    text = CONFIGURATION_PAGE.read_text()
    start, end = text.index(BEGIN), text.index(END) + len(END)
    assert text[start:end] == markdown(), (
        "run `python -m prtrace.pipeline.settings_table` into docs/configuration.md"
    )


def test_the_deployment_table_is_the_generated_one() -> None:
    text = CONFIGURATION_PAGE.read_text()
    begin, end = deploy_config.TABLE_BEGIN, deploy_config.TABLE_END
    start, stop = text.index(begin), text.index(end) + len(end)
    assert text[start:stop] == deploy_config.settings_table(), (
        "run `python -m infra_cdk.config` into docs/configuration.md"
    )


def test_the_qa_task_input_takes_arguments_over_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRTRACE_TRACE_ID", "tr_env")
    monkeypatch.setenv("PRTRACE_BASE_KEY", "k")
    monkeypatch.setenv("PRTRACE_BASE_SIZE", "12")
    task = QATaskInput.from_env(trace_id="tr_arg")
    assert task.trace_id == "tr_arg"
    snapshot = task.snapshot("base")
    assert snapshot is not None
    assert snapshot["ref"] == {
        "uri": "artifact://sha256/",
        "sha256": "",
        "size": 12,
        "media_type": "application/x-tar",
    }
    assert task.snapshot("final") is None
    monkeypatch.setenv("PRTRACE_FINAL_SIZE", "big")
    with pytest.raises(ConfigurationError, match="PRTRACE_FINAL_SIZE"):
        QATaskInput.from_env()


def test_qa_paths_come_from_the_qa_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRTRACE_QA_CACHE_DIR", "/srv/qa-cache")
    monkeypatch.setenv("PRTRACE_QA_PYTHON", "/opt/python3")
    settings = QASettings.from_env(backend="container")
    assert str(settings.cache_dir) == "/srv/qa-cache"
    from prtrace.adapters.sandbox.select import build_sandbox
    from prtrace.qa.runner_site import cache_root

    assert cache_root(settings.cache_dir) == settings.cache_dir
    sandbox, _ = build_sandbox(settings)
    assert sandbox.paths(*(settings.cache_dir,) * 4).python == "/opt/python3"


def test_every_variable_is_documented_once_with_its_readers() -> None:
    table = rows()
    assert table["PRTRACE_BUCKET"]["used_by"][:2] == ["API", "Assemble"]
    assert "Judge" in table["PRTRACE_BUCKET"]["used_by"]
    assert table["OPENAI_API_KEY"]["used_by"] == ["Judge"]
    assert table["PRTRACE_QA_MEMORY_MB"]["default"] == "`2048`"
    assert all(name.isupper() for name in table)


def test_errors_name_the_variables_and_never_the_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRTRACE_JUDGE_SAMPLES", "secret-looking-value-123")
    monkeypatch.setenv("PRTRACE_QA_PIDS", "-4")
    with pytest.raises(ConfigurationError) as judge:
        JudgeSettings.from_env()
    assert "PRTRACE_JUDGE_SAMPLES" in str(judge.value)
    assert "secret-looking-value-123" not in str(judge.value)
    with pytest.raises(ConfigurationError, match="PRTRACE_QA_PIDS"):
        QASettings.from_env()


def test_missing_required_variables_are_all_named(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TRACES_TABLE", "TOKENS_TABLE", "IDEMPOTENCY_TABLE", "BUCKET"):
        monkeypatch.delenv(f"PRTRACE_{name}", raising=False)
    with pytest.raises(ConfigurationError) as missing:
        Settings.from_env()
    for name in ("TRACES_TABLE", "TOKENS_TABLE", "IDEMPOTENCY_TABLE", "BUCKET"):
        assert f"PRTRACE_{name} (Field required)" in str(missing.value)


def test_empty_variables_take_the_defaults_and_overrides_win(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRTRACE_JUDGE_MODEL", "")
    monkeypatch.setenv("PRTRACE_JUDGE_TEMPERATURE", "none")
    monkeypatch.setenv("PRTRACE_QA_RERUNS", "1")
    judge = JudgeSettings.from_env()
    assert judge.model == "gpt-4.1-mini"
    assert judge.temperature is None
    assert QASettings.from_env(reruns=3).reruns == 3
