"""Datasets from complete traces: the rows (rows.py: SWE-bench instances, events, traces),
the export files (files.py) and what goes in them (collect.py), server-side exports
(exports.py, job.py), and the Parquet traces table Record writes (trace_table.py,
parquet_lite.py).

Imports the shared ground and the stages whose products it exports: assemble, qa, judge,
provenance (an export's signed manifest)."""
