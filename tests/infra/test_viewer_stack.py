"""The viewer's stack: private bucket behind CloudFront (OAC, HTTPS only, security headers
with a strict CSP), the API at /v1/* on the same origin (GET/HEAD, no caching), the files
deployed by BucketDeployment; cdk-nag reports nothing unacknowledged."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from infra_cdk.viewer_app import build_viewer_app
from infra_cdk.viewer_site import VIEWER_ASSETS, security_headers

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    outdir = tmp_path_factory.mktemp("viewer.out")
    app = build_viewer_app({"stage": "test"}, outdir=str(outdir))
    app.synth()
    stack = app.node.find_child("prtrace-test-viewer")
    return Template.from_stack(stack).to_json(), outdir  # type: ignore[arg-type]


def resources(template: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template["Resources"].values() if r["Type"] == kind]


def test_cdk_nag_reports_nothing_unacknowledged(synthesized):
    _, outdir = synthesized
    report = json.loads((outdir / "validation-report.json").read_text())
    violations = [v for p in report.get("pluginReports", []) for v in p.get("violations", [])]
    assert violations == []


def test_the_site_bucket_is_private_and_read_through_origin_access_control(synthesized):
    template, _ = synthesized
    (oac,) = resources(template, "AWS::CloudFront::OriginAccessControl")
    assert oac["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    buckets = resources(template, "AWS::S3::Bucket")
    for bucket in buckets:
        block = bucket["PublicAccessBlockConfiguration"]
        assert all(
            block[k] for k in ("BlockPublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
        )
    (distribution,) = resources(template, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    s3_origin = next(o for o in config["Origins"] if "S3OriginConfig" in o)
    assert "OriginAccessControlId" in s3_origin


def test_https_only_and_the_api_behind_the_same_origin_read_only_uncached(synthesized):
    template, _ = synthesized
    (distribution,) = resources(template, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    (api,) = config["CacheBehaviors"]
    assert api["PathPattern"] == "/v1/*"
    assert api["ViewerProtocolPolicy"] == "https-only"
    assert api["AllowedMethods"] == ["GET", "HEAD"]
    assert api["CachePolicyId"] == "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # CachingDisabled
    api_origin = next(o for o in config["Origins"] if "CustomOriginConfig" in o)
    assert api_origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert config["Logging"]["Prefix"] == "cloudfront/"


def test_every_response_carries_the_strict_csp_and_hardening_headers(synthesized):
    template, _ = synthesized
    (policy,) = resources(template, "AWS::CloudFront::ResponseHeadersPolicy")
    security = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    csp = json.dumps(security["ContentSecurityPolicy"]["ContentSecurityPolicy"])
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "frame-ancestors 'none'", "base-uri 'none'"):  # fmt: skip
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert security["FrameOptions"]["FrameOption"] == "DENY"
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    (distribution,) = resources(template, "AWS::CloudFront::Distribution")
    config = distribution["DistributionConfig"]
    for behavior in [config["DefaultCacheBehavior"], *config["CacheBehaviors"]]:
        assert "ResponseHeadersPolicyId" in behavior


def test_the_files_are_deployed_under_the_viewer_path(synthesized):
    template, _ = synthesized
    (deployment,) = [
        r["Properties"] for r in template["Resources"].values()
        if r["Type"] == "Custom::CDKBucketDeployment"
    ]  # fmt: skip
    assert deployment["DestinationBucketKeyPrefix"] == "viewer"
    assert deployment["DistributionPaths"] == ["/viewer/*"]


def test_the_viewer_needs_no_build_and_no_cdn():
    """Plain files: no bundler output, no package manifest, nothing loaded from elsewhere."""
    names = sorted(p.name for p in VIEWER_ASSETS.iterdir())
    assert names == ["api.js", "app.js", "dom.js", "index.html", "viewer.css"]
    for path in VIEWER_ASSETS.iterdir():
        text = path.read_text()
        assert "http://" not in text
        assert "https://" not in text  # no CDN, no external font or script
        assert "innerHTML" not in text  # data becomes text nodes only
        assert "eval(" not in text


def test_local_and_cloudfront_headers_are_one_definition():
    headers = security_headers(["http://localhost:4566"])
    assert "connect-src 'self' http://localhost:4566" in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
