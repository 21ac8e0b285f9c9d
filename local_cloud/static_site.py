"""Static files under a path prefix of the local gateway (the trace viewer at /viewer/),
served as CloudFront serves them from their bucket: GET and HEAD only, a fixed set of
content types, the viewer's security headers on every answer, nothing outside the
directory, and `<prefix>` itself redirected to `<prefix>` + `/` like a directory index."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from local_cloud.http_server import HttpReply

CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True)
class StaticSite:
    prefix: str  # e.g. "/viewer/"
    directory: Path
    headers: dict[str, str]

    def handles(self, path: str) -> bool:
        return path == self.prefix.rstrip("/") or path.startswith(self.prefix)

    def answer(self, method: str, path: str) -> HttpReply:
        if path == self.prefix.rstrip("/"):
            return self._reply(301, b"", [("location", self.prefix)])
        if method not in ("GET", "HEAD"):
            return self._reply(405, b"method not allowed\n", [("allow", "GET, HEAD")])
        name = path[len(self.prefix) :] or "index.html"
        root = self.directory.resolve()
        target = (root / name).resolve()
        # Only plain files directly named under the directory: no traversal, no dotfiles.
        if (
            not target.is_relative_to(root)
            or any(part.startswith(".") for part in Path(name).parts)
            or target.suffix not in CONTENT_TYPES
            or not target.is_file()
        ):
            return self._reply(404, b"not found\n", [])
        body = target.read_bytes()
        headers = [("content-type", CONTENT_TYPES[target.suffix]), ("cache-control", "no-cache")]
        return self._reply(200, b"" if method == "HEAD" else body, headers)

    def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> HttpReply:
        if not any(name == "content-type" for name, _ in headers):
            headers = [*headers, ("content-type", "text/plain; charset=utf-8")]
        return HttpReply(status, [*headers, *self.headers.items()], body)
