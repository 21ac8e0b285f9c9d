"""`prtrace export`'s writer on a client: time per trace and peak memory, each case in a
fresh process so its peak is its own.

  traces       1,000 complete traces of 44 events (the example trace's events, repeated)
  long trace   one trace of 100,000 events

Every format (instances, trajectories, events JSONL and both Parquet tables), read from
an in-memory source holding each document as the API serves it (bytes), through
`prtrace.dataset.collect` and `prtrace.dataset.files.write_export`: the code `prtrace
export` runs. The source's own bytes are counted in the peak (as the API client's
response buffer would be); `*_source_mb` says how much that is. So is pandas where it is
installed (the dev environment): pyarrow imports it on its first conversion, ~45 MB; the
export job's image has no pandas.

`run()` returns flat keys with units in their names; `python -m bench.export_memory`
prints them.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
CASES = {"traces": (1_000, 44), "long_trace": (1, 100_000)}


def _event(template: list[dict[str, Any]], seq: int) -> dict[str, Any]:
    """Event `seq`: the example trace's, repeated with fresh ids, seqs and times."""
    minute, second = divmod(seq, 60)
    return template[seq % len(template)] | {
        "seq": seq,
        "event_id": f"evt-{seq:08d}",
        "ts": f"2026-11-25T{9 + minute // 60 % 12:02d}:{minute % 60:02d}:{second:02d}.000Z",
    }


def _header(trace_id: str, count: int) -> dict[str, Any]:
    """A document's fields but its events: the example trace's metadata and metrics."""
    from tests.judge_factories import document, sample_events

    header = document(sample_events(), trace_id=trace_id).model_dump(mode="json", exclude_none=True)
    del header["events"]
    header["chain"]["length"] = count
    return header


def _document_bytes(header: dict[str, Any], count: int, template: list[dict[str, Any]]) -> bytes:
    """A document of `count` events as the API serves it, written a piece at a time: no
    100,000-event model or list is ever held here, so the peak measures the export."""
    head, _, tail = orjson.dumps(header | {"events": []}).partition(b'"events":[]')
    out = io.BytesIO()
    out.write(head + b'"events":[')
    for seq in range(count):
        out.write(b"," if seq else b"")
        out.write(orjson.dumps(_event(template, seq)))
    out.write(b"]" + tail)
    return out.getvalue()


def _child(case: str, sizes: tuple[int, int] | None = None) -> dict[str, Any]:
    import gc

    from bench.memory import peak_rss_mb
    from prtrace.dataset.collect import collect
    from prtrace.dataset.files import write_export
    from prtrace.dataset.rows import ExportFilter
    from tests.judge_factories import qa_report, sample_events
    from tests.pipeline_factories import judge_result

    traces, per_trace = sizes or CASES[case]
    template, header = sample_events(), _header("tr_template", per_trace)
    documents: dict[str, bytes] = {}
    for n in range(traces):
        trace_id = f"tr_{n:026d}"
        documents[trace_id] = _document_bytes(header | {"trace_id": trace_id}, per_trace, template)
    del template, header
    reports = {t: qa_report("resolved", trace_id=t).model_dump_json().encode() for t in documents}
    judged = {t: judge_result(t).model_dump_json().encode() for t in documents}

    class Source:
        def iter_views(self) -> Any:
            for trace_id in documents:
                yield {"trace_id": trace_id, "status": "complete",
                       "created_at": "2026-11-25T09:00:00.000Z", "outcome": {}}  # fmt: skip

        def result(self, trace_id: str, kind: str) -> bytes | None:
            store = {"document": documents, "qa-report": reports, "judge-result": judged}
            return store[kind][trace_id]

        def artifact(self, trace_id: str, sha256: str) -> bytes:
            return b"collected 6 items\n1 failed, 5 passed\n"

    gc.collect()
    source_mb = sum(map(len, documents.values())) / 2**20
    before_mb = peak_rss_mb()
    chosen = ExportFilter(include_unusable=True)  # no snapshots here: no patch
    with tempfile.TemporaryDirectory(prefix="prtrace-bench-export-") as scratch:
        started = time.perf_counter()
        selection = collect(Source(), chosen)
        manifest = write_export(
            selection,
            Path(scratch) / "out",
            chosen=chosen,
            read_artifact=selection.read_artifact,
        )
        elapsed = time.perf_counter() - started
    assert manifest["event_count"] == traces * per_trace, manifest["event_count"]
    return {
        f"export_{case}_count": traces,
        f"export_{case}_events": manifest["event_count"],
        f"export_{case}_s": round(elapsed, 2),
        f"export_{case}_ms_per_trace": round(elapsed * 1000 / traces, 2),
        f"export_{case}_source_mb": round(source_mb, 1),
        f"export_{case}_peak_rss_before_mb": round(before_mb, 1),
        f"export_{case}_peak_rss_mb": round(peak_rss_mb(), 1),
    }


def run() -> dict[str, float]:
    results: dict[str, float] = {}
    for case, (traces, per_trace) in CASES.items():  # sizes passed on: a test shrinks them
        argv = [sys.executable, "-m", "bench.export_memory", "--child", case]
        done = subprocess.run(  # noqa: S603 - this module, by this interpreter
            [*argv, str(traces), str(per_trace)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        results |= json.loads(done.stdout.strip().splitlines()[-1])
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        sizes = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 4 else None
        print(json.dumps(_child(sys.argv[2], sizes)))
    else:
        from rich.console import Console

        Console().print(run())
