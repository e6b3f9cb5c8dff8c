"""The HTTP ingress of Ray Serve: body limit, forwarding to a model replica, retry on a dead one.

Why a gateway at all: Ray Serve's own proxy answers 500 when the replica serving a request
dies (``ray.serve._private.http_util``: ``RayActorError`` -> 500). Embedding is a pure
function, so a request a dead replica held is safe to send again: the gateway retries it on
another replica a bounded number of times, then answers 503 with ``Retry-After`` in the
endpoint's error shape. A client thus gets its vectors or a 503, never a 500 for a replica's
death. The gateway holds no model (``num_cpus=0``) and buffers at most ``--max-request-mb``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from ray.exceptions import ObjectLostError, RayActorError
from ray.serve.exceptions import BackPressureError
from starlette.requests import Request
from starlette.responses import Response

from .ray_replica import Answer, Forwarded
from .security import error_response

logger = logging.getLogger(__name__)

# A replica that died (ActorDiedError), cannot be reached (ActorUnavailableError), or took
# the request's result with it: the request never finished, so it is sent again.
REPLICA_GONE = (RayActorError, ObjectLostError)
DEFAULT_RETRIES = 3
RETRY_PAUSE_S = 0.2  # lets Serve's router drop the dead replica before the next try
# Past the replica's own --request-timeout (its 504): only a request that no replica took.
FORWARD_MARGIN_S = 10.0
LIVE_PATH = "/.well-known/live"


class _TooLarge(Exception):
    """The body passed --max-request-mb."""


@dataclass(frozen=True)
class GatewayLimits:
    """What the gateway takes from the server's settings."""

    max_request_bytes: int
    retry_after_s: int
    request_timeout_s: float


class Gateway:
    """A Ray Serve ingress deployment class (wrapped by ``serve.deployment``)."""

    def __init__(self, replica: Any, limits: GatewayLimits, retries: int = DEFAULT_RETRIES) -> None:
        self.replica = replica  # the model replicas' DeploymentHandle
        self.max_bytes = limits.max_request_bytes
        self.retry_after = {"Retry-After": str(limits.retry_after_s)}
        self.timeout_s = limits.request_timeout_s + FORWARD_MARGIN_S
        self.retries = retries

    async def __call__(self, request: Request) -> Response:
        path = _app_path(request.scope)
        if path == LIVE_PATH:  # this process serves: the same answer as the single-process server
            return Response(status_code=204)
        try:
            body = await self._body(request)
        except _TooLarge:
            return error_response(path, 413, f"request body is over the {self.max_bytes / 2**20:g} MB limit "
                                  "(--max-request-mb)")
        client = (request.client.host, request.client.port) if request.client else None
        forwarded = Forwarded(request.method, path, request.scope.get("query_string", b""),
                              list(request.headers.raw), body, client)
        answer = await self._forward(forwarded)
        if isinstance(answer, Response):
            return answer
        response = Response(status_code=answer.status)
        response.raw_headers = answer.headers  # as the replica's app sent them, content-length included
        response.body = answer.body
        return response

    async def _body(self, request: Request) -> bytes:
        """The whole body, refused as soon as it passes the limit (by Content-Length or as it streams)."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            raise _TooLarge
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise _TooLarge
            chunks.append(chunk)
        return b"".join(chunks)

    async def _forward(self, forwarded: Forwarded) -> Answer | Response:
        """The replica's answer; another replica's when one dies; else a 503 (or 504) in the endpoint's shape."""
        for attempt in range(self.retries + 1):
            call = self.replica.handle.remote(forwarded)
            try:
                return await asyncio.wait_for(_result(call), self.timeout_s)
            except REPLICA_GONE as exc:
                logger.warning("a replica failed under %s %s (try %d of %d): %s", forwarded.method, forwarded.path,
                               attempt + 1, self.retries + 1, type(exc).__name__)
                await asyncio.sleep(RETRY_PAUSE_S)
            except BackPressureError:  # every replica's queue is full (max_queued_requests)
                return error_response(forwarded.path, 503, "overloaded: every replica's queue is full",
                                      self.retry_after)
            except asyncio.TimeoutError:
                call.cancel()
                return error_response(forwarded.path, 504, f"no replica answered within {self.timeout_s:g} s")
        return error_response(forwarded.path, 503, f"no replica could serve the request ({self.retries + 1} tries: "
                              "replicas are restarting)", self.retry_after)


def _app_path(scope: dict[str, Any]) -> str:
    """The path under the application's route prefix (Serve keeps the prefix in both ``path`` and
    ``root_path``); the app inside the replica serves its routes at ``/``."""
    path, prefix = scope["path"], scope.get("root_path", "")
    if prefix and path.startswith(prefix):
        return path[len(prefix):] or "/"
    return path


async def _result(call: Any) -> Answer:
    return await call
