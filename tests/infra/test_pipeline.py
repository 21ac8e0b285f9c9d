"""The trace pipeline in the operators' template: state machine, QA task, pipeline roles."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Annotations, Match, Template

from infra_cdk.assets import ROOT
from infra_cdk.config import PIPELINE_TIMEOUT_S, QA_STATE_TIMEOUT_S, ConfigError, StackConfig
from infra_cdk.fargate_task import ALL_CAPABILITIES
from infra_cdk.pipeline import ASL_PATH, QA_ENTRYPOINT, QA_USER
from tests.infra import template_queries as q
from tests.infra.conftest import PREFIX_LISTS

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def _one(template: Template, resource_type: str, prefix: str = "Pipeline") -> dict[str, Any]:
    """The pipeline's only resource of this type (the export job has its own)."""
    found = template.find_resources(resource_type)
    found = {k: v for k, v in found.items() if k.startswith(prefix)}
    assert len(found) == 1, f"expected one {resource_type}, found {list(found)}"
    return next(iter(found.values()))


def _definition_sub(template: Template) -> tuple[str, dict[str, Any]]:
    machine = _one(template, "AWS::StepFunctions::StateMachine")["Properties"]
    text, substitutions = machine["DefinitionString"]["Fn::Sub"]
    return text, substitutions


def _definition(template: Template) -> dict[str, Any]:
    text, substitutions = _definition_sub(template)
    filled = PLACEHOLDER.sub(lambda m: f"stand-in-{m.group(1)}", text)
    assert set(substitutions) == set(PLACEHOLDER.findall(text))
    return dict(json.loads(filled))


# ---- the definition -------------------------------------------------------------------


def test_every_placeholder_in_the_definition_has_a_substitution(template: Template) -> None:
    text, substitutions = _definition_sub(template)
    assert text == ASL_PATH.read_text()  # the committed file, inline (what moto also reads)
    used = set(PLACEHOLDER.findall(text))
    assert used == set(substitutions), used ^ set(substitutions)
    for name, value in substitutions.items():
        assert value not in ("", None), name


def test_every_state_is_reachable_and_every_transition_lands(template: Template) -> None:
    definition = _definition(template)
    states: dict[str, dict[str, Any]] = definition["States"]
    targets: dict[str, set[str]] = {}
    for name, state in states.items():
        nexts = {state["Next"]} if "Next" in state else set()
        nexts |= {c["Next"] for c in state.get("Choices", [])}
        nexts |= {c["Next"] for c in state.get("Catch", [])}
        if "Default" in state:
            nexts.add(state["Default"])
        assert nexts <= set(states), f"{name} goes to an unknown state: {nexts - set(states)}"
        assert nexts or state.get("End") or state["Type"] in {"Fail", "Succeed"}, name
        targets[name] = nexts
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += targets[name]
    assert seen == set(states), f"unreachable: {set(states) - seen}"


def test_every_task_retries_transient_errors_and_failures_are_recorded(
    template: Template,
) -> None:
    states = _definition(template)["States"]
    tasks = {n: s for n, s in states.items() if s["Type"] == "Task"}
    assert {"Assemble", "RunQa", "Judge", "RecordComplete", "RecordRejected"} <= set(tasks)
    for name, state in tasks.items():
        assert state.get("Retry"), f"{name} has no Retry"
        for retrier in state["Retry"]:
            assert retrier["BackoffRate"] >= 2
            assert retrier["MaxAttempts"] >= 1
        if name == "RecordFailure":
            assert "Catch" not in state  # the last resort: a failed execution raises an alarm
            continue
        catch_all = [c for c in state["Catch"] if c["ErrorEquals"] == ["States.ALL"]]
        assert catch_all, f"{name} has no catch-all"
        if name == "RunQa":  # how the task stopped decides (the QA tests below)
            assert catch_all[0]["Next"] == "ForgetQaGrant"
            continue
        # Caught failures go through a Pass naming the stage, then RecordFailure.
        stage_state = states[catch_all[0]["Next"]]
        assert stage_state["Type"] == "Pass"
        assert stage_state["Next"] == "RecordFailure"
        assert stage_state["Result"] in {"assemble", "qa", "judge", "record"}
    failure = states["RecordFailure"]["Parameters"]["Payload"]
    assert failure["status"] == "failed"
    assert {"stage.$", "error.$", "cause.$"} <= set(failure)


def _qa_attempt_timeouts(states: dict[str, dict[str, Any]]) -> list[int]:
    """RunQa's time limit for each start: the first, then each restart's."""
    first = states["FirstQaAttempt"]["Result"]
    restarts = _restart_bound(states)
    assert first["restarts"] == 0
    return [first["timeout_s"]] + [states["RestartQa"]["Parameters"]["timeout_s"]] * restarts


def _restart_bound(states: dict[str, dict[str, Any]]) -> int:
    (rule,) = states["QaRestartLeft?"]["Choices"]
    assert rule["Variable"] == "$.qa_attempt.restarts"
    assert rule["Next"] == "RestartQa"
    assert states["QaRestartLeft?"]["Default"] == "QaNeverStarted"
    restart = states["RestartQa"]["Parameters"]
    assert restart["restarts.$"] == "States.MathAdd($.qa_attempt.restarts, 1)"  # counts up
    return int(rule["NumericLessThan"])


def _worst_lambda_s(state: dict[str, Any], timeout_s: int) -> float:
    """A Lambda step whose every attempt the catch-all retrier repeats runs to its timeout."""
    (retrier,) = [r for r in state["Retry"] if r["ErrorEquals"] == ["States.ALL"]]
    waits = sum(
        retrier["IntervalSeconds"] * retrier["BackoffRate"] ** i
        for i in range(retrier["MaxAttempts"])
    )
    return float(timeout_s * (1 + retrier["MaxAttempts"]) + waits)


def test_the_whole_pipeline_has_a_timeout_longer_than_any_state(template: Template) -> None:
    definition = _definition(template)
    assert definition["TimeoutSeconds"] == PIPELINE_TIMEOUT_S
    states = definition["States"]
    assert not [s for s in states.values() if "TimeoutSeconds" in s]
    assert states["RunQa"]["TimeoutSecondsPath"] == "$.qa_attempt.timeout_s"
    timeouts = _qa_attempt_timeouts(states)
    assert timeouts[0] == QA_STATE_TIMEOUT_S < PIPELINE_TIMEOUT_S
    assert all(0 < t <= QA_STATE_TIMEOUT_S for t in timeouts)


def test_the_judge_still_has_its_time_after_the_worst_qa_case(template: Template) -> None:
    """Worst path: Assemble; each start of the QA task preceded by its grant, the first two
    failing to start just inside their time limits and the last running into its own, with
    the waits between; then Judge and Record. Each Lambda step runs to its timeout on every
    attempt its catch-all retrier allows. What is left covers throttling retries (they
    fail fast, waiting at most about two minutes per call)."""
    _, substitutions = _definition_sub(template)
    states = _definition(template)["States"]
    functions = template.find_resources("AWS::Lambda::Function")

    def lambda_s(state_name: str) -> float:
        placeholder = states[state_name]["Parameters"]["FunctionName"]  # stand-in-<name>
        logical_id = substitutions[placeholder.removeprefix("stand-in-")]["Fn::GetAtt"][0]
        return _worst_lambda_s(states[state_name], functions[logical_id]["Properties"]["Timeout"])

    timeouts = _qa_attempt_timeouts(states)
    waits = [10, 30]
    assert states["RestartQa"]["Parameters"]["wait_s.$"] == (
        f"States.ArrayGetItem(States.Array({waits[0]}, {waits[1]}), $.qa_attempt.restarts)"
    )
    assert len(waits) == len(timeouts) - 1
    qa = sum(timeouts) + sum(waits) + len(timeouts) * lambda_s("PrepareQa")
    total = lambda_s("Assemble") + qa + lambda_s("Judge") + lambda_s("RecordComplete")
    assert sum(timeouts) + sum(waits) == 6640  # the figures RunQa's comment states
    assert total == 9958
    assert PIPELINE_TIMEOUT_S - total >= 600, total
    assert "9958 s" in states["RunQa"]["Comment"]


def test_only_a_qa_task_that_never_started_is_started_again(template: Template) -> None:
    """runTask.sync fails every stopped task that did not end with exit code 0 as
    States.TaskFailed, whether it never started or its container ran: RunQa retries ECS API
    errors only, and the stop code in the failure's Cause decides."""
    states = _definition(template)["States"]
    run = states["RunQa"]
    retried = {error for retrier in run["Retry"] for error in retrier["ErrorEquals"]}
    assert retried == {"ECS.AmazonECSException", "ECS.ServerException", "AmazonECS.Unknown"}
    assert run["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.qa_task", "Next": "ForgetQaGrant"}
    ]
    ended = states["QaTaskEnded?"]["Choices"]
    assert ended[1] == {
        "Variable": "$.qa_task.Error",
        "StringEquals": "States.Timeout",
        "Next": "QaTimedOut",
    }
    assert states["ReadQaStop"]["Parameters"] == {"task.$": "States.StringToJson($.qa_task.Cause)"}
    why = {rule["Next"]: rule for rule in states["WhyQaStopped?"]["Choices"]}
    assert why["QaRestartLeft?"]["StringEquals"] == "TaskFailedToStart"
    assert states["RestartQa"]["Next"] == "WaitBeforeQaRestart"
    assert states["WaitBeforeQaRestart"]["Next"] == "PrepareQa"  # a fresh grant per start
    assert _restart_bound(states) == 2  # three starts at most
    # A container that ran is the repository's outcome: reported once, then judged.
    for name, skipped in (("QaExited", "task_exited"), ("QaOutOfMemory", "out_of_memory")):
        conditions = why[name]["And"]
        assert {"Variable": "$.qa_task.stop_code", "StringEquals": "EssentialContainerExited"} in (
            conditions
        )
        assert states[name]["Parameters"]["skipped"] == skipped
        assert states[name]["Parameters"]["report_key"] is None
        assert states[name]["Next"] == "MarkJudging"
    assert {"Variable": "$.qa_task.container.Reason", "StringMatches": "OutOfMemoryError*"} in (
        why["QaOutOfMemory"]["And"]
    )
    assert states["QaNeverStarted"]["Parameters"]["Error"] == "QA.TaskFailedToStart"
    assert states["QaNeverStarted"]["Next"] == "QaFailed"


def _paths_read(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith(".$") or key in ("Variable", "SecondsPath", "TimeoutSecondsPath"):
                # $.paths, not the context object's $$.paths
                found |= set(re.findall(r"(?<!\$)\$\.[A-Za-z_.\[\]0-9]+", str(value)))
            found |= _paths_read(value)
    elif isinstance(node, list):
        for value in node:
            found |= _paths_read(value)
    return found


def test_the_qa_task_reads_its_grant_and_no_later_state_keeps_it(template: Template) -> None:
    states = _definition(template)["States"]
    prepare = states["PrepareQa"]
    assert states["FirstQaAttempt"]["Next"] == "PrepareQa"
    assert prepare["Next"] == "RunQa"
    assert prepare["Parameters"]["Payload"] == {
        "tenant.$": "$.tenant",
        "trace_id.$": "$.trace_id",
        "document_key.$": "$.assembled.Payload.document_key",
        "qa_report_key.$": "$.assembled.Payload.qa_report_key",
        "snapshots.$": "$.assembled.Payload.snapshots",  # the refs it signs URLs for
    }
    assert prepare["ResultSelector"] == {"grant.$": "$.Payload.grant"}
    assert prepare["ResultPath"] == "$.qa_grant"
    assert prepare["Retry"] == states["Assemble"]["Retry"]
    assert prepare["Catch"][0]["Next"] == "QaFailed"
    (override,) = states["RunQa"]["Parameters"]["Overrides"]["ContainerOverrides"]
    environment = {e["Name"]: e["Value.$"] for e in override["Environment"]}
    assert environment["PRTRACE_QA_GRANT"] == "$.qa_grant.grant"
    # The grant names the document and report keys: nothing else long shares ECS's
    # 8,192 characters of overrides with it (tests/unit/test_qa_grant.py).
    assert set(environment) == {"PRTRACE_QA_GRANT", "PRTRACE_TENANT", "PRTRACE_TRACE_ID"}
    # Every way out of RunQa goes through ForgetQaGrant, which drops the grant ...
    assert states["RunQa"]["Next"] == "ForgetQaGrant"
    forget = states["ForgetQaGrant"]
    assert (forget["ResultPath"], forget["Result"]) == ("$.qa_grant", {"grant": None})
    # ... the stopped task's description (whose overrides hold it) is cut to why it stopped
    assert set(states["SummariseQaStop"]["Parameters"]) == {
        "stop_code.$",
        "stopped_reason.$",
        "container.$",
    }
    assert states["SummariseQaStop"]["ResultPath"] == "$.qa_task"
    assert states["QaStopUnreadable"]["ResultPath"] == "$.qa_task"
    # ... and only RunQa reads it.
    readers = {name for name, state in states.items() if "$.qa_grant.grant" in _paths_read(state)}
    assert readers == {"RunQa"}


def test_every_path_the_definition_reads_is_one_it_writes_or_its_input(template: Template) -> None:
    """A typo in a path fails an execution only when it runs: here it fails the build."""
    states = _definition(template)["States"]
    written = {"$.tenant", "$.trace_id"}
    for state in states.values():
        for where in ("ResultPath",):
            if isinstance(state.get(where), str):
                written.add(state[where])
        for catcher in state.get("Catch", []):
            written.add(catcher["ResultPath"])
    results = {
        "$.assembled": {"Payload"},
        "$.qa_task": {"Error", "Cause", "task", "container", "stop_code", "stopped_reason"},
    }
    # A ResultSelector reads the task's result, not the state.
    read = {n: {k: v for k, v in s.items() if k != "ResultSelector"} for n, s in states.items()}
    for path in sorted(_paths_read(read)):
        top = ".".join(path.split(".")[:2]).split("[")[0]
        assert top in written, f"{path} reads {top}, which no state writes"
        if top in results and path != top:
            field = path.split(".")[2].split("[")[0]
            assert field in results[top], path


def test_states_pass_keys_and_summaries_never_events(template: Template) -> None:
    states = _definition(template)["States"]
    # Every Lambda result is narrowed to its payload; the QA task to its exit code.
    for name, state in states.items():
        if state.get("Resource") == "arn:aws:states:::lambda:invoke" and name != "PrepareQa":
            assert state["ResultSelector"] == {"Payload.$": "$.Payload"}, name
    assert states["PrepareQa"]["ResultSelector"] == {"grant.$": "$.Payload.grant"}
    assert set(states["RunQa"]["ResultSelector"]) == {"container.$", "stopped_reason.$"}
    judge = states["Judge"]["Parameters"]["Payload"]
    assert set(judge) == {"trace_id.$", "document_key.$", "qa_report_key.$", "result_key.$"}


def test_the_qa_task_runs_in_private_subnets_without_a_public_ip(template: Template) -> None:
    run = _definition(template)["States"]["RunQa"]
    assert run["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    network = run["Parameters"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert network["AssignPublicIp"] == "DISABLED"
    _, substitutions = _definition_sub(template)
    subnets = template.find_resources("AWS::EC2::Subnet")
    for name in ("QaSubnetA", "QaSubnetB"):
        assert substitutions[name]["Ref"] in subnets
    # No way out: no internet or NAT gateway, no public subnet.
    assert not template.find_resources("AWS::EC2::InternetGateway")
    assert not template.find_resources("AWS::EC2::NatGateway")
    for subnet in subnets.values():
        assert subnet["Properties"]["MapPublicIpOnLaunch"] is False
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint")
    services = json.dumps([e["Properties"]["ServiceName"] for e in endpoints.values()])
    for service in ("s3", "ecr.api", "ecr.dkr", "logs"):
        assert service in services


def test_the_qa_task_security_group_allows_only_https_out(template: Template) -> None:
    _, substitutions = _definition_sub(template)
    group_id = substitutions["QaSecurityGroupId"]["Fn::GetAtt"][0]
    group = template.find_resources("AWS::EC2::SecurityGroup")[group_id]["Properties"]
    # Only standalone rules (which replace the default allow-all): HTTPS to S3's prefix list
    # and to its endpoints' groups (which ones: tests/infra/test_network.py).
    assert "SecurityGroupEgress" not in group
    egress = [
        r["Properties"]
        for r in template.find_resources("AWS::EC2::SecurityGroupEgress").values()
        if r["Properties"]["GroupId"] == {"Fn::GetAtt": [group_id, "GroupId"]}
    ]
    assert {(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in egress} == {("tcp", 443, 443)}
    assert [r["DestinationPrefixListId"] for r in egress if "DestinationPrefixListId" in r] == [
        PREFIX_LISTS["s3_prefix_list_id"]
    ]
    assert all(
        "DestinationSecurityGroupId" in r for r in egress if "DestinationPrefixListId" not in r
    )
    assert "SecurityGroupIngress" not in group


def test_the_qa_task_definition_is_hardened(template: Template) -> None:
    definition = _one(template, "AWS::ECS::TaskDefinition")["Properties"]
    assert definition["RequiresCompatibilities"] == ["FARGATE"]
    assert definition["NetworkMode"] == "awsvpc"
    assert definition["Cpu"] == str(StackConfig().qa_task_cpu)
    assert definition["Memory"] == str(StackConfig().qa_task_memory_mb)
    assert definition["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    (container,) = definition["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] is True
    assert container["Privileged"] is False
    # Root with only what dropping each test run to the sandbox uid needs; Fargate cannot
    # add capabilities, so every other one is dropped by name.
    assert container["User"] == QA_USER == "0:0"
    capabilities = container["LinuxParameters"]["Capabilities"]
    assert set(capabilities) == {"Drop"}
    kept = {c.value for c in ALL_CAPABILITIES} - set(capabilities["Drop"])
    assert kept == {"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETGID", "SETUID"}
    assert "SYS_PTRACE" in capabilities["Drop"]
    assert container["LinuxParameters"]["InitProcessEnabled"] is True
    assert container["MountPoints"] == [
        {"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"}  # noqa: S108
    ]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["PRTRACE_SANDBOX_BACKEND"] == "container"
    # Its dependency step reaches the private PyPI proxy (tests/infra/test_package_proxy.py).
    assert environment["PRTRACE_QA_DEPENDENCY_NETWORK"] == "true"
    assert not [n for n in environment if "KEY" in n or "TOKEN" in n or "SECRET" in n]


def test_the_task_definition_runs_what_the_image_runs() -> None:
    dockerfile = (ROOT / "functions" / "qa_runner" / "Dockerfile").read_text()
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE)
    user = re.search(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert entrypoint
    assert user
    assert tuple(json.loads(entrypoint.group(1))) == QA_ENTRYPOINT
    assert user.group(1) == QA_USER


def _qa_image(outdir: Path) -> dict[str, Any]:
    """The QA task's image asset (the export task has its own)."""
    assets = json.loads((Path(outdir) / "prtrace-test.assets.json").read_text())
    (image,) = [
        i for i in assets["dockerImages"].values() if "qa_runner" in i["source"]["dockerFile"]
    ]
    return dict(image)


def test_the_qa_image_is_built_from_the_runner_dockerfile(synthesized: Any) -> None:
    _, outdir = synthesized
    image = _qa_image(outdir)
    assert image["source"]["dockerFile"] == "functions/qa_runner/Dockerfile"
    assert image["source"]["platform"] == "linux/arm64"
    context = Path(outdir) / image["source"]["directory"]
    assert (context / "functions" / "qa_runner" / "main.py").exists()
    assert (context / "layers" / "core" / "python" / "prtrace" / "qa").is_dir()
    assert not (context / ".venv").exists()  # only what the Dockerfile copies


def test_the_state_machine_is_standard_traced_and_logged(template: Template) -> None:
    machine = _one(template, "AWS::StepFunctions::StateMachine")["Properties"]
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["TracingConfiguration"] == {"Enabled": True}
    assert machine["LoggingConfiguration"]["Level"] == "ALL"
    assert machine["LoggingConfiguration"]["IncludeExecutionData"] is False


def test_the_state_machine_role_reaches_only_the_pipeline(template: Template) -> None:
    statements = q.statements(template, "PipelineStateMachineRole")
    actions = {a for s in statements for a in q.actions(s)}
    assert not [a for a in actions if a.endswith("*")]
    invoke = next(s for s in statements if "lambda:InvokeFunction" in q.actions(s))
    targets = json.dumps(invoke["Resource"])
    for fn in ("PipelineAssemble", "PipelineJudge", "PipelineRecord"):
        assert fn in targets
    assert "ApiFunction" not in targets
    assert "Authorizer" not in targets
    updates = next(s for s in statements if "dynamodb:UpdateItem" in q.actions(s))
    assert q.actions(updates) == ["dynamodb:UpdateItem"]
    assert "StorageTraces" in json.dumps(updates["Resource"])
    run = next(s for s in statements if "ecs:RunTask" in q.actions(s))
    assert "ecs:cluster" in json.dumps(run["Condition"])
    assert ":*" not in targets  # the definition invokes unqualified ARNs only
    passed = next(s for s in statements if "iam:PassRole" in q.actions(s))
    assert len(passed["Resource"]) == 2  # the task role and the execution role only
    assert passed["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


def test_the_api_may_start_executions_of_this_state_machine_only(template: Template) -> None:
    statements = q.statements(template, "ApiRole")
    start = [s for s in statements if "states:StartExecution" in q.actions(s)]
    # This machine's executions (finalize), and the export job's (POST /v1/exports).
    resources = [
        r
        for s in start
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]  # CDK may merge the two
    assert sorted(r["Ref"][:15] for r in resources) == ["ExportStateMach", "PipelineStateMa"]
    api = next(
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "functions.api.handler.lambda_handler"
    )
    variables = api["Properties"]["Environment"]["Variables"]
    assert variables["PRTRACE_STATE_MACHINE_ARN"]["Ref"].startswith("PipelineStateMachine")


def test_pipeline_steps_write_only_their_own_objects(template: Template) -> None:
    def writes(prefix: str) -> list[str]:
        return [
            json.dumps(s["Resource"])
            for s in q.statements(template, prefix)
            if "s3:PutObject" in q.actions(s)
        ]

    (assemble_writes,) = writes("PipelineAssembleRole")
    assert '/document.json"]]}' in assemble_writes
    assert '/manifest/assembled.json"]]}' in assemble_writes  # the draft manifest
    assert assemble_writes.count("tenants/*/traces/*/") == 2
    assert [w.endswith('/judge/result.json"]]}') for w in writes("PipelineJudgeRole")] == [True]
    # Record writes the signed manifest and its signature, and the Parquet traces table's
    # row and events table's file (prtrace.dataset.trace_table, event_table), nothing else.
    (record_writes,) = writes("PipelineRecordRole")  # one statement (CDK merges them)
    assert '/manifest.json"]]}' in record_writes
    assert '/manifest.dsse.json"]]}' in record_writes
    assert '/tenants/*/parquet/traces/*"]]}' in record_writes
    assert '/tenants/*/parquet/events/*"]]}' in record_writes
    assert record_writes.count("tenants/*/traces/*/") == 2
    assert len(json.loads(record_writes)) == 4  # nothing else
    # The QA task writes nothing itself; PrepareQa signs its report's write-once PUT and
    # the POST of its content-addressed artifacts (prtrace.qa.grant).
    assert writes("PipelineQaTaskDefinitionTaskRole") == []
    (grant_writes,) = writes("PipelineQaGrantRole")
    assert '/qa/report.json"]]}' in grant_writes
    assert '/artifacts/sha256/*"]]}' in grant_writes
    assert len(json.loads(grant_writes)) == 2  # nothing else
    # Ingestion writes chunks and artifacts only, never the pipeline's products.
    (api_writes,) = writes("ApiRole")
    assert "/chunks/*" in api_writes
    assert "/artifacts/sha256/*" in api_writes
    assert "document" not in api_writes
    assert "/qa/" not in api_writes
    assert "/judge/" not in api_writes
    record_table = [
        a
        for s in q.statements(template, "PipelineRecordRole")
        if "StorageTraces" in json.dumps(s["Resource"])
        for a in q.actions(s)
    ]
    assert sorted(record_table) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]


def test_the_judge_reads_only_the_named_openai_secret(template: Template) -> None:
    statements = q.statements(template, "PipelineJudgeRole")
    secret = next(s for s in statements if "secretsmanager:GetSecretValue" in q.actions(s))
    assert "secret:prtrace/openai-api-key-??????" in json.dumps(secret["Resource"])
    judge = next(
        f
        for f in template.find_resources("AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "functions.judge.handler.lambda_handler"
    )
    assert judge["Properties"]["MemorySize"] >= 1024
    variables = judge["Properties"]["Environment"]["Variables"]
    assert variables["PRTRACE_OPENAI_SECRET_NAME"] == "prtrace/openai-api-key"
    assert "OPENAI_API_KEY" not in variables


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"qa_task_cpu": "300"}, "qa_task_cpu"),
        ({"qa_task_cpu": "256", "qa_task_memory_mb": "4096"}, "qa_task_memory_mb"),
        ({"qa_wall_timeout_s": "5"}, "qa_wall_timeout_s"),
        ({"judge_mode": "sometimes"}, "judge_mode"),
        ({"qa_base_image": "python:3.11 --network=host"}, "qa_base_image"),
        ({"qa_base_image": "python@sha256:abc"}, "qa_base_image"),
    ],
)
def test_bad_pipeline_settings_fail_naming_the_setting(context: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        StackConfig.resolve(context)


def test_executions_that_end_badly_are_handed_to_record(template: Template) -> None:
    rules = [
        r["Properties"]
        for r in template.find_resources("AWS::Events::Rule").values()
        if r["Properties"].get("EventPattern", {}).get("source") == ["aws.states"]
    ]
    assert len(rules) == 1
    pattern, target = rules[0]["EventPattern"], rules[0]["Targets"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    machines = template.find_resources("AWS::StepFunctions::StateMachine")
    assert pattern["detail"]["stateMachineArn"] == [{"Ref": next(iter(machines))}]
    functions = template.find_resources("AWS::Lambda::Function")
    (record,) = [k for k, f in functions.items() if "record.handler" in f["Properties"]["Handler"]]
    assert [t["Arn"] for t in target] == [{"Fn::GetAtt": [record, "Arn"]}]
    assert target[0]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    # EventBridge may invoke Record and the sweeper, nothing else.
    permissions = [
        p["Properties"]
        for p in template.find_resources("AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    (sweeper,) = [k for k, f in functions.items() if "sweeper" in f["Properties"]["Handler"]]
    assert sorted(p["FunctionName"]["Fn::GetAtt"][0] for p in permissions) == sorted(
        [record, sweeper]
    )


def test_the_sweeper_runs_hourly_and_may_only_end_traces(template: Template) -> None:
    functions = template.find_resources("AWS::Lambda::Function")
    (sweeper,) = [k for k, f in functions.items() if "sweeper" in f["Properties"]["Handler"]]
    schedules = [
        r["Properties"]
        for r in template.find_resources("AWS::Events::Rule").values()
        if "ScheduleExpression" in r["Properties"]
    ]
    assert [(s["ScheduleExpression"], s["Targets"][0]["Arn"]) for s in schedules] == [
        ("rate(1 hour)", {"Fn::GetAtt": [sweeper, "Arn"]})
    ]
    environment = functions[sweeper]["Properties"]["Environment"]["Variables"]
    assert int(environment["PRTRACE_STUCK_AFTER_S"]) > PIPELINE_TIMEOUT_S
    role = functions[sweeper]["Properties"]["Role"]["Fn::GetAtt"][0]
    actions = set()
    for policy in template.find_resources("AWS::IAM::Policy").values():
        if {"Ref": role} in policy["Properties"]["Roles"]:
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                found = statement["Action"]
                actions |= {found} if isinstance(found, str) else set(found)
    assert {a for a in actions if a.startswith(("dynamodb:", "s3:"))} == {
        "dynamodb:Query",
        "dynamodb:GetItem",
        "dynamodb:UpdateItem",
        "s3:PutObject",  # the ended trace's row in the Parquet traces table, nothing else
    }
    (writes,) = [
        json.dumps(s["Resource"]) for s in q.statements(template, "PipelineSweeperRole")
        if "s3:PutObject" in q.actions(s)
    ]  # fmt: skip
    assert '/tenants/*/parquet/traces/*"]]}' in writes
    assert len(json.loads(writes)) == 1


def test_the_qa_image_builds_on_the_configured_base(synthesized: tuple[App, Path]) -> None:
    app, outdir = synthesized
    image = _qa_image(outdir)
    assert image["source"]["dockerBuildArgs"] == {"PYTHON_IMAGE": StackConfig().qa_base_image}
    # The default is pinned by the official image's index digest, as the Dockerfiles' are:
    # synth warns only about a base given by tag alone.
    assert StackConfig().qa_base_image.startswith("python:3.11-slim-bookworm@sha256:")
    for dockerfile in ("functions/qa_runner/Dockerfile", "functions/export_job/Dockerfile"):
        text = (ROOT / dockerfile).read_text()
        assert f"ARG PYTHON_IMAGE={StackConfig().qa_base_image}\n" in text, dockerfile
    stack = app.node.find_child("prtrace-test")
    Annotations.from_stack(stack).has_no_warning(  # type: ignore[arg-type]
        "*", Match.string_like_regexp("pinned by tag only")
    )


def test_a_digest_pinned_qa_base_is_accepted() -> None:
    pinned = "python:3.11-slim-bookworm@sha256:" + "0" * 64
    assert StackConfig.resolve({"qa_base_image": pinned}).qa_base_image == pinned
