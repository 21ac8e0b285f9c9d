"""The export command: it names the formats the writer has (spelled out so `--help` stays
fast), leaves out traces with tamper flags unless `--include-flagged`, and says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import Result
from typer.testing import CliRunner

from prtrace_cli import export as command
from prtrace_cli.main import app
from prtrace_client import export as writer
from tests.unit.test_dataset import flagged_and_clean_source


def test_the_command_offers_exactly_the_writer_formats() -> None:
    assert command.FORMATS == writer.FORMATS


class _NoClient:
    """Stands in for PrtraceClient: the traces come from the source the test gives."""

    def __init__(self, *args: object) -> None:
        pass

    def __enter__(self) -> _NoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.fixture
def traces(monkeypatch: pytest.MonkeyPatch) -> None:
    """`prtrace export` reads tr_clean, tr_flagged (a tamper flag) and tr_noqa."""
    import prtrace_client

    source = flagged_and_clean_source()
    monkeypatch.setattr(prtrace_client, "PrtraceClient", _NoClient)
    monkeypatch.setattr(writer, "ApiTraceSource", lambda client: source)


def exported(out: Path, *args: str) -> tuple[Result, dict[str, Any]]:
    """Taking unusable instances too (these traces have no snapshots: no patch)."""
    command = ["export", str(out), "--format", "swebench", "--include-unusable", *args]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    return result, orjson.loads((out / "manifest.json").read_bytes())


def test_a_flagged_trace_is_left_out_by_default_and_named(traces: None, tmp_path: Path) -> None:
    result, manifest = exported(tmp_path / "out")
    assert manifest["trace_ids"] == ["tr_clean", "tr_noqa"]
    assert manifest["flagged_left_out"] == [
        {"trace_id": "tr_flagged", "flags": ["target_test_modified"]}
    ]
    assert "left out tr_flagged: tamper flags target_test_modified" in result.stderr
    assert "1 traces left out for tamper flags (--include-flagged takes them)" in result.stderr
    lines = (tmp_path / "out" / "instances.jsonl").read_bytes().splitlines()
    assert [orjson.loads(line)["trace_id"] for line in lines] == ["tr_clean", "tr_noqa"]


def test_unusable_instances_are_left_out_by_default_and_named(traces: None, tmp_path: Path) -> None:
    command = ["export", str(tmp_path / "out"), "--format", "swebench"]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output
    manifest = orjson.loads((tmp_path / "out" / "manifest.json").read_bytes())
    assert manifest["trace_ids"] == []
    assert [u["trace_id"] for u in manifest["unusable_left_out"]] == ["tr_clean", "tr_noqa"]
    assert "left out tr_noqa: not usable (no_patch, no_qa, base_unrecorded)" in result.stderr
    assert "2 traces left out as not usable (--include-unusable takes them)" in result.stderr


def test_include_flagged_takes_it_with_its_flags(traces: None, tmp_path: Path) -> None:
    result, manifest = exported(tmp_path / "out", "--include-flagged")
    assert manifest["trace_ids"] == ["tr_clean", "tr_flagged", "tr_noqa"]
    assert manifest["filter"]["include_flagged"] is True
    assert (manifest["flagged_left_out"], manifest["flagged_count"]) == ([], 1)
    assert "left out" not in result.stderr
    assert "1 exported traces have tamper flags (see qa_tamper_flags)" in result.stderr
    lines = (tmp_path / "out" / "instances.jsonl").read_bytes().splitlines()
    flagged = next(orjson.loads(x) for x in lines if b'"tr_flagged"' in x)
    assert flagged["qa_tamper_flags"] == ["target_test_modified"]
    assert flagged["test_patch_source"] == "none"  # no snapshots, no patch


def test_the_server_export_request_carries_include_flagged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from prtrace.dataset.exports import ExportRequest
    from prtrace.dataset.rows import ExportFilter
    from prtrace_cli import export as cli

    asked: list[dict[str, Any]] = []

    class Client:
        def start_export(self, request: dict[str, Any]) -> dict[str, Any]:
            asked.append(request)
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError):
        cli._export_on_server(
            Client(),  # type: ignore[arg-type]
            ExportFilter(include_flagged=True, include_unusable=True),
            ["swebench"],
            tmp_path,
            True,
        )
    with pytest.raises(RuntimeError):
        cli._export_on_server(Client(), ExportFilter(), ["swebench"], tmp_path, False)  # type: ignore[arg-type]
    flagged, default = asked
    assert (flagged["include_flagged"], flagged["include_unusable"]) == (True, True)
    assert flagged["string_test_lists"] is True
    request = ExportRequest.model_validate(flagged)
    assert request.to_filter().include_unusable is True
    assert request.string_test_lists
    for switch in ("include_flagged", "include_unusable", "string_test_lists"):
        assert switch not in default  # the defaults are not sent


def test_an_export_that_cannot_be_written_stops_before_reading_any_trace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Parquet without pyarrow (the client-only install), or a directory holding an earlier
    export: exit 2 with the reason, no trace read, nothing written."""
    import prtrace_client

    read: list[str] = []

    class Watched:
        def iter_views(self) -> Any:
            read.append("list")
            return iter(())

    monkeypatch.setattr(prtrace_client, "PrtraceClient", _NoClient)
    monkeypatch.setattr(writer, "ApiTraceSource", lambda client: Watched())
    monkeypatch.setitem(__import__("sys").modules, "pyarrow", None)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["export", str(out), "--format", "parquet"])
    assert result.exit_code == 2, result.output
    assert "pip install 'prtrace[export]'" in result.output
    assert not out.exists()
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    result = CliRunner().invoke(app, ["export", str(out), "--format", "swebench"])
    assert result.exit_code == 2, result.output
    assert "not empty" in result.output
    assert (out / "manifest.json").read_text() == "{}"
    assert read == []
