"""The policy evaluator the IAM check relies on, on the cases the stack's policies use."""

from __future__ import annotations

import pytest

from tests.infra.iam_policy import Request, allows, evaluate, single_grants

BUCKET = "arn:aws:s3:::data"
READ_CHUNKS = {
    "Effect": "Allow",
    "Action": "s3:GetObject",
    "Resource": f"{BUCKET}/tenants/*/traces/*/chunks/*",
}
LIST_TENANTS = {
    "Effect": "Allow",
    "Action": "s3:ListBucket",
    "Resource": BUCKET,
    "Condition": {"StringLike": {"s3:prefix": ["tenants/*"]}},
}


def test_actions_ignore_case_and_resources_match_wildcards() -> None:
    key = f"{BUCKET}/tenants/acme/traces/t1/chunks/000000-ab.json"
    assert allows([READ_CHUNKS], Request("S3:getobject", key))
    assert not allows([READ_CHUNKS], Request("s3:PutObject", key))
    assert not allows([READ_CHUNKS], Request("s3:GetObject", f"{BUCKET}/tenants/acme/x"))


def test_question_mark_is_one_character() -> None:
    secret = {
        "Effect": "Allow",
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "arn:aws:secretsmanager:r:1:secret:openai-??????",
    }
    arn = "arn:aws:secretsmanager:r:1:secret:openai-"
    assert allows([secret], Request(secret["Action"], f"{arn}AbC123"))
    assert not allows([secret], Request(secret["Action"], f"{arn}x"))


def test_a_condition_must_hold_and_a_missing_key_fails_it() -> None:
    assert allows([LIST_TENANTS], Request("s3:ListBucket", BUCKET, {"s3:prefix": "tenants/a/"}))
    assert not allows([LIST_TENANTS], Request("s3:ListBucket", BUCKET, {"s3:prefix": "other/"}))
    assert not allows([LIST_TENANTS], Request("s3:ListBucket", BUCKET))  # HeadBucket


def test_negated_and_if_exists_operators_accept_a_missing_key() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
        "Condition": {"StringNotEquals": {"k": "x"}, "StringEqualsIfExists": {"j": "y"}},
    }
    assert allows([statement], Request("a:B", "r"))
    assert not allows([statement], Request("a:B", "r", {"k": "x"}))
    assert not allows([statement], Request("a:B", "r", {"j": "z"}))


def test_arn_conditions_match_part_by_part() -> None:
    run = {
        "Effect": "Allow",
        "Action": "ecs:RunTask",
        "Resource": "*",
        "Condition": {"ArnEquals": {"ecs:cluster": "arn:aws:ecs:r:1:cluster/qa"}},
    }
    cluster = "arn:aws:ecs:r:1:cluster/"
    assert allows([run], Request("ecs:RunTask", "td", {"ecs:cluster": f"{cluster}qa"}))
    assert not allows([run], Request("ecs:RunTask", "td", {"ecs:cluster": f"{cluster}x"}))


def test_deny_wins_and_nothing_allowed_is_an_implicit_deny() -> None:
    deny = {"Effect": "Deny", "NotAction": "s3:PutObject", "Resource": "*"}
    key = f"{BUCKET}/tenants/acme/traces/t1/chunks/1"
    assert evaluate([READ_CHUNKS, deny], Request("s3:GetObject", key)) == "deny"
    assert evaluate([deny], Request("s3:PutObject", key)) == "implicit-deny"
    assert evaluate([], Request("s3:GetObject", key)) == "implicit-deny"


def test_an_unknown_condition_operator_is_an_error_not_a_guess() -> None:
    statement = {
        "Effect": "Allow",
        "Action": "*",
        "Resource": "*",
        "Condition": {"DateLessThan": {"aws:CurrentTime": "2030-01-01"}},
    }
    with pytest.raises(NotImplementedError, match="DateLessThan"):
        allows([statement], Request("a:B", "r"))


def test_a_statement_cuts_into_one_grant_per_action_resource_and_condition_value() -> None:
    statement = {
        "Effect": "Allow",
        "Action": ["s3:ListBucket", "s3:GetObject"],
        "Resource": BUCKET,
        "Condition": {"StringLike": {"s3:prefix": ["a/*", "b/*"]}},
    }
    grants = list(single_grants([statement, {**statement, "Effect": "Deny"}]))
    assert len(grants) == 4
    assert grants[0] == {
        "Effect": "Allow",
        "Action": "s3:ListBucket",
        "Resource": BUCKET,
        "Condition": {"StringLike": {"s3:prefix": "a/*"}},
    }
