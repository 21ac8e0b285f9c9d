"""Sandbox backends for QA runs: `bwrap`, `docker`, `container` (prtrace.qa.sandbox)."""
