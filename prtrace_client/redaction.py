"""Client-side secret redaction: nothing that looks like a credential leaves the machine.

Every match is replaced by `[REDACTED:<kind>:sha256=<hex>]`, the SHA-256 of the original
secret, so a reviewer can tell two redacted values apart (and a key owner can confirm which
key leaked) without the value itself being stored. Where a credential sits after a name
(`password=…`, `Authorization: Bearer …`, `user:pass@host`) only the value is replaced and
the name stays readable.

Patterns are precompiled once and run in order, most specific first; markers never match a
later pattern, so redacting twice changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Final

MARKER_PATTERN: Final = re.compile(r"\[REDACTED:[a-z0-9-]+:sha256=[0-9a-f]{64}\]")


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    # The group holding the secret; 0 is the whole match.
    group: int | str = 0


def _rule(kind: str, pattern: str, group: int | str = 0, flags: int = 0) -> Rule:
    return Rule(kind, re.compile(pattern, flags), group)


# A value after `name=`: quoted anything, or unquoted text that is not code (a call, an
# index, a variable) nor a placeholder. Unquoted values must hold a digit or a symbol, so
# `password = user_password` in source code stays readable.
_ASSIGNED_NAME = (
    r"[A-Za-z0-9_.-]*(?:passw(?:or)?d|pwd|secret|api[_-]?key|apikey|access[_-]?token|"
    r"auth[_-]?token|private[_-]?key|client[_-]?secret)[A-Za-z0-9_.-]*"
)
_PLACEHOLDER = r"(?!(?:none|null|true|false|changeme|xxx+|\*+|<[^>]*>)\b)"

RULES: Final[tuple[Rule, ...]] = (
    _rule(
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
        r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        flags=re.DOTALL,
    ),
    _rule(
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    _rule(
        "aws-access-key-id",
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA|ABIA|ACCA)[0-9A-Z]{16}\b",
    ),
    _rule(
        "aws-secret-key",
        r"(?i:aws[A-Za-z0-9_.-]{0,20}secret[A-Za-z0-9_.-]{0,20})[\"']?\s*[:=]\s*[\"']?"
        r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        group="secret",
    ),
    _rule("github-token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"),
    _rule("gitlab-token", r"\bgl(?:pat|dt|ptt|rt)-[A-Za-z0-9_-]{20,}"),
    _rule("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    _rule(
        "slack-webhook",
        r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+",
    ),
    _rule("openai-key", r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"),
    _rule("stripe-key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    _rule("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}"),
    _rule(
        "bearer-token",
        r"(?i:\bbearer)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)",
        group="secret",
    ),
    _rule(
        "url-password",
        r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\[\]]+:(?P<secret>[^\s@/\[\]]+)@",
        group="secret",
    ),
    _rule(
        "assigned-secret",
        rf"(?i:\b{_ASSIGNED_NAME})[\"']?\s*[:=]\s*"
        rf"(?:(?P<quote>[\"']){_PLACEHOLDER}(?P<quoted>[^\"'\s\[]{{4,}})(?P=quote)"
        rf"|{_PLACEHOLDER}(?P<bare>(?=[^\s\"',;()\[\]{{}}$<>]*[0-9!@#%^&*+/=~-])"
        rf"[^\s\"',;()\[\]{{}}$<>]{{6,}}))",
    ),
)


@dataclass(frozen=True)
class Redacted:
    text: str
    count: int
    kinds: tuple[str, ...] = ()


def marker(kind: str, secret: str) -> str:
    digest = hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()
    return f"[REDACTED:{kind}:sha256={digest}]"


def redact(text: str) -> Redacted:
    """`text` with every credential replaced by its marker, and how many were replaced."""
    kinds: list[str] = []
    for rule in RULES:
        text = _apply(rule, text, kinds)
    return Redacted(text, len(kinds), tuple(kinds))


def _apply(rule: Rule, text: str, kinds: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if rule.kind == "assigned-secret":
            group: int | str = "quoted" if match.group("quoted") is not None else "bare"
        else:
            group = rule.group
        start, end = match.span(group)
        whole_start, whole_end = match.span()
        kinds.append(rule.kind)
        source = match.string
        return (
            source[whole_start:start]
            + marker(rule.kind, match.group(group))
            + source[end:whole_end]
        )

    # Markers already in the text are left whole: `…:sha256=<hex>]` must not read as an
    # assignment to redact again.
    pieces: list[str] = []
    done = 0
    for existing in MARKER_PATTERN.finditer(text):
        pieces.append(rule.pattern.sub(replace, text[done : existing.start()]))
        pieces.append(existing.group())
        done = existing.end()
    pieces.append(rule.pattern.sub(replace, text[done:]))
    return "".join(pieces)


def redact_bytes(data: bytes) -> tuple[bytes, int]:
    """Redact command output, which may not be UTF-8: undecodable bytes pass through."""
    result = redact(data.decode("utf-8", "surrogateescape"))
    return result.text.encode("utf-8", "surrogateescape"), result.count
