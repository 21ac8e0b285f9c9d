"""repo/ is the buggy repository the held-out sessions start from: its tests are data
(one of them fails on purpose), run by QA in the sandbox, never by this suite."""

collect_ignore = ["repo"]
