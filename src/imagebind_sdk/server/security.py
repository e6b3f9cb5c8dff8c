"""ASGI middlewares for API keys, body-size limits and request metrics (outermost first: metrics)."""

from __future__ import annotations

import hmac
import re
import time
from typing import Any, Awaitable, Callable

from starlette.responses import JSONResponse

from .budget import MemoryBudget
from .errors import ApiError, openai_error_body
from .metrics import Metrics
from .settings import BODY_COPIES

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Paths that stay open without an API key: orchestrators probe them.
PUBLIC_PATHS = frozenset({"/.well-known/live", "/.well-known/ready"})
OPENAI_PATHS = ("/v1/embeddings",)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# "<PIL.Image.Image ... at 0x7f3a...>": a memory address helps an attacker defeat ASLR and
# tells a client nothing, so every error message loses them here, in one place.
MEMORY_ADDRESS = re.compile(r"\s+at\s+0x[0-9a-fA-F]{4,}|\b0x[0-9a-fA-F]{8,16}\b")


def scrub(message: str) -> str:
    """``message`` without memory addresses (``<object at 0x7f..>`` -> ``<object>``)."""
    return MEMORY_ADDRESS.sub(lambda m: "" if m.group(0)[0].isspace() else "0x…", message)


def error_response(path: str, status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": message}``, or OpenAI's error object on OpenAI-compatible paths."""
    message = scrub(message)
    body = openai_error_body(status, message) if path in OPENAI_PATHS else {"error": message}
    return JSONResponse(body, status_code=status, headers=headers)


class ApiKeyMiddleware:
    """``Authorization: Bearer KEY`` on every path but health; compared in constant time."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            what = "missing" if not given else "wrong"
            response = error_response(scope["path"], 401, f"{what} API key: send 'Authorization: Bearer <key>'",
                                      {"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over the limit, 503 past the memory budget, both before the body is held.

    A body reserves ``BODY_COPIES`` x its size in the budget: by Content-Length before a
    byte is read, or chunk by chunk as it streams. A refused body is read and dropped (so
    the client, still sending, gets the answer instead of a reset connection). The body is
    read here and replayed to the app, so the app never sees a partial body.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, budget: MemoryBudget) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.budget = budget

    def _too_large(self, scope: Scope) -> JSONResponse:
        limit_mb = self.max_bytes / 1024 / 1024
        return error_response(scope["path"], 413, f"request body is over the {limit_mb:g} MB limit (--max-request-mb)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        declared = int(length) if length is not None and length.isdigit() else None
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope)(scope, receive, send)
            return
        reserved = 0
        try:
            try:
                if declared is not None:
                    reserved = self._reserve(declared)
                body = await self._read(receive, streamed=declared is None)
                if body is None:  # the client left
                    return
                if declared is None:
                    reserved = self._reserve(len(body))
            except ApiError as exc:
                await _drain(receive, self.max_bytes)
                await error_response(scope["path"], exc.status, exc.message, exc.headers)(scope, receive, send)
                return
            except _TooLarge:
                await self._too_large(scope)(scope, receive, send)
                return
            await self._call_with_body(scope, receive, send, body)
        finally:
            self.budget.release(reserved)  # after the answer: the body was held until then

    def _reserve(self, size: int) -> int:
        self.budget.reserve(size * BODY_COPIES, f"request body ({size / 1024 / 1024:.1f} MB, held "
                                                f"{BODY_COPIES} times while parsed)")
        return size * BODY_COPIES

    async def _read(self, receive: Receive, streamed: bool) -> bytes | None:
        """The whole body; a streamed one reserves as it grows, so no chunk exceeds the budget."""
        chunks, size, held = [], 0, 0
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self.max_bytes:
                    raise _TooLarge
                if streamed:
                    held += self._reserve(len(chunk))
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
        finally:
            self.budget.release(held)  # the caller reserves the whole body in one piece
        body = b"".join(chunks)
        del chunks  # not held twice while the app runs
        return body

    async def _call_with_body(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for a disconnect as usual

        await self.app(scope, replay, send)


class _TooLarge(Exception):
    """The streamed body passed --max-request-mb."""


async def _drain(receive: Receive, max_bytes: int) -> None:
    """Read and drop the rest of a refused body (at most ``max_bytes``)."""
    size = 0
    while size <= max_bytes:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            return
        size += len(message.get("body", b""))


class MetricsMiddleware:
    """Counts requests by endpoint and status and times them (unknown paths share one label)."""

    def __init__(self, app: ASGIApp, metrics: Metrics, endpoints: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = scope["path"] if scope["path"] in self.endpoints else "other"
        status = 500
        started = time.perf_counter()

        async def sending(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)
