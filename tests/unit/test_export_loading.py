"""Every file of an export loads the way a researcher loads it: Hugging Face `datasets`
(the export directory with its card, and the json and parquet builders), pandas, pyarrow
and DuckDB. `datasets` is the strict one: it mistakes `{type, payload}` rows for other
tools' agent traces, and it types a JSON column from the file's first chunk, so a column
null all through it fails later: the card declares every column's type."""

from __future__ import annotations

from pathlib import Path

import datasets
import orjson
import pytest

from prtrace.dataset.card import EVENT_FEATURES, INSTANCE_FEATURES, TRAJECTORY_FEATURES
from prtrace.dataset.files import write_export
from prtrace.dataset.rows import ExportFilter, event_rows, swebench_instance
from prtrace.dataset.trajectory import trajectory
from tests.judge_factories import document, sample_events
from tests.unit.test_dataset import _stand_in_result, usable_bundle, with_base
from tests.unit.test_trajectory import STORED, session_events


def three_traces():
    """A trace without a stand-in judge and with no rename, then one with both: the
    later rows fill columns that are null all through the first."""
    first = usable_bundle()
    events = sample_events()
    events.append(
        {"event_id": "evt-rename", "seq": len(events), "ts": "2026-11-25T09:30:00.000Z",
         "type": "file_edit", "payload": {"path": "ranges/new.py", "change": "rename",
         "old_path": "ranges/old.py", "diff": "", "lines_added": 0, "lines_removed": 0}}
    )  # fmt: skip
    later = usable_bundle(
        document=with_base(document(events, trace_id="tr_zlater"), False),
        judge_result=_stand_in_result().model_copy(update={"trace_id": "tr_zlater"}),
    )
    # Every event type, outputs stored as artifacts: the trajectories' observations.
    outputs = usable_bundle(document=with_base(document(session_events(), "tr_outputs"), False))
    return [first, outputs, later]


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "out"
    write_export(
        three_traces(),
        out,
        chosen=ExportFilter(include_unusable=True),
        read_artifact=lambda _trace, sha256: STORED.get(sha256),
    )
    return out


def rows(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_the_declared_types_name_every_column_the_files_hold(export):
    """The card's types and the rows cannot drift apart."""
    bundle = usable_bundle()
    assert list(swebench_instance(bundle)) == list(INSTANCE_FEATURES)
    assert list(next(iter(event_rows(bundle.document)))) == list(EVENT_FEATURES)
    assert list(trajectory(bundle, lambda _: None).record) == list(TRAJECTORY_FEATURES)
    for name, declared in (("instances.jsonl", INSTANCE_FEATURES),
                           ("events.jsonl", EVENT_FEATURES)):  # fmt: skip
        assert all(sorted(row) == sorted(declared) for row in rows(export / name))


@pytest.mark.parametrize("config", ["instances", "events", "trajectories", "artifacts"])
def test_the_export_directory_loads_with_datasets_in_small_chunks(export, config, tmp_path):
    """Chunks of 1 KiB: the later rows' values meet the types the card declares, not
    types guessed from the first rows (which fails when they are null there)."""
    loaded = datasets.load_dataset(
        str(export), config, split="full", cache_dir=str(tmp_path), chunksize=1024
    )
    on_disk = rows(export / f"{config}.jsonl")
    assert loaded.num_rows == len(on_disk) > 0
    if config == "events":
        renamed = [row for row in loaded if row["change"] == "rename"]
        assert [row["old_path"] for row in renamed] == ["ranges/old.py"]
    if config == "instances":
        assert [row["judge_stand_in"] for row in loaded] == [None, None, "offline-heuristic v1"]
        assert loaded[0]["FAIL_TO_PASS"] == on_disk[0]["FAIL_TO_PASS"]


@pytest.mark.parametrize("name", ["instances.jsonl", "events.jsonl", "trajectories.jsonl"])
def test_each_jsonl_file_loads_with_the_json_builder(export, name, tmp_path):
    """As most users call it; not taken for another tool's agent-trace format."""
    loaded = datasets.load_dataset(
        "json", data_files=str(export / name), split="train", cache_dir=str(tmp_path)
    )
    assert loaded.num_rows == len(rows(export / name))


@pytest.mark.parametrize("name", ["events.parquet", "traces.parquet"])
def test_each_parquet_file_loads_with_the_parquet_builder(export, name, tmp_path):
    loaded = datasets.load_dataset(
        "parquet", data_files=str(export / name), split="train", cache_dir=str(tmp_path)
    )
    assert (
        loaded.num_rows
        == orjson.loads((export / "manifest.json").read_bytes())["files"][name]["rows"]
    )


def test_pandas_pyarrow_and_duckdb_read_every_file(export):
    import duckdb
    import pandas as pd
    import pyarrow.json as pajson
    import pyarrow.parquet as pq

    manifest = orjson.loads((export / "manifest.json").read_bytes())
    for name, entry in manifest["files"].items():
        path = export / name
        if name.endswith(".jsonl"):
            assert len(pd.read_json(path, lines=True)) == entry["rows"]
            options = pajson.ReadOptions(block_size=1 << 24)
            assert pajson.read_json(path, read_options=options).num_rows == entry["rows"]
            query = f"SELECT count(*) FROM read_json_auto('{path}', maximum_object_size=1e8)"  # noqa: S608
        elif name.endswith(".parquet"):
            assert len(pd.read_parquet(path)) == pq.read_metadata(path).num_rows == entry["rows"]
            query = f"SELECT count(*) FROM read_parquet('{path}')"  # noqa: S608
        else:
            continue
        assert duckdb.sql(query).fetchall() == [(entry["rows"],)]


def test_the_card_says_what_the_export_holds(export):
    card = (export / "README.md").read_text()
    manifest = orjson.loads((export / "manifest.json").read_bytes())
    assert card.startswith("---\nlicense: other\n")
    assert f"{manifest['trace_count']} traces" in card
    assert "config_name: instances" in card
    assert "dataset_info:" in card
    assert manifest["files"]["README.md"]["sha256"]
