"""QA: validate a fix by running the repository's tests before and after, in a sandbox."""
