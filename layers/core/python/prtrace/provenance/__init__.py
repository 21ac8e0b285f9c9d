"""Proof of what a trace is: the trace manifest, its signature and the published key set
(manifest.py), and the trace-to-state check, whether the recorded edits reproduce the
final snapshot (state_check.py).

Imports only the shared ground; the Record step completes and signs the manifest
(prtrace.pipeline.attestation)."""
