"""A small IAM identity-policy evaluator: does this policy allow this request?

Written here because no maintained Python library evaluates a request against a policy
with conditions: policyuniverse parses and expands policies, parliament lints them,
policy_sentry writes them, and moto's `IAMPolicy` knows only `StringEquals` (any other
condition counts as met, and `?` is not a wildcard). The maintained simulator that does
all of it (@cloud-copilot/iam-simulate) is a Node library, and IAM's own
SimulatePrincipalPolicy needs an AWS account.

What it covers is what the stack writes: Allow and Deny statements (an explicit Deny
wins; nothing allowed is an implicit deny), Action / NotAction (case-insensitive) and
Resource / NotResource with `*` and `?` wildcards, and the condition operators
String(Not)Equals, String(Not)Like and Arn(Not)Equals / Arn(Not)Like, with `IfExists`.
Any other operator raises rather than being guessed. Policy variables (`${aws:...}`),
principals and the other policy types (resource policies, boundaries, SCPs) are out of
scope. Its own tests: tests/infra/test_iam_policy.py.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any, Literal

Decision = Literal["allow", "deny", "implicit-deny"]
_NONE: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, init=False)
class Request:
    """One authorization question: an action on a resource ARN, with its context keys."""

    action: str
    resource: str
    context_items: tuple[tuple[str, str], ...]

    def __init__(self, action: str, resource: str, context: Mapping[str, str] = _NONE) -> None:
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "resource", resource)
        object.__setattr__(self, "context_items", tuple(sorted(context.items())))

    @property
    def context(self) -> dict[str, str]:
        return dict(self.context_items)

    def __str__(self) -> str:
        context = "".join(f" {k}={v}" for k, v in self.context_items)
        return f"{self.action} {self.resource}{context}"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@cache
def _pattern(glob: str, ignore_case: bool) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_matches(glob: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcards: `*` any run of characters (`/` and `:` included), `?` one character."""
    return _pattern(glob, ignore_case).fullmatch(value) is not None


def _arn_like(glob: str, value: str) -> bool:
    """ARNs match part by part (the first five colons separate the parts)."""
    globs, values = glob.split(":", 5), value.split(":", 5)
    return len(globs) == len(values) and all(map(glob_matches, globs, values))


_OPERATORS = {
    "StringEquals": (lambda want, got: want == got, False),
    "StringNotEquals": (lambda want, got: want == got, True),
    "StringLike": (glob_matches, False),
    "StringNotLike": (glob_matches, True),
    "ArnEquals": (_arn_like, False),
    "ArnLike": (_arn_like, False),
    "ArnNotEquals": (_arn_like, True),
    "ArnNotLike": (_arn_like, True),
}


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, str]) -> bool:
    name = operator.removesuffix("IfExists")
    if name not in _OPERATORS:
        raise NotImplementedError(f"condition operator {operator} is not evaluated here")
    compare, negated = _OPERATORS[name]
    present = {k.lower(): v for k, v in context.items()}
    if key.lower() not in present:
        # A missing key satisfies only IfExists and negated operators.
        return operator.endswith("IfExists") or negated
    got = present[key.lower()]
    matched = any(compare(str(want), got) for want in as_list(wanted))
    return not matched if negated else matched


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], request: Request) -> bool:
    return all(
        _condition_holds(operator, key, wanted, request.context)
        for operator, keys in conditions.items()
        for key, wanted in keys.items()
    )


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    """Does this statement (whatever its effect) speak about this request?"""
    if "Action" in statement:
        actions = as_list(statement["Action"])
        if not any(glob_matches(a, request.action, ignore_case=True) for a in actions):
            return False
    elif any(
        glob_matches(a, request.action, ignore_case=True) for a in as_list(statement["NotAction"])
    ):
        return False
    if "Resource" in statement:
        if not any(glob_matches(r, request.resource) for r in as_list(statement["Resource"])):
            return False
    elif any(glob_matches(r, request.resource) for r in as_list(statement["NotResource"])):
        return False
    return _conditions_hold(statement.get("Condition", {}), request)


def evaluate(statements: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    applying = [s["Effect"] for s in statements if statement_applies(s, request)]
    if "Deny" in applying:
        return "deny"
    return "allow" if "Allow" in applying else "implicit-deny"


def allows(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    return evaluate(statements, request) == "allow"


def single_grants(statements: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every Allow statement cut into its single grants: one action on one resource, with
    one value for each condition key (a grant no request uses is a grant too many)."""
    for statement in statements:
        if statement["Effect"] != "Allow":
            continue
        conditions = [
            [(operator, key, value) for value in as_list(values)]
            for operator, keys in statement.get("Condition", {}).items()
            for key, values in keys.items()
        ]
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                for chosen in itertools.product(*conditions):
                    grant: dict[str, Any] = {
                        "Effect": "Allow",
                        "Action": action,
                        "Resource": resource,
                    }
                    if chosen:
                        grant["Condition"] = {}
                        for operator, key, value in chosen:
                            grant["Condition"].setdefault(operator, {})[key] = value
                    yield grant
