"""Recording a bug-fixing session from a git working tree, the one home of it: the session
(session.py: workspace snapshots, file-edit diffs, command and test runs, notes and commits,
journaled through the outbox; with edits.py, snapshot.py, pytest_results.py, issues.py), the
session's recorder process (daemon.py), its versioned socket protocol (protocol.py), the
direct path a front end takes when that process does not answer (direct.py) and the shell
integration (shell.py).

Front ends (the `prtrace` CLI, an editor extension) talk to the recorder process through
protocol.py only, and import nothing of this package on their fast path but that module,
which imports only built-in modules. Nothing here imports the CLI."""
