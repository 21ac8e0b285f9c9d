"""The Assemble step of the pipeline: verify a finalized trace and write its document
(service.py, document.py), the metrics computed over its events (metrics.py), why a trace
is rejected (rejection.py), the storage it needs (ports.py).

Imports the shared ground, ingest and provenance."""
