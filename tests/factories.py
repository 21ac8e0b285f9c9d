"""Builders for realistic, schema-valid trace data used by tests and benchmarks."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson


def blob_ref(content: bytes, media_type: str = "text/plain") -> dict[str, Any]:
    digest = hashlib.sha256(content).hexdigest()
    return {
        "uri": f"artifact://sha256/{digest}",
        "sha256": digest,
        "size": len(content),
        "media_type": media_type,
    }


def event(seq: int, kind: str = "", *, event_id: str | None = None) -> dict[str, Any]:
    """One event of a rotating mix of the five types, like a real session."""
    kind = kind or ("file_edit", "cmd_run", "test_run", "commit", "rationale_note")[seq % 5]
    ts = f"2026-11-25T09:{(seq // 60) % 60:02d}:{seq % 60:02d}.{seq % 1000:03d}Z"
    payload: dict[str, Any]
    if kind == "file_edit":
        payload = {
            "path": f"src/pkg/module_{seq % 17}.py",
            "change": "modify",
            "diff": f"@@ -{seq},2 +{seq},2 @@\n-    return a - b\n+    return a + b  # ünïcode ✓\n",
            "lines_added": 1,
            "lines_removed": 1,
        }
    elif kind == "cmd_run":
        payload = {
            "argv": ["python", "-m", "pytest", "-x", f"tests/test_{seq % 7}.py"],
            "cwd": "/workspace",
            "exit_code": seq % 2,
            "duration_ms": 1200 + seq,
            "stdout_ref": blob_ref(f"stdout {seq}".encode()),
        }
    elif kind == "test_run":
        payload = {
            "framework": "pytest",
            "command": ["pytest", "-q"],
            "passed": 41,
            "failed": seq % 3,
            "errors": 0,
            "skipped": 2,
            "failing_tests": [f"tests/test_math.py::test_add[{i}]" for i in range(seq % 3)],
            "duration_ms": 2100,
        }
    elif kind == "commit":
        payload = {
            "sha": hashlib.sha1(str(seq).encode(), usedforsecurity=False).hexdigest(),
            "message": "Fix off-by-one in range merge\n\nThe upper bound was exclusive.",
            "files": ["src/pkg/ranges.py", "tests/test_ranges.py"],
        }
    else:
        payload = {
            "kind": "hypothesis",
            "text": "merge() drops the last interval because the "
            "loop stops one short; a failing test should show it.",
        }
    return {
        "event_id": event_id or f"ev-{seq:07d}",
        "seq": seq,
        "ts": ts,
        "type": kind,
        "payload": payload,
    }


def events(start: int, count: int) -> list[dict[str, Any]]:
    return [event(seq) for seq in range(start, start + count)]


def chunk_body(start: int, count: int) -> bytes:
    return orjson.dumps({"events": events(start, count)})


def trace_metadata(title: str = "merge() drops the last interval") -> dict[str, Any]:
    return {
        "repository": {"url": "https://git.example.com/acme/ranges.git", "base_commit": "a" * 40},
        "task": {"title": title, "description": "Reported in ticket 42."},
        "author": {"id": "dev-7", "kind": "human"},
        "client": {"name": "prtrace-recorder", "version": "1.4.0"},
    }


def write_files(root: Path, files: dict[str, str]) -> Path:
    """`root` with each of `files` (relative path -> text) written, directories made."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root
