"""The `prtrace` command line."""
