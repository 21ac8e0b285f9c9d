"""Synthesize the operators' stack and read what the local cloud needs from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra_cdk.assets import ROOT

LOCAL_ACCOUNT = "123456789012"  # moto's default account
LOCAL_REGION = "us-east-1"


class SynthError(RuntimeError):
    pass


@dataclass(frozen=True)
class FileAsset:
    source: Path
    packaging: str  # "zip" (a directory) or "file"
    bucket: str  # may hold ${AWS::AccountId} / ${AWS::Region}
    key: str


@dataclass(frozen=True)
class StackAssembly:
    stack_name: str
    template: dict[str, Any]
    assets: list[FileAsset]
    outdir: Path

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
        }


def function_layers(
    assembly: StackAssembly, physical_ids: dict[str, str]
) -> dict[str, tuple[Path, ...]]:
    """Deployed function name -> the asset directories of its layers, in order."""
    resources = assembly.template["Resources"]
    by_key = {asset.key: asset.source for asset in assembly.assets}
    layers: dict[str, tuple[Path, ...]] = {}
    for logical_id, resource in assembly.resources_of_type("AWS::Lambda::Function").items():
        if logical_id not in physical_ids:
            continue
        refs = resource["Properties"].get("Layers", [])
        layers[physical_ids[logical_id]] = tuple(
            by_key[resources[ref["Ref"]]["Properties"]["Content"]["S3Key"]] for ref in refs
        )
    return layers


def synthesize(
    outdir: Path, *, context: dict[str, str] | None = None, build_deps: bool = False
) -> StackAssembly:
    """Run the CDK app as `cdk synth` would (a separate process with its own node). Unless
    `build_deps`, the dependency layer is an empty placeholder: local workers import
    third-party packages from this environment."""
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_DEFAULT_ACCOUNT": LOCAL_ACCOUNT,
        "CDK_DEFAULT_REGION": LOCAL_REGION,
        "PRTRACE_LAMBDA_DEPS": "build" if build_deps else "skip",
        "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    }
    if context:
        env["CDK_CONTEXT_JSON"] = json.dumps(context)
    done = subprocess.run(
        [sys.executable, "-m", "infra_cdk.app"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise SynthError(f"cdk synth failed (exit {done.returncode}):\n{tail}")
    return read_assembly(outdir)


def read_assembly(outdir: Path) -> StackAssembly:
    manifest = json.loads((outdir / "manifest.json").read_text())
    stacks = [
        name
        for name, artifact in manifest["artifacts"].items()
        if artifact["type"] == "aws:cloudformation:stack"
    ]
    if len(stacks) != 1:
        raise SynthError(f"expected one stack in {outdir}, found {stacks}")
    stack_name = stacks[0]
    template = json.loads((outdir / f"{stack_name}.template.json").read_text())
    asset_manifest = json.loads((outdir / f"{stack_name}.assets.json").read_text())
    assets = [
        FileAsset(
            source=outdir / entry["source"]["path"],
            packaging=entry["source"].get("packaging", "file"),
            bucket=destination["bucketName"],
            key=destination["objectKey"],
        )
        for entry in asset_manifest.get("files", {}).values()
        for destination in entry["destinations"].values()
    ]
    return StackAssembly(stack_name=stack_name, template=template, assets=assets, outdir=outdir)
