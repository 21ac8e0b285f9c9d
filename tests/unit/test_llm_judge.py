"""The OpenAI judge through the real `openai` client against a local OpenAI-compatible
server (tests/fake_openai.py) answering from a script: each scenario gives the documented
result. No real OpenAI endpoint is contacted."""

from __future__ import annotations

import socket
import time

import boto3
import orjson
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from prtrace.adapters.openai_chat import build_llm_judge, resolve_api_key
from prtrace.judge import llm
from prtrace.judge.llm import AnswerRejected, ModelReply, validate_answer
from prtrace.judge.result import OFFLINE_JUDGE, JudgeResult
from prtrace.judge.rubric import DIMENSION_IDS, load_rubric
from prtrace.judge.service import judge_trace
from prtrace.judge.settings import JudgeSettings
from prtrace.settings import ConfigurationError
from tests.fake_openai import Scripted, answer, completion, fake_openai_server
from tests.judge_factories import qa_report, sample_document

RUBRIC = load_rubric()
DOC = sample_document()
QA = qa_report("resolved", trace_id="tr_sample")


@pytest.fixture
def fake():
    with fake_openai_server() as server:
        yield server


def _settings(url: str, **overrides):
    values = {
        "openai_api_key": "sk-test-not-real",
        "openai_base_url": url,
        "model": "judge-model-x",
        "timeout_s": 5,
        "max_retries": 2,
        "input_usd_per_1m": 2.0,
        "output_usd_per_1m": 8.0,
    } | overrides
    return JudgeSettings.model_validate(values)


def _judge(url: str, **overrides):
    judge = build_llm_judge(_settings(url, **overrides), RUBRIC)
    assert judge is not None
    return judge_trace(DOC, QA, RUBRIC, judge)


def test_good_answer_is_kept_with_usage_and_cost(fake):
    scores = {"fix_correctness": 5, "efficiency": 3}
    fake.push(completion(answer(scores, cite=["evt-0002", "evt-0007"]), 3_000, 500))
    result = _judge(fake.url)
    assert result.status == "ok"
    assert result.judge == "openai:judge-model-x"
    assert result.rubric_version == "prtrace.rubric/v1"
    assert [s.dimension for s in result.scores] == list(DIMENSION_IDS)
    assert result.score_of("fix_correctness") == 5
    assert result.score_of("efficiency") == 3
    assert result.overall == RUBRIC.weighted_overall({d: 4 for d in DIMENSION_IDS} | scores)
    assert result.scores[0].cited_event_ids == ["evt-0002", "evt-0007"]
    assert result.usage is not None
    assert (result.usage.attempts, result.usage.prompt_tokens) == (1, 3_000)
    assert result.usage.cost_usd == pytest.approx((3_000 * 2.0 + 500 * 8.0) / 1e6)
    assert result.prompt is not None
    assert result.prompt.events_rendered == 11
    assert result.qa_verdict == "resolved"


def test_request_uses_structured_outputs_the_model_and_the_key(fake):
    fake.push(completion(answer()))
    _judge(fake.url)
    request = fake.requests[0]
    assert request["model"] == "judge-model-x"
    assert request["response_format"]["type"] == "json_schema"
    assert request["response_format"]["json_schema"]["strict"] is True
    schema = request["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["scores"]["required"] == list(DIMENSION_IDS)
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert request["max_completion_tokens"] == 4_000
    assert request["temperature"] == 0
    assert "[evt-0005] #5 " in request["messages"][1]["content"]
    assert fake.headers[0]["authorization"] == "Bearer sk-test-not-real"


def test_malformed_json_is_retried_once_with_the_reason(fake):
    fake.push(completion('{"scores": {"problem_understanding": '), completion(answer()))
    result = _judge(fake.url)
    assert result.status == "ok"
    assert result.usage is not None
    assert result.usage.attempts == 2
    assert result.usage.prompt_tokens == 2_000  # both attempts are paid for
    retry = fake.requests[1]["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert "not valid JSON" in retry[3]["content"]
    assert any("not valid JSON" in p for p in result.problems)


def test_malformed_json_twice_marks_the_result_invalid(fake):
    fake.push(completion("I think this is a 4."), completion("still not JSON"))
    result = _judge(fake.url)
    assert result.status == "invalid"
    assert result.overall is None
    assert result.scores == []
    assert len(fake.requests) == 2
    assert result.judge == "openai:judge-model-x"


def test_score_out_of_range_is_rejected(fake):
    bad = answer({"diagnosis": 7})
    fake.push(completion(bad), completion(bad))
    result = _judge(fake.url)
    assert result.status == "invalid"
    assert any("diagnosis: score 7 is outside 0..5" in p for p in result.problems)


def test_missing_dimension_is_rejected(fake):
    fake.push(completion(answer(communication=None)), completion(answer(communication=None)))
    result = _judge(fake.url)
    assert result.status == "invalid"
    assert any("communication: missing" in p for p in result.problems)


def test_citation_of_a_nonexistent_event_is_retried_then_invalid(fake):
    ghost = answer(cite=["evt-0002", "evt-9999"])
    fake.push(completion(ghost), completion(ghost))
    result = _judge(fake.url)
    assert result.status == "invalid"
    assert result.overall is None
    assert len(fake.requests) == 2
    assert "evt-9999" in fake.requests[1]["messages"][3]["content"]
    assert any("not in the trace: 'evt-9999'" in p for p in result.problems)


def test_citation_fixed_on_retry_is_accepted(fake):
    fake.push(completion(answer(cite=["evt-9999"])), completion(answer(cite=["evt-0004"])))
    result = _judge(fake.url)
    assert result.status == "ok"
    assert all(s.cited_event_ids == ["evt-0004"] for s in result.scores)


def test_rate_limit_then_success(fake):
    fake.push(
        Scripted(429, {"error": {"message": "rate limited"}}, {"retry-after-ms": "20"}),
        completion(answer()),
    )
    result = _judge(fake.url)
    assert result.status == "ok"
    assert len(fake.requests) == 2  # the client backed off and retried
    assert result.usage is not None
    assert result.usage.attempts == 1  # one answer was asked for


def test_timeout_falls_back_to_offline_scores(fake):
    fake.push(*[completion(answer()) for _ in range(2)])
    fake.script = type(fake.script)(
        Scripted(200, r.body, r.headers, delay_s=1.5) for r in fake.script
    )
    started = time.monotonic()
    result = _judge(fake.url, timeout_s=0.3, max_retries=1)
    assert time.monotonic() - started < 5
    assert result.status == "judge_unavailable"
    # No model score exists: the offline scores stand in, labelled, outside `overall`.
    assert result.judge == "openai:judge-model-x"
    assert (result.overall, result.scores) == (None, [])
    offline = judge_trace(DOC, QA, RUBRIC, None)
    assert result.stand_in is not None
    assert result.stand_in.judge == OFFLINE_JUDGE
    assert result.stand_in.overall == offline.overall is not None
    assert result.stand_in.scores == offline.scores
    assert any("APITimeoutError" in p for p in result.problems)
    assert len(fake.requests) == 2  # first try and one retry


def test_server_errors_after_retries_fall_back(fake):
    fake.push(*[Scripted(503, {"error": {"message": "overloaded"}}) for _ in range(3)])
    result = _judge(fake.url, max_retries=2)
    assert result.status == "judge_unavailable"
    assert any("HTTP 503" in p for p in result.problems)
    assert len(fake.requests) == 3


def test_closed_port_falls_back():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _judge(f"http://127.0.0.1:{port}/v1", max_retries=0)
    assert result.status == "judge_unavailable"
    assert any("APIConnectionError" in p for p in result.problems)
    assert result.scores == []
    assert result.stand_in is not None
    assert len(result.stand_in.scores) == 6


def test_ensemble_takes_the_median_and_flags_disagreement(fake):
    fake.push(
        completion(answer({"diagnosis": 1})),
        completion(answer({"diagnosis": 5})),
        completion(answer({"diagnosis": 4})),
    )
    result = _judge(fake.url, samples=3, review_spread=2)
    assert result.status == "ok"
    assert result.score_of("diagnosis") == 4
    assert result.review is not None
    assert result.review.spread["diagnosis"] == 4
    assert result.review.needs_human_review is True
    assert result.usage is not None
    assert result.usage.attempts == 3


def test_ensemble_agreement_is_not_flagged(fake):
    fake.push(*[completion(answer({"diagnosis": 3 + i % 2})) for i in range(3)])
    result = _judge(fake.url, samples=3, review_spread=2)
    assert result.review is not None
    assert result.review.needs_human_review is False


def test_no_key_means_the_offline_judge():
    assert build_llm_judge(JudgeSettings(), RUBRIC) is None
    assert build_llm_judge(JudgeSettings(openai_api_key="k", mode="offline"), RUBRIC) is None
    with pytest.raises(ConfigurationError, match="needs OPENAI_API_KEY"):
        build_llm_judge(JudgeSettings(mode="openai"), RUBRIC)


@pytest.fixture
def fresh_parameters():
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()  # providers hold boto3 clients
    yield
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()


@mock_aws
@pytest.mark.usefixtures("fresh_parameters")
def test_api_key_from_secrets_manager_raw_or_json():
    client = boto3.client("secretsmanager")
    client.create_secret(Name="judge/raw", SecretString="sk-from-secret\n")
    client.create_secret(Name="judge/json", SecretString=orjson.dumps({"api_key": "sk-j"}).decode())
    client.create_secret(Name="judge/bad", SecretString='{"key": "x"}')
    assert resolve_api_key(JudgeSettings(openai_secret_name="judge/raw")) == "sk-from-secret"
    # the secret wins over the environment's key
    both = JudgeSettings(openai_secret_name="judge/json", openai_api_key="sk-env")
    assert resolve_api_key(both) == "sk-j"
    with pytest.raises(ConfigurationError, match="api_key"):
        resolve_api_key(JudgeSettings(openai_secret_name="judge/bad"))
    # a secret the stack names but nobody created means no key: the offline judge
    assert resolve_api_key(JudgeSettings(openai_secret_name="judge/absent")) is None
    client.create_secret(Name="judge/empty", SecretString="  ")
    assert resolve_api_key(JudgeSettings(openai_secret_name="judge/empty")) is None


@pytest.mark.usefixtures("fresh_parameters")
def test_unreadable_secret_is_a_configuration_error(monkeypatch):
    # No mock: credentials are fake and the endpoint is a closed port, so the read fails
    # for a reason other than "not found" and must not silently switch judges.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(ConfigurationError, match="could not be read"):
        resolve_api_key(JudgeSettings(openai_secret_name="judge/any"))


def test_settings_from_env(monkeypatch):
    monkeypatch.setenv("PRTRACE_JUDGE_MODEL", "m-1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    monkeypatch.setenv("PRTRACE_JUDGE_TIMEOUT_S", "12.5")
    monkeypatch.setenv("PRTRACE_JUDGE_TEMPERATURE", "none")
    monkeypatch.setenv("PRTRACE_JUDGE_MAX_OUTPUT_TOKENS", "none")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    settings = JudgeSettings.from_env()
    assert (settings.model, settings.timeout_s, settings.temperature) == ("m-1", 12.5, None)
    assert settings.max_output_tokens is None
    assert settings.openai_base_url == "http://localhost:8000/v1"
    assert "sk-env" not in repr(settings)  # the key never shows in logs
    monkeypatch.setenv("PRTRACE_JUDGE_SAMPLES", "0")
    with pytest.raises(ConfigurationError, match="PRTRACE_JUDGE_SAMPLES"):
        JudgeSettings.from_env()


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (ModelReply(content=None, refusal="I can't help"), "the model refused"),
        (ModelReply(content='{"scores": {', finish_reason="length"), "cut off"),
        (ModelReply(content="[1, 2]"), 'no "scores" object'),
        (ModelReply(content=answer({"diagnosis": True})), "diagnosis: score must be an integer"),
        (ModelReply(content=answer({"diagnosis": 2.5})), "diagnosis: score must be an integer"),
        (ModelReply(content=answer({"efficiency": -1})), "efficiency: score -1 is outside"),
        (ModelReply(content=answer(cite="evt-0002")), "cited_event_ids must be a list"),
        (
            ModelReply(content=answer(speed={"score": 3, "rationale": "", "cited_event_ids": []})),
            "'speed': not a rubric dimension",
        ),
    ],
)
def test_answer_validation_rejects(reply, problem):
    ids = {e.event_id for e in DOC.events}
    with pytest.raises(AnswerRejected) as rejected:
        validate_answer(reply, RUBRIC, ids)
    assert any(problem in p for p in rejected.value.problems)


def test_a_proxy_page_instead_of_a_completion_falls_back(fake):
    fake.push(Scripted(200, "<html>502 Bad Gateway</html>"))
    result = _judge(fake.url, max_retries=0)
    assert result.status == "judge_unavailable"
    assert result.stand_in is not None
    assert result.stand_in.judge == OFFLINE_JUDGE


def test_ensemble_with_an_invalid_sample_is_flagged(fake):
    fake.push(
        completion(answer()),
        completion("not json"),
        completion("still not json"),  # the second sample's corrected retry fails too
        completion(answer()),
    )
    result = _judge(fake.url, samples=3)
    assert result.status == "ok"
    assert result.review is not None
    assert result.review.samples == 2
    assert result.review.needs_human_review is True
    assert result.usage is not None
    assert result.usage.attempts == 4


def test_no_prices_means_no_cost_claimed(fake):
    fake.push(completion(answer()))
    result = _judge(fake.url, input_usd_per_1m=None, output_usd_per_1m=None)
    assert result.usage is not None
    assert result.usage.total_tokens == 1_200
    assert result.usage.cost_usd is None


def test_a_slow_model_is_cut_off_at_the_callers_deadline(fake, monkeypatch):
    monkeypatch.setattr(llm, "MIN_MODEL_CALL_S", 0.2)
    fake.push(*[Scripted(200, completion(answer()).body, delay_s=3.0) for _ in range(4)])
    judge = build_llm_judge(_settings(fake.url, timeout_s=60, max_retries=3), RUBRIC)
    assert judge is not None
    started = time.monotonic()
    result = judge_trace(DOC, QA, RUBRIC, judge, time_left_s=lambda: 1.0)
    assert time.monotonic() - started < 2.5  # not 60 s, not 4 retries
    assert result.status == "judge_unavailable"
    assert len(fake.requests) == 1


def test_ensemble_keeps_the_samples_it_got_when_the_model_goes_away(fake):
    fake.push(
        completion(answer({"diagnosis": 2})),
        Scripted(503, {"error": {"message": "gone"}}),
    )
    result = _judge(fake.url, samples=3, max_retries=0)
    assert result.status == "ok"
    assert result.judge == "openai:judge-model-x"
    assert result.score_of("diagnosis") == 2
    assert result.review is not None
    assert result.review.samples == 1
    assert result.review.needs_human_review is True
    assert any("unavailable" in p for p in result.problems)


def test_optional_request_parameters_can_be_left_out(fake):
    fake.push(completion(answer()))
    _judge(fake.url, temperature=None, max_output_tokens=None)
    assert "temperature" not in fake.requests[0]
    assert "max_completion_tokens" not in fake.requests[0]


def test_an_answer_cut_off_at_the_output_limit_is_retried(fake):
    fake.push(completion(answer()[:100], finish_reason="length"), completion(answer()))
    result = _judge(fake.url)
    assert result.status == "ok"
    assert result.usage is not None
    assert result.usage.attempts == 2
    assert any("cut off" in p for p in result.problems)


# ---- answers that are not chat completions ---------------------------------------------


def _unavailable_problem(result) -> str:
    assert result.status == "judge_unavailable"
    assert (result.overall, result.scores) == (None, [])
    assert result.stand_in is not None
    return result.problems[-1]


def test_an_html_200_is_judge_unavailable_saying_what_came_back(fake):
    page = "<html><body><h1>502 Bad Gateway</h1>" + "x" * 5_000 + "</body></html>"
    fake.push(Scripted(200, page, content_type="text/html"), completion(answer()))
    result = _judge(fake.url)
    problem = _unavailable_problem(result)
    assert "openai:judge-model-x unavailable" in problem
    assert "text/html" in problem
    assert "502 Bad Gateway" in problem
    assert len(problem) < 400  # cut, not the whole page
    assert len(fake.requests) == 1  # a 200 is not retried: no second paid call


def test_an_empty_200_is_judge_unavailable(fake):
    fake.push(Scripted(200, ""))
    assert "empty body" in _unavailable_problem(_judge(fake.url))


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ('{"error": {"message": "upstream overloaded"}}', "no `choices`"),
        ('{"choices": []}', "empty or non-list (list) `choices`"),
        ('{"choices": "a string"}', "empty or non-list (str) `choices`"),
        ('{"choices": ["a string"]}', "no message with text content"),
        ('{"choices": [{"message": "text"}]}', "no message with text content"),
        ('{"choices": [{"message": {"content": 5}}]}', "no message with text content"),
        ("[1, 2, 3]", "a JSON list, not a chat completion"),
        ('"just a string"', "a JSON str, not a chat completion"),
        ("null", "a JSON NoneType"),
    ],
)
def test_a_json_body_of_the_wrong_shape_is_judge_unavailable(fake, body, said):
    fake.push(Scripted(200, body))
    problem = _unavailable_problem(_judge(fake.url))
    assert said in problem


def test_a_body_too_large_is_judge_unavailable(fake):
    huge = completion(answer()).body
    assert isinstance(huge, dict)
    huge = huge | {"padding": "x" * 2_000_000}
    fake.push(Scripted(200, huge))
    assert "larger than 1,048,576 bytes" in _unavailable_problem(_judge(fake.url))


def test_what_came_back_never_shows_the_key(fake):
    echo = "<pre>Authorization: Bearer sk-test-not-real\nkey sk-test-not-real</pre>"
    fake.push(Scripted(200, echo, content_type="text/html"))
    problem = _unavailable_problem(_judge(fake.url))
    assert "sk-test-not-real" not in problem
    assert "Bearer ***" in problem


def test_a_completion_with_odd_optional_fields_is_still_an_answer(fake):
    reply = completion(answer())
    assert isinstance(reply.body, dict)
    body = reply.body | {"usage": "n/a"}
    body["choices"][0]["message"]["refusal"] = 7
    fake.push(Scripted(200, body))
    result = _judge(fake.url)
    assert result.status == "ok"
    assert result.usage is not None
    assert result.usage.prompt_tokens == 0


# ---- request parameters ----------------------------------------------------------------


def test_seed_is_sent_one_per_sample_and_none_leaves_it_out(fake):
    fake.push(*[completion(answer()) for _ in range(3)])
    _judge(fake.url, samples=3, seed=41)
    assert [r["seed"] for r in fake.requests] == [41, 42, 43]
    fake.requests.clear()
    fake.push(completion(answer()))
    _judge(fake.url, seed=None)
    assert "seed" not in fake.requests[0]


def test_the_output_limit_can_be_sent_as_max_tokens(fake):
    fake.push(completion(answer()))
    _judge(fake.url, max_tokens_parameter="max_tokens", max_output_tokens=3_000)
    assert fake.requests[0]["max_tokens"] == 3_000
    assert "max_completion_tokens" not in fake.requests[0]


def test_new_settings_from_env(monkeypatch):
    monkeypatch.setenv("PRTRACE_JUDGE_MODELS", " model-a, model-b ,")
    monkeypatch.setenv("PRTRACE_JUDGE_SEED", "none")
    monkeypatch.setenv("PRTRACE_JUDGE_MAX_TOKENS_PARAMETER", "max_tokens")
    settings = JudgeSettings.from_env()
    assert settings.model_names == ["model-a", "model-b"]
    assert settings.seed is None
    assert settings.max_tokens_parameter == "max_tokens"
    monkeypatch.delenv("PRTRACE_JUDGE_MODELS")
    assert JudgeSettings.from_env().model_names == ["gpt-4.1-mini"]
    for bad in ("a,a", "a,b,c,d,e,f"):
        monkeypatch.setenv("PRTRACE_JUDGE_MODELS", bad)
        with pytest.raises(ConfigurationError, match="PRTRACE_JUDGE_MODELS"):
            JudgeSettings.from_env()
    monkeypatch.delenv("PRTRACE_JUDGE_MODELS")
    monkeypatch.setenv("PRTRACE_JUDGE_MAX_TOKENS_PARAMETER", "max_length")
    with pytest.raises(ConfigurationError, match="PRTRACE_JUDGE_MAX_TOKENS_PARAMETER"):
        JudgeSettings.from_env()


# ---- several models --------------------------------------------------------------------


def test_several_models_each_answer_and_disagreement_is_flagged_with_who_said_what(fake):
    fake.push_for("model-a", completion(answer({"diagnosis": 1, "efficiency": 3})))
    fake.push_for("model-b", completion(answer({"diagnosis": 5, "efficiency": 4})))
    fake.push_for("model-c", completion(answer({"diagnosis": 4, "efficiency": 3})))
    result = _judge(fake.url, models=("model-a", "model-b", "model-c"), review_spread=2)
    assert [r["model"] for r in fake.requests] == ["model-a", "model-b", "model-c"]
    assert result.status == "ok"
    assert result.judge == "openai:model-a + openai:model-b + openai:model-c"
    assert result.score_of("diagnosis") == 4  # lower median of 1, 5, 4
    assert result.score_of("efficiency") == 3
    review = result.review
    assert review is not None
    assert review.needs_human_review is True
    assert review.spread["diagnosis"] == 4
    assert review.reasons == [
        "diagnosis: openai:model-a said 1, openai:model-b said 5, openai:model-c said 4 "
        "(spread 4 > 2)"
    ]
    assert [(m.judge, m.scores["diagnosis"]) for m in review.models] == [
        ("openai:model-a", 1),
        ("openai:model-b", 5),
        ("openai:model-c", 4),
    ]
    assert review.models[1].overall == RUBRIC.weighted_overall(
        {d: 4 for d in DIMENSION_IDS} | {"diagnosis": 5}
    )


def test_several_models_that_agree_are_not_flagged(fake):
    fake.push_for("model-a", completion(answer({"diagnosis": 3})))
    fake.push_for("model-b", completion(answer({"diagnosis": 4})))
    result = _judge(fake.url, models=("model-a", "model-b"))
    assert result.score_of("diagnosis") == 3  # lower median of two: the lower
    assert result.review is not None
    assert result.review.needs_human_review is False
    assert result.review.reasons == []
    assert len(result.review.models) == 2


def test_each_model_gives_its_samples_and_counts_once(fake):
    # model-a's three samples median to 2; model-b's one answer is 4: each model counts once.
    fake.push_for("model-a", *[completion(answer({"diagnosis": d})) for d in (2, 2, 5)])
    fake.push_for("model-b", *[completion(answer({"diagnosis": 4})) for _ in range(3)])
    result = _judge(fake.url, models=("model-a", "model-b"), samples=3, review_spread=3)
    assert len(fake.requests) == 6
    assert result.score_of("diagnosis") == 2
    assert result.review is not None
    assert [m.scores["diagnosis"] for m in result.review.models] == [2, 4]
    assert result.review.samples == 6
    assert result.review.needs_human_review is False  # spread 3 is not above 3


def test_a_model_that_is_down_leaves_the_others_scores_flagged(fake):
    fake.push_for("model-a", completion(answer({"diagnosis": 2})))
    fake.push_for("model-b", Scripted(200, "<html>gateway</html>", content_type="text/html"))
    result = _judge(fake.url, models=("model-a", "model-b"))
    assert result.status == "ok"
    assert result.judge == "openai:model-a"  # who scored
    assert result.score_of("diagnosis") == 2
    assert result.review is not None
    assert result.review.needs_human_review is True
    down = result.review.models[1]
    assert (down.judge, down.samples, down.overall, down.scores) == ("openai:model-b", 0, None, {})
    assert any("openai:model-b: 0 of 1 answers valid" in r for r in result.review.reasons)
    assert any("openai:model-b unavailable" in p for p in result.problems)


def test_every_model_down_is_judge_unavailable(fake):
    for model in ("model-a", "model-b"):
        fake.push_for(model, Scripted(503, {"error": {"message": "down"}}))
    result = _judge(fake.url, models=("model-a", "model-b"), max_retries=0)
    assert result.judge == "openai:model-a + openai:model-b"
    problem = _unavailable_problem(result)
    assert "openai:model-a unavailable" in problem
    assert "openai:model-b unavailable" in problem


def test_a_stored_v1_stand_in_is_read_as_a_labelled_stand_in():
    offline = judge_trace(DOC, QA, RUBRIC, None)
    v1 = offline.model_dump(mode="json") | {
        "version": "prtrace.judge/v1",
        "status": "judge_unavailable",
        "problems": ["openai:gpt-4.1-mini unavailable: HTTP 503 InternalServerError"],
    }
    v1.pop("stand_in")
    result = JudgeResult.model_validate_json(orjson.dumps(v1))
    assert result.version == "prtrace.judge/v2"
    assert (result.judge, result.overall, result.scores) == ("openai:gpt-4.1-mini", None, [])
    assert result.stand_in is not None
    assert (result.stand_in.judge, result.stand_in.overall) == (OFFLINE_JUDGE, offline.overall)
    ok_v1 = offline.model_dump(mode="json") | {"version": "prtrace.judge/v1"}
    ok_v1.pop("stand_in")
    assert JudgeResult.model_validate(ok_v1) == offline
