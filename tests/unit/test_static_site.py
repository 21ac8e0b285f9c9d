"""The local gateway's static site (the viewer at /viewer/): files from its directory only,
GET and HEAD, known content types, the security headers on every answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra_cdk.viewer_site import VIEWER_ASSETS, security_headers
from local_cloud.static_site import StaticSite


@pytest.fixture
def site(tmp_path: Path) -> StaticSite:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>x</title>")
    (root / "app.js").write_text("export {};")
    (root / ".secret.js").write_text("no")
    (root / "notes.txt").write_text("not a served type")
    (tmp_path / "outside.js").write_text("no")
    return StaticSite("/viewer/", root, {"x-frame-options": "DENY"})


def header(reply, name: str) -> str | None:
    return next((v for k, v in reply.headers if k == name), None)


def test_the_index_and_files_are_served_with_their_types_and_headers(site):
    index = site.answer("GET", "/viewer/")
    assert index.status == 200
    assert index.body.startswith(b"<!doctype html>")
    assert header(index, "content-type") == "text/html; charset=utf-8"
    assert header(index, "x-frame-options") == "DENY"
    script = site.answer("GET", "/viewer/app.js")
    assert header(script, "content-type") == "text/javascript; charset=utf-8"
    head = site.answer("HEAD", "/viewer/app.js")
    assert (head.status, head.body) == (200, b"")


def test_the_bare_prefix_redirects_to_the_directory(site):
    reply = site.answer("GET", "/viewer")
    assert reply.status == 301
    assert header(reply, "location") == "/viewer/"


@pytest.mark.parametrize(
    "path",
    [
        "/viewer/../outside.js",
        "/viewer/.secret.js",
        "/viewer/notes.txt",
        "/viewer/missing.js",
        "/viewer/%2e%2e/outside.js",
    ],
)
def test_nothing_outside_the_served_files(site, path):
    reply = site.answer("GET", path)
    assert reply.status == 404
    assert header(reply, "x-frame-options") == "DENY"


def test_writes_are_refused(site):
    reply = site.answer("POST", "/viewer/index.html")
    assert reply.status == 405
    assert header(reply, "allow") == "GET, HEAD"


def test_the_site_handles_only_its_prefix(site):
    assert site.handles("/viewer/app.js")
    assert site.handles("/viewer")
    assert not site.handles("/viewerx")
    assert not site.handles("/v1/traces")


def test_the_viewer_page_loads_only_its_own_modules():
    html = (VIEWER_ASSETS / "index.html").read_text()
    assert '<script type="module" src="app.js"></script>' in html
    assert "<script>" not in html  # no inline script: the CSP forbids it
    assert "style=" not in html
    csp = security_headers([])["content-security-policy"]
    assert "script-src 'self';" in csp
