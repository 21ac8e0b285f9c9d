"""QA: validate a fix by running the repository's tests before and after, in a sandbox.

Imports the shared ground and assemble (the document it tests); the sandbox backends are
adapters behind qa/ports.py and qa/sandbox.py."""
