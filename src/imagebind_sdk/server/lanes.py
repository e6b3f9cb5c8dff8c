"""Which lane a request's items queue in: ``X-ImageBind-Priority: interactive | bulk``.

Every HTTP request is interactive unless it says ``bulk``. The lane travels in a context
variable set once per request here, so every route and the work a request causes
(zero-shot label batches, the int8 calibration it triggers) queue in its lane without
each route passing it on: asyncio tasks copy the context they are created in.
"""

from __future__ import annotations

import contextvars

from .scheduler import LANES
from .security import ASGIApp, Receive, Scope, Send, error_response

HEADER = "X-ImageBind-Priority"
INTERACTIVE = LANES[0]
_HEADER_KEY = HEADER.lower().encode()

_lane: contextvars.ContextVar[str] = contextvars.ContextVar("imagebind_lane", default=INTERACTIVE)


def current_lane() -> str:
    """The lane of the request being served (interactive outside a request)."""
    return _lane.get()


class PriorityMiddleware:
    """Reads ``X-ImageBind-Priority`` (case-insensitive; absent: interactive); another value is a 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(_HEADER_KEY)
        lane = given.decode("latin-1").strip().lower() if given is not None else INTERACTIVE
        if lane not in LANES:
            shown = given.decode("latin-1")[:40] if given is not None else ""
            await error_response(scope["path"], 400, f"{HEADER}: expected one of {list(LANES)}, got {shown!r}")(
                scope, receive, send)
            return
        token = _lane.set(lane)
        try:
            await self.app(scope, receive, send)
        finally:
            _lane.reset(token)
