"""Canonical JSON (RFC 8785, JCS) for everything trace schema v1 admits.

RFC 8785 fixes key order (UTF-16 code units), string escaping and number formatting.
orjson with sorted keys produces exactly those bytes as long as every key is ASCII (code
point order then equals UTF-16 order) and every number is an integer below 2**53 (no float
formatting). The schema guarantees both; tests/unit/test_canonical.py proves byte equality
against the reference `rfc8785` package with hypothesis. Anything else is refused here
rather than silently canonicalized wrong.
"""

from __future__ import annotations

from typing import Any

import orjson

_MAX_SAFE_INT = 2**53 - 1


class NotCanonicalizable(ValueError):
    """The value is outside the subset where the fast path equals RFC 8785."""


def canonical_json(value: Any) -> bytes:
    """RFC 8785 bytes of a JSON value built from dict/list/str/int/bool/None."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise NotCanonicalizable(str(exc)) from exc


def check_canonicalizable(value: Any, pointer: str = "") -> None:
    """Walk a value and raise if the fast path could differ from RFC 8785.

    Not on the hot path: schema-validated events cannot fail it. Used by tests and by
    callers that canonicalize data the schema did not shape.
    """
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise NotCanonicalizable(f"{pointer or '/'}: integer beyond 2**53")
        return
    if isinstance(value, float):
        raise NotCanonicalizable(f"{pointer or '/'}: floats are not allowed")
    if isinstance(value, list):
        for index, item in enumerate(value):
            check_canonicalizable(item, f"{pointer}/{index}")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise NotCanonicalizable(f"{pointer or '/'}: keys must be ASCII strings")
            check_canonicalizable(item, f"{pointer}/{key}")
        return
    raise NotCanonicalizable(f"{pointer or '/'}: {type(value).__name__} is not JSON")
