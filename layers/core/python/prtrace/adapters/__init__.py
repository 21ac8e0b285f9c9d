"""Storage and secret adapters behind the interfaces in prtrace.ports."""
