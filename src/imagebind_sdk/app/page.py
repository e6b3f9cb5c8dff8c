"""The page itself: ``GET /`` and ``/app/<file>`` from the package's ``static`` folder.

Served by an ASGI layer in front of the API (outside the API-key check): the page
holds no data, and with ``--api-key`` it must load to ask for the key, which it then
sends with every API call. Only the files shipped in ``static/`` are served (a fixed
list read at start-up: no path from the request reaches the file system), with a
Content-Security-Policy that allows this origin only: no CDN, font or analytics
request can leave the page.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from starlette.responses import Response

from ..server.security import ASGIApp, Receive, Scope, Send

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-cache", "Permissions-Policy": "camera=(self), microphone=(self)"}


def static_files() -> dict[str, tuple[bytes, str]]:
    """URL path -> (bytes, content type) of every shipped page file."""
    folder = resources.files(__package__).joinpath("static")
    files: dict[str, tuple[bytes, str]] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in STATIC_TYPES:
            files[f"/app/{entry.name}"] = (entry.read_bytes(), STATIC_TYPES[suffix])
    files["/"] = files["/app/index.html"]
    return files


def page_weight() -> int:
    """Bytes a browser downloads for the page (every shipped file; nothing else is fetched)."""
    return sum(len(data) for path, (data, _) in static_files().items() if path != "/")


class PageMiddleware:
    """Answers GET/HEAD of the page's files itself; everything else goes on to the API."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.files = static_files()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found: Any = None
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            found = self.files.get(scope["path"])
        if found is None:
            await self.app(scope, receive, send)
            return
        data, media_type = found
        response = Response(data if scope["method"] == "GET" else b"", media_type=media_type, headers=HEADERS)
        if scope["method"] == "HEAD":
            response.headers["content-length"] = str(len(data))
        await response(scope, receive, send)
