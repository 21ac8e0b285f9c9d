"""Recording a bug-fixing session from a git working tree: workspace snapshots, file-edit
diffs, command and test runs, notes and commits, journaled through the outbox."""
