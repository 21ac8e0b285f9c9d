"""The dataset card of an export (`README.md`): what the files hold, how they were
collected, their provenance and terms, and how to load them. Hugging Face reads the YAML
header (configs: which file is which subset); people read the rest.

Built from the manifest alone, so it is as deterministic as the files it describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

from prtrace.dataset.rows import EVENT_COLUMN_TYPES
from prtrace.judge.rubric import DIMENSION_IDS

# Column types of the JSON Lines files, declared in the card (`dataset_info`): `datasets`
# infers a JSON file's types from its first 10 MiB, and a column that is null all through
# them (a rename's `old_path`, a stand-in judge) would stop a larger file loading. A type
# is a `datasets` dtype, [type] a list of it, {name: type} a struct.
Spec = str | list[Any] | dict[str, Any]
_TEXT, _INT, _FLOAT, _BOOL = "string", "int64", "float64", "bool"
_TESTS: Final = [_TEXT]
INSTANCE_FEATURES: Final[dict[str, Spec]] = {
    "instance_id": _TEXT, "repo": _TEXT, "base_commit": _TEXT, "patch": _TEXT,
    "test_patch": _TEXT, "problem_statement": _TEXT, "hints_text": _TEXT,
    "created_at": _TEXT, "version": _TEXT, "environment_setup_commit": _TEXT,
    "image": _TEXT,
    "install_recipe": {
        "backend": _TEXT, "pytest_version": _TEXT, "pytest_source": _TEXT,
        "workspace_install": _TEXT, "dependency_sources": [_TEXT], "install_detail": _TEXT,
        "dependencies_missing": _BOOL,
    },
    "eval_script": _TEXT, "eval_script_reason": _TEXT, "log_parser": _TEXT,
    "eval_type": _TEXT, "harness_unreadable_tests": _TESTS,
    "FAIL_TO_PASS": _TESTS, "PASS_TO_PASS": _TESTS,
    "trace_id": _TEXT, "chain_head": _TEXT, "repo_url": _TEXT, "patch_source": _TEXT,
    "test_patch_source": _TEXT, "qa_verdict": _TEXT, "qa_target_tests": _TESTS,
    "qa_target_source": _TEXT, "qa_unresolved_targets": _TESTS, "qa_resolution": _TEXT,
    "qa_verdict_reason": _TEXT, "qa_flags": _TESTS, "qa_tamper_flags": _TESTS,
    "judge_status": _TEXT, "judge": _TEXT, "judge_overall": _FLOAT,
    "judge_stand_in": _TEXT, "judge_stand_in_overall": _FLOAT,
    "judge_scores": dict.fromkeys(DIMENSION_IDS, _INT),
    "state_check": _TEXT, "state_first_mismatch": _TEXT, "state_unexplained_bytes": _INT,
    "trace_manifest_sha256": _TEXT, "trace_manifest_key_id": _TEXT, "base_dirty": _BOOL,
    "split": _TEXT, "usable": _BOOL, "unusable_reasons": _TESTS,
}  # fmt: skip
EVENT_FEATURES: Final[dict[str, Spec]] = dict(EVENT_COLUMN_TYPES)
TRAJECTORY_FEATURES: Final[dict[str, Spec]] = {
    "version": _TEXT, "trace_id": _TEXT, "instance_id": _TEXT, "repo": _TEXT,
    "base_commit": _TEXT, "problem_statement": _TEXT,
    "steps": [{
        "step": _INT, "seq": _INT, "event_id": _TEXT, "ts": _TEXT, "type": _TEXT,
        "action": _TEXT, "observation": _TEXT, "action_truncated": _BOOL,
        "observation_truncated": _BOOL, "observation_missing": _TEXT, "artifacts": _TEXT,
    }],
    "qa": _TEXT, "judge": _TEXT, "integrity": _TEXT, "artifacts": _TEXT,
    "messages": [{
        "role": _TEXT, "content": _TEXT, "tool_call_id": _TEXT,
        "tool_calls": [{"id": _TEXT, "type": _TEXT,
                        "function": {"name": _TEXT, "arguments": _TEXT}}],
    }],
}  # fmt: skip
ARTIFACT_FEATURES: Final[dict[str, Spec]] = {
    "sha256": _TEXT,
    "size": _INT,
    "encoding": _TEXT,
    "content": _TEXT,
}
_JSONL_FEATURES: Final[dict[str, Mapping[str, Spec]]] = {
    "instances": INSTANCE_FEATURES,
    "trajectories": TRAJECTORY_FEATURES,
    "events": EVENT_FEATURES,
    "artifacts": ARTIFACT_FEATURES,
}


def features_yaml(features: Mapping[str, Spec], indent: str) -> list[str]:
    """`datasets`' YAML for the features (Features._to_yaml_list's layout)."""
    lines: list[str] = []
    for name, spec in features.items():
        lines.append(f"{indent}- name: {name}")
        lines += _type_yaml(spec, indent + "  ")
    return lines


def _type_yaml(spec: Spec, indent: str) -> list[str]:
    if isinstance(spec, str):
        return [f"{indent}dtype: {spec}"]
    if isinstance(spec, dict):
        return [f"{indent}struct:", *features_yaml(spec, indent)]
    (item,) = spec
    if isinstance(item, str):
        return [f"{indent}list: {item}"]
    if isinstance(item, dict):
        return [f"{indent}list:", *features_yaml(item, indent)]
    raise ValueError(f"unsupported feature type {spec!r}")


# file -> (config name, what one row is)
_CONFIGS: Final = (
    ("instances.jsonl", "instances", "a SWE-bench-style task instance, one per trace"),
    ("trajectories.jsonl", "trajectories", "a trace as steps: action, observation, chat messages"),
    ("events.jsonl", "events", "an event, typed columns plus its whole payload"),
    ("traces.parquet", "traces", "a trace: QA verdict, test lists, judge scores, metrics"),
    ("events.parquet", "events_parquet", "an event, as in events.jsonl, with a parsed time"),
    ("artifacts.jsonl", "artifacts", "an artifact a trajectory cites, by its SHA-256"),
)


def dataset_card(manifest: dict[str, Any]) -> str:
    """The card for the export `manifest` describes (its files, counts and filter)."""
    files = manifest["files"]
    configs = [(name, config, row) for name, config, row in _CONFIGS if name in files]
    header = ["---", "license: other", "pretty_name: prtrace bug-fixing sessions"]
    header += ["task_categories:", "- text-generation", "tags:", "- code", "- swe-bench"]
    header.append("configs:")
    for name, config, _ in configs:
        header += [
            f"- config_name: {config}",
            "  data_files:",
            "  - split: full",
            f"    path: {name}",
        ]
    header.append("dataset_info:")
    for _, config, _ in configs:
        if config in _JSONL_FEATURES:  # Parquet files carry their own schema
            declared = dict(_JSONL_FEATURES[config])
            if config == "instances" and manifest.get("test_lists") == "json-strings":
                declared |= {"FAIL_TO_PASS": _TEXT, "PASS_TO_PASS": _TEXT}
            header += [f"- config_name: {config}", "  features:"]
            header += features_yaml(declared, "  ")
    header.append("---")
    splits = manifest.get("splits") or {}
    filter_json = orjson.dumps(manifest["filter"], option=orjson.OPT_SORT_KEYS).decode()
    body = f"""
# prtrace bug-fixing sessions

Recorded developer bug-fixing sessions: the events of each session (file edits, commands,
test runs, commits, notes) as a hash-chained trace, the fix validated by running the
repository's tests in a sandbox before and after it, and the session scored by a judge on
a six-dimension rubric. Export format `{manifest["version"]}`.

## Contents

{manifest["trace_count"]} traces from {manifest.get("repository_count", 0)} repositories,
{manifest["event_count"]} events; {manifest.get("usable_count", 0)} instances are usable
(`usable: true`: a patch to code, the target tests QA's verdict used, no integrity flag, a
base that is `base_commit`'s tree).

| file | one row per | rows |
| --- | --- | --- |
""" + "".join(f"| `{name}` | {row} | {files[name]['rows']} |\n" for name, _, row in configs)
    body += f"""
`manifest.json` lists every file with its size and SHA-256, the filter the export used
and the traces it left out (and why). Each instance carries `trace_manifest_sha256` and
`trace_manifest_key_id`: the signed manifest of its trace on the service that recorded it.

## Splits

Deterministic by repository (`split` on instances and `traces.parquet`: every instance of
a repository is in the same split, in every export): {_splits(splits)}. Take one with
`dataset.filter(lambda row: row["split"] == "test")`.

## How it was collected

Developers (`author_kind`: human or agent) recorded their own sessions with the prtrace
recorder, which redacts secrets before anything leaves their machine. Each instance's
`patch` is the diff between the workspace snapshots QA tested, `FAIL_TO_PASS` and
`PASS_TO_PASS` come from QA's runs, `qa_flags` say where the fix may have gamed its tests,
and `judge_scores` are the judge's (`judge` names it; an offline stand-in is labelled).
`test_patch` holds the session's own test changes, not tests written independently of the
fix. Filter: `{filter_json}`. Test lists are encoded as `{manifest.get("test_lists", "lists")}`.

## Licensing and consent

The code in patches and diffs is each repository's, under that repository's license
(`repo`, `repo_url`); check it before redistributing. The sessions are the recording
tenant's, exported by it; authors are identified by the id they recorded under
(`author_id`). License: `other` until the exporting tenant states one.

## Loading

```python
from datasets import load_dataset
instances = load_dataset("path/to/this/export", "instances", split="full")
```

Loading the directory (or a hub repository holding it) uses the column types declared
above. `load_dataset("json", data_files="instances.jsonl")` works too, but `datasets`
then guesses the types from the first 10 MiB of the file, and a larger file whose first
10 MiB leave a column null fails: load the directory instead. Parquet files load with
`load_dataset("parquet", ...)`, pandas, pyarrow or DuckDB.
"""
    return "\n".join(header) + "\n" + body


def _splits(splits: dict[str, int]) -> str:
    if not splits:
        return "no instances"
    return ", ".join(f"{name} {count}" for name, count in sorted(splits.items()))
