"""A trace's task (title and description) read from an issue URL.

GitHub and GitLab issues are read through their public APIs (GITHUB_TOKEN / GITLAB_TOKEN
are sent when set, for private repositories and rate limits). The description ends with
the issue URL and is redacted like everything else the recorder sends.
"""

from __future__ import annotations

import os
import re
from typing import Any, Final
from urllib.parse import quote

import httpx

from prtrace.schema import MAX_TEXT_LEN
from prtrace_client.redaction import redact

_GITHUB: Final = re.compile(r"^https://github\.com/([^/\s]+)/([^/\s]+)/(?:issues|pull)/(\d+)/?$")
_GITLAB: Final = re.compile(r"^https://(gitlab\.[^/\s]+)/(.+?)/-/issues/(\d+)/?$")
MAX_TITLE_LEN: Final = 256


class IssueError(Exception):
    """The issue could not be read; the message says why and what to pass instead."""


def task_from_issue(url: str, http: httpx.Client | None = None) -> dict[str, str]:
    """{"title", "description"} of the issue at `url`."""
    own = http is None
    client = http or httpx.Client(timeout=15, follow_redirects=True)
    try:
        if match := _GITHUB.match(url):
            owner, repo, number = match.groups()
            api = f"https://api.github.com/repos/{owner}/{repo}/issues/{number}"
            headers = {"accept": "application/vnd.github+json"}
            if os.environ.get("GITHUB_TOKEN"):
                headers["authorization"] = f"Bearer {os.environ['GITHUB_TOKEN']}"
            document = _get(client, api, headers, url)
            body = document.get("body") or ""
        elif match := _GITLAB.match(url):
            host, project, number = match.groups()
            api = f"https://{host}/api/v4/projects/{quote(project, safe='')}/issues/{number}"
            headers = {}
            if os.environ.get("GITLAB_TOKEN"):
                headers["private-token"] = os.environ["GITLAB_TOKEN"]
            document = _get(client, api, headers, url)
            body = document.get("description") or ""
        else:
            raise IssueError(
                f"cannot read the issue at {url}: only GitHub "
                "(https://github.com/OWNER/REPO/issues/N) and GitLab "
                "(https://gitlab.example.com/GROUP/PROJECT/-/issues/N) issue URLs are read; "
                "pass --title (and --description) instead"
            )
    finally:
        if own:
            client.close()
    title = str(document.get("title") or "").strip()
    if not title:
        raise IssueError(f"the issue at {url} has no title; pass --title")
    footer = f"\n\nIssue: {url}"
    description = redact(str(body)).text[: MAX_TEXT_LEN - len(footer)].rstrip() + footer
    return {"title": redact(title).text[:MAX_TITLE_LEN], "description": description.strip()}


def _get(client: httpx.Client, api: str, headers: dict[str, str], url: str) -> dict[str, Any]:
    try:
        response = client.get(api, headers=headers)
    except httpx.HTTPError as exc:
        raise IssueError(f"cannot read the issue at {url}: {exc}; pass --title") from None
    if response.status_code != 200:
        raise IssueError(
            f"cannot read the issue at {url}: {api} answered {response.status_code} "
            "(private repositories need GITHUB_TOKEN or GITLAB_TOKEN); pass --title"
        )
    document = response.json()
    if not isinstance(document, dict):
        raise IssueError(f"cannot read the issue at {url}: unexpected answer from {api}")
    return document
