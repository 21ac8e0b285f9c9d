"""The Assemble step of the pipeline: verify a finalized trace and write its document
(service.py), why a trace is rejected (rejection.py), the storage it needs (ports.py)."""
