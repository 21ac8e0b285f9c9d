"""`make bench`: the speed and memory figures (run.py prints the table and writes
bench-results.json, flat keys with units in their names), one module per subject."""
