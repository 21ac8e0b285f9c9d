"""Ingestion: a trace opened, its chunks verified (MAC, schema, seq continuity) and stored
write-once, and finalized (service.py); a chunk's body read and checked (chunks.py).

Imports only the shared ground (prtrace.schema, .ports, .records, ...)."""
