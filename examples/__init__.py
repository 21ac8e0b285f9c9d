"""`make demo` (demo.py: the example trace through the whole pipeline on the local cloud)
and the sample sessions, repositories and judge inputs the demo, the tests and the
benchmarks share."""
