"""The dataset export job in the synthesized stack: its state machine runs exactly the
committed definition, its task is hardened like the QA task and runs what its image runs,
its role reads what an export reads and writes only the export's objects, and the API may
start and read this machine's executions only."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Template

from infra_cdk.assets import ROOT
from infra_cdk.export_job import ASL_PATH, EXPORT_ENTRYPOINT, EXPORT_USER
from tests.infra import template_queries as q

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


def _export(template: Template, resource_type: str) -> dict[str, Any]:
    found = [v for k, v in template.find_resources(resource_type).items() if k.startswith("Export")]
    assert len(found) == 1, found
    return dict(found[0]["Properties"])


def test_the_definition_is_the_committed_file_with_every_placeholder_filled(
    template: Template,
) -> None:
    text, substitutions = _export(template, "AWS::StepFunctions::StateMachine")["DefinitionString"][
        "Fn::Sub"
    ]
    assert text == ASL_PATH.read_text()
    assert set(PLACEHOLDER.findall(text)) == set(substitutions)
    definition = json.loads(PLACEHOLDER.sub("x", text))
    run = definition["States"]["RunExport"]
    assert run["Resource"] == "arn:aws:states:::ecs:runTask.sync"
    assert run["TimeoutSeconds"] < definition["TimeoutSeconds"]
    environment = run["Parameters"]["Overrides"]["ContainerOverrides"][0]["Environment"]
    assert {e["Name"]: e["Value.$"] for e in environment} == {
        "PRTRACE_EXPORT_TENANT": "$.tenant",
        "PRTRACE_EXPORT_ID": "$.export_id",
    }
    choice = definition["States"]["Exported?"]
    assert choice["Default"] == "ExportFailed"
    # Only an exit code present and 0 is success: a container that never ran has none.
    (success,) = choice["Choices"]
    assert success["Next"] == "Exported"
    assert success["And"] == [
        {"Variable": "$.task.container.ExitCode", "IsPresent": True},
        {"Variable": "$.task.container.ExitCode", "NumericEquals": 0},
    ]


def test_the_export_task_is_hardened_and_runs_what_its_image_runs(template: Template) -> None:
    definition = _export(template, "AWS::ECS::TaskDefinition")
    (container,) = definition["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] is True
    assert container["Privileged"] is False
    assert container["User"] == EXPORT_USER
    assert container["LinuxParameters"]["Capabilities"] == {"Drop": ["ALL"]}
    assert container["LinuxParameters"]["InitProcessEnabled"] is True
    assert container["MountPoints"] == [
        {"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"}  # noqa: S108
    ]
    assert definition["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    assert tuple(container["EntryPoint"]) == EXPORT_ENTRYPOINT
    environment = {e["Name"] for e in container["Environment"]}
    assert environment == {"PRTRACE_TRACES_TABLE", "PRTRACE_BUCKET", "PRTRACE_SIGNING_KEY_ID"}
    dockerfile = (ROOT / "functions" / "export_job" / "Dockerfile").read_text()
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.MULTILINE)
    assert entrypoint
    assert tuple(json.loads(entrypoint.group(1))) == EXPORT_ENTRYPOINT
    assert f"USER {EXPORT_USER}" in dockerfile


def test_the_export_task_writes_only_the_exports_objects(template: Template) -> None:
    role = "ExportTaskDefinitionTaskRole"
    statements = q.statements(template, role)
    writes = [json.dumps(s["Resource"]) for s in statements if "s3:PutObject" in q.actions(s)]
    (written,) = writes
    assert "/traces/" not in written
    assert written.count("tenants/*/exports/*/") == 4
    reads = " ".join(
        json.dumps(s["Resource"]) for s in statements if "s3:GetObject" in q.actions(s)
    )
    for shape in ("/document.json", "/qa/report.json", "/judge/result.json", "/artifacts/"):
        assert shape in reads
    # What an earlier attempt wrote, read back by a task started again.
    assert reads.count("tenants/*/exports/*/") == 4
    actions = sorted({a for s in statements for a in q.actions(s)})
    assert actions == [
        "dynamodb:Query", "kms:GetPublicKey", "kms:Sign",
        "s3:GetObject", "s3:ListBucket", "s3:PutObject",
    ]  # fmt: skip


def test_the_api_starts_and_reads_export_executions_only(template: Template) -> None:
    statements = q.statements(template, "ApiRole")
    states = [s for s in statements if any(a.startswith("states:") for a in q.actions(s))]
    described = [
        json.dumps(s["Resource"]) for s in states if "states:DescribeExecution" in q.actions(s)
    ]
    (execution,) = described
    assert ":execution:" in execution
    assert "ExportStateMachine" in execution
