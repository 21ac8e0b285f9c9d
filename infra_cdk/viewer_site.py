"""What the viewer's two hosts share: where its files are, the path they are served
under, and the security headers every one of them carries (CloudFront's response headers
policy in infra_cdk.viewer, the local gateway's static site in local_cloud). No CDK
import here: the local cloud reads it at run time."""

from __future__ import annotations

from pathlib import Path
from typing import Final

VIEWER_ASSETS: Final = Path(__file__).resolve().parent / "viewer_assets"
VIEWER_PATH: Final = "/viewer/"  # where the files are served, locally and on CloudFront


def content_security_policy(connect_sources: list[str]) -> str:
    """Scripts, styles and images only from the page's own origin (no inline code, no CDN);
    fetches to the own origin (the API) and to the artifact downloads' origins."""
    connect = " ".join(["'self'", *connect_sources])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src {connect}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def security_headers(connect_sources: list[str]) -> dict[str, str]:
    """The headers every viewer file is served with (the local gateway sends these; the
    CloudFront response headers policy below sets the same)."""
    return {
        "content-security-policy": content_security_policy(connect_sources),
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "no-referrer",
        "strict-transport-security": "max-age=63072000; includeSubDomains",
        "cross-origin-opener-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=()",
    }


def api_export_name(prefix: str) -> str:
    return f"{prefix}-ApiEndpoint"


def bucket_export_name(prefix: str) -> str:
    return f"{prefix}-DataBucketName"
