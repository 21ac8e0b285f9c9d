"""The judge's calibration set: labelled sessions of one bug (examples/repo-buggy), each
paired with the real QA report of the tree it ends in (sessions.py, reports/)."""
