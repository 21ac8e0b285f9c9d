"""Client-side secret redaction: nothing that looks like a credential leaves the machine.

Every match is replaced by `[REDACTED:<kind>:hmac-sha256=<hex>]`, an HMAC-SHA256 of the
original secret under this installation's redaction key (created once, 0600, beside the
client's config file). A reviewer can tell two redacted values of one installation apart,
and whoever holds that key can confirm which secret leaked; without the key the marker says
nothing about the secret, so a weak password cannot be brute-forced from a stored trace.
When the key cannot be created (a read-only config directory) the marker carries no hash.

Where a credential sits after a name (`password=…`, `Authorization: Bearer …`,
`user:pass@host`) only the value is replaced and the name stays readable.

Patterns are precompiled once and run in order, most specific first; markers never match a
later pattern, so redacting twice changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from prtrace_client.config import default_config_path

# Older clients wrote a bare `sha256=`: their markers are still recognised (never redacted
# again, still counted), never produced.
MARKER_PATTERN: Final = re.compile(
    r"\[REDACTED:[a-z0-9-]+(?::(?:hmac-sha256|sha256)=[0-9a-f]{64})?\]"
)
KEY_FILE_NAME: Final = "redaction.key"
KEY_BYTES: Final = 32


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: re.Pattern[str]
    # The group holding the secret; 0 is the whole match.
    group: int | str = 0
    # The rule runs only on text holding one of these (in lower case when `folded`): a
    # substring test is far cheaper than a regex scan of a large command output.
    hints: tuple[str, ...] = ()
    folded: bool = False


def _rule(
    kind: str,
    pattern: str,
    group: int | str = 0,
    flags: int = 0,
    *,
    hints: tuple[str, ...] = (),
    folded: bool = False,
) -> Rule:
    return Rule(kind, re.compile(pattern, flags), group, hints, folded)


# A value after `name=`: quoted anything, or unquoted text that is not code (a call, an
# index, a variable) nor a placeholder. Unquoted values must hold a digit or a symbol, so
# `password = user_password` in source code stays readable. The scan starts at the keyword
# (`DB_PASSWORD` is found at `PASSWORD`): anchoring on the whole name would try every word.
_ASSIGNED_KEYWORD = (
    r"(?:passw(?:or)?d|pwd|secret|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|"
    r"private[_-]?key|client[_-]?secret)"
)
_FLAG_KEYWORD = (
    r"(?:passw(?:or)?d|pwd|pass|secret|api[_-]?key|apikey|token|access[_-]?token|"
    r"auth[_-]?token|private[_-]?key|client[_-]?secret)"
)
# A flag's value: not another flag, not a shell variable or placeholder, not a path to a file
# holding the secret (`--token-file` never matches the keyword's end anyway).
_FLAG_VALUE = (
    r"(?![-$<{]|(?:none|null|true|false|changeme|xxx+|\*+|stdin|-)(?:\s|$))"
    r"[^\s\"']{4,}"
)
# Values that are code, not secrets: an environment variable's name in quotes
# (`"api_key": "OPENAI_API_KEY"`) and an attribute read (`secret=token.secret_sha256`).
_ENV_NAME = r"(?![A-Z][A-Z0-9]*_[A-Z0-9_]*[\"'])"
_DOTTED_NAME = r"(?![A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:[\s,;)\]}]|$))"
_PLACEHOLDER = r"(?!(?:none|null|true|false|changeme|xxx+|\*+|<[^>]*>)\b|[^\s\"']*(?:…|\.\.\.))"
_AWS_KEY_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "AIPA", "ANPA", "ANVA", "ABIA", "ACCA")

RULES: Final[tuple[Rule, ...]] = (
    _rule(
        "private-key",
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
        r"-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----",
        flags=re.DOTALL,
        hints=("PRIVATE KEY",),
    ),
    _rule(
        "jwt",
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
        hints=("eyJ",),
    ),
    # An unlabelled secret key printed beside its key id (`AKIA… / <40 chars>`, a CSV row):
    # only the secret is replaced here, the key id by the next rule. A git SHA-1 (40 hex
    # digits) never matches: the secret must mix upper and lower case.
    _rule(
        "aws-secret-key",
        rf"\b(?:{'|'.join(_AWS_KEY_PREFIXES)})[0-9A-Z]{{16}}\b[^\n]{{0,40}}?"
        r"(?<![A-Za-z0-9/+])(?P<secret>(?=[A-Za-z0-9/+]{0,39}[A-Z])(?=[A-Za-z0-9/+]{0,39}[a-z])"
        r"[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])",
        group="secret",
        hints=_AWS_KEY_PREFIXES,
    ),
    _rule(
        "aws-access-key-id",
        rf"\b(?:{'|'.join(_AWS_KEY_PREFIXES)})[0-9A-Z]{{16}}\b",
        hints=_AWS_KEY_PREFIXES,
    ),
    _rule(
        "aws-secret-key",
        r"(?i:aws[A-Za-z0-9_.-]{0,20}secret[A-Za-z0-9_.-]{0,20})[\"']?\s*[:=]\s*[\"']?"
        r"(?P<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])",
        group="secret",
        hints=("secret",),
        folded=True,
    ),
    _rule(
        "github-token",
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
        hints=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
    ),
    _rule(
        "gitlab-token",
        r"\bgl(?:pat|dt|ptt|rt)-[A-Za-z0-9_-]{20,}",
        hints=("glpat-", "gldt-", "glptt-", "glrt-"),
    ),
    _rule("slack-token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", hints=("xox",)),
    _rule(
        "slack-webhook",
        r"https://hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+",
        hints=("hooks.slack.com",),
    ),
    _rule(
        "openai-key",
        r"\bsk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}",
        hints=("sk-",),
    ),
    _rule("stripe-key", r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}", hints=("k_live_", "k_test_")),
    _rule("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}", hints=("AIza",)),
    _rule(
        "bearer-token",
        r"(?i:\bbearer)\s+(?P<secret>[A-Za-z0-9._~+/-]{16,}=*)",
        group="secret",
        hints=("bearer",),
        folded=True,
    ),
    _rule(
        "url-password",
        r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\[\]]+:(?P<secret>[^\s@/\[\]]+)@",
        group="secret",
        hints=("://",),
    ),
    # `--password VALUE` (space-separated) in a printed command line; argv items are
    # paired by `redact_argv`.
    _rule(
        "flag-secret",
        rf"(?<![A-Za-z0-9_-])--?(?:[A-Za-z0-9]+[_-])*{_FLAG_KEYWORD}[ \t]+"
        rf"(?P<secret>{_FLAG_VALUE})",
        group="secret",
        flags=re.IGNORECASE,
        hints=("pass", "pwd", "secret", "key", "token"),
        folded=True,
    ),
    # Prose: "my password is hunter2!", "the token was 'abc123xyz'". The value must be
    # quoted or hold a digit or a symbol, so "the password is incorrect" stays readable.
    _rule(
        "prose-secret",
        r"(?i:\b(?:password|passphrase|passwd|passcode|secret key|api key|token)\s+"
        r"(?:is|was)(?:\s+set\s+to)?:?\s+)"
        r"(?:(?P<quote>[\"'`])(?P<quoted>[^\"'`\s]{4,})(?P=quote)"
        r"|(?P<bare>(?=[^\s\"'`]*[0-9!@#$%^&*+=~_/\\-])[^\s\"'`]{4,}?)(?=[.,;:!?)]*(?:\s|$)))",
        hints=("pass", "secret", "api key", "token"),
        folded=True,
    ),
    _rule(
        "assigned-secret",
        rf"(?i:{_ASSIGNED_KEYWORD})[A-Za-z0-9_.-]*[\"']?\s*[:=]\s*"
        rf"(?:(?P<quote>[\"']){_PLACEHOLDER}{_ENV_NAME}(?P<quoted>[^\"'\s\[]{{4,}})(?P=quote)"
        rf"|{_PLACEHOLDER}{_DOTTED_NAME}(?P<bare>(?=[^\s\"'`,;()\[\]{{}}$<>]*[0-9!@#%^&*+/=~-])"
        rf"[^\s\"'`,;()\[\]{{}}$<>]{{6,}}))",
        hints=("pass", "pwd", "secret", "key", "token"),
        folded=True,
    ),
)


# Rules whose secret is in group `quoted` or `bare`, whichever matched.
_GROUPED_KINDS: Final = frozenset({"assigned-secret", "prose-secret"})
_FLAG_NAME: Final = re.compile(rf"--?(?:[A-Za-z0-9]+[_-])*{_FLAG_KEYWORD}", re.IGNORECASE)
_FLAG_ARGUMENT: Final = re.compile(_FLAG_VALUE, re.IGNORECASE)


@dataclass(frozen=True)
class Redacted:
    text: str
    count: int
    kinds: tuple[str, ...] = ()


def redaction_key_path(env: Mapping[str, str] | None = None) -> Path:
    """The installation's redaction key: beside the config file (see config.py)."""
    return default_config_path(env).parent / KEY_FILE_NAME


def load_redaction_key(path: Path) -> bytes:
    """The key at `path`, created (random, mode 0600) when there is none yet.

    Written to a private temporary file and linked into place, so a reader never sees a
    half-written key and two first runs racing agree on one key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(KEY_BYTES) + "\n")
            # Another process that created it first wins: use its key.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    key = bytes.fromhex(path.read_text().strip())
    if len(key) < KEY_BYTES:
        raise ValueError(f"redaction key {path} is shorter than {KEY_BYTES} bytes")
    return key


@functools.lru_cache(maxsize=8)
def _cached_key(path: str) -> bytes | None:
    try:
        return load_redaction_key(Path(path))
    except (OSError, ValueError):
        return None


def installation_key() -> bytes | None:
    """This installation's redaction key, or None when it cannot be read nor created."""
    return _cached_key(str(redaction_key_path()))


def marker(kind: str, secret: str, key: bytes | None = None) -> str:
    """The marker replacing `secret`; keyed by `key`, else by the installation's key."""
    key = key if key is not None else installation_key()
    if key is None:
        return f"[REDACTED:{kind}]"
    digest = hmac.new(key, secret.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()
    return f"[REDACTED:{kind}:hmac-sha256={digest}]"


def redact(text: str, key: bytes | None = None) -> Redacted:
    """`text` with every credential replaced by its marker, and how many were replaced;
    markers are keyed by `key`, else by the installation's key."""
    kinds: list[str] = []
    folded: str | None = None
    for rule in RULES:
        if rule.folded:
            folded = text.lower() if folded is None else folded
            haystack = folded
        else:
            haystack = text
        if rule.hints and not any(hint in haystack for hint in rule.hints):
            continue
        before = len(kinds)
        text = _apply(rule, text, kinds, key)
        if len(kinds) != before:
            folded = None  # the text changed
    return Redacted(text, len(kinds), tuple(kinds))


def _apply(rule: Rule, text: str, kinds: list[str], key: bytes | None) -> str:
    def replace(match: re.Match[str]) -> str:
        if rule.kind in _GROUPED_KINDS:
            group: int | str = "quoted" if match.group("quoted") is not None else "bare"
        else:
            group = rule.group
        start, end = match.span(group)
        whole_start, whole_end = match.span()
        kinds.append(rule.kind)
        source = match.string
        return (
            source[whole_start:start]
            + marker(rule.kind, match.group(group), key)
            + source[end:whole_end]
        )

    # Markers already in the text are left whole: `…:hmac-sha256=<hex>]` must not read as an
    # assignment to redact again.
    pieces: list[str] = []
    done = 0
    for existing in MARKER_PATTERN.finditer(text):
        pieces.append(rule.pattern.sub(replace, text[done : existing.start()]))
        pieces.append(existing.group())
        done = existing.end()
    pieces.append(rule.pattern.sub(replace, text[done:]))
    return "".join(pieces)


def redact_argv(argv: list[str], key: bytes | None = None) -> tuple[list[str], int]:
    """A command's arguments, each redacted, and the value after a secret-naming flag
    (`--password VALUE`, `-token VALUE`) replaced whole; with how many were replaced."""
    shown: list[str] = []
    count = 0
    for index, arg in enumerate(argv):
        previous = argv[index - 1] if index else ""
        if _FLAG_NAME.fullmatch(previous) and _FLAG_ARGUMENT.fullmatch(arg):
            shown.append(marker("flag-secret", arg, key))
            count += 1
            continue
        result = redact(arg, key)
        shown.append(result.text)
        count += result.count
    return shown, count


def redact_bytes(data: bytes) -> tuple[bytes, int]:
    """Redact command output, which may not be UTF-8: undecodable bytes pass through."""
    result = redact(data.decode("utf-8", "surrogateescape"))
    return result.text.encode("utf-8", "surrogateescape"), result.count
