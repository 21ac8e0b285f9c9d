"""Trace-derived text as data in the judge's prompt: nothing a trace holds can start a line
of the prompt's own (a heading, a verdict, an instruction).

- One-line values (titles, test ids, paths, flag details, commands, commit subjects) are
  JSON-style string literals: quotes, backslashes, line breaks, control and format
  characters (and the Unicode line and paragraph separators) escaped.
- Free text (notes, commit bodies, diffs) sits in a backtick fence longer than any run of
  backticks inside it, so it cannot close its fence; its control and format characters
  other than newline and tab are escaped too.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Final

# Cc: control characters (C0, DEL, C1 with NEL), Cf: format (bidi overrides, zero-width),
# Zl/Zp: line and paragraph separators, Cs: lone surrogates (not encodable).
_ESCAPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_NON_ASCII: Final = re.compile(r"[\x7f-\U0010ffff]")
_UNSAFE_IN_FREE_TEXT: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\U0010ffff]")
_BACKTICKS: Final = re.compile(r"`+")
MIN_FENCE: Final = 3


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _escape_unsafe(match: re.Match[str]) -> str:
    char = match.group()
    if char < "\x7f" or unicodedata.category(char) in _ESCAPED_CATEGORIES:
        return _escape(char)
    return char


def quote(text: str, max_chars: int) -> str:
    """`text` as one string literal, cut to `max_chars` characters of the original (the
    cut is said after the closing quote)."""
    cut = len(text) - max_chars
    literal = json.dumps(text[:max_chars] if cut > 0 else text, ensure_ascii=False)
    literal = _NON_ASCII.sub(_escape_unsafe, literal)
    return f"{literal}(+{cut:,} chars)" if cut > 0 else literal


def free_text(text: str) -> str:
    """Multi-line text with its line breaks kept as "\\n" only; other control and format
    characters escaped."""
    return _UNSAFE_IN_FREE_TEXT.sub(_escape_unsafe, text.replace("\r\n", "\n"))


def fence_for(text: str) -> str:
    """A backtick fence no run of backticks in `text` can close."""
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
    return "`" * max(MIN_FENCE, longest + 1)


def fenced(text: str, info: str = "text") -> str:
    """`text` (already made safe with `free_text`) in a fence of its own."""
    fence = fence_for(text)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"
