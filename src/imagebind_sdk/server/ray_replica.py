"""The model replica of Ray Serve: the single-process server's very app, called in-process.

A replica loads the model, builds ``create_app(model, **settings)`` and runs its lifespan
(the batching engine) inside the Ray actor. The gateway forwards each HTTP request as
plain data (:class:`Forwarded`); the replica answers ``(status, headers, body)``, so the
endpoints, limits and error shapes are those of ``imagebind-sdk serve`` by construction.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import ray
from ray import serve

logger = logging.getLogger(__name__)

REPLICA_HEADER = "x-imagebind-replica"
NODE_HEADER = "x-imagebind-node"

Headers = list[tuple[bytes, bytes]]


@dataclass
class Forwarded:
    """One HTTP request as data: what crosses from the gateway to a replica."""

    method: str
    path: str
    query_string: bytes = b""
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    client: tuple[str, int] | None = None


@dataclass
class Answer:
    """One HTTP response as data: what a replica sends back."""

    status: int
    headers: Headers
    body: bytes


async def call_asgi(app: Any, request: Forwarded) -> Answer:
    """Run one HTTP request through the ASGI ``app`` in this process and collect its answer."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http",
        "method": request.method, "path": request.path, "raw_path": request.path.encode(), "root_path": "",
        "query_string": request.query_string, "headers": request.headers, "client": request.client,
        "server": None,
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": request.body, "more_body": False}
        await asyncio.Future()  # the client stays connected: the gateway holds it
        return {"type": "http.disconnect"}  # pragma: no cover - never reached

    status, headers, chunks = 500, [], []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], list(message.get("headers") or [])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return Answer(status, headers, b"".join(chunks))


def load_model(model: dict[str, Any]) -> Any:
    """``ImageBind.load`` with the model spec built by :func:`imagebind_sdk.server.ray.model_spec`."""
    from ..api import ImageBind

    options = dict(model)
    checkpoint = options.pop("checkpoint")
    logger.info("replica loading %s (encoders: %s)", checkpoint, ", ".join(options.get("modalities") or []))
    return ImageBind.load(checkpoint, **options)


class ModelReplica:
    """A Ray Serve deployment class: one model and its engine per replica (wrapped by ``serve.deployment``)."""

    async def __init__(self, model: dict[str, Any], settings: dict[str, Any]) -> None:
        from .app import create_app

        # The constructor returns once the model is loaded: Serve routes to a replica only
        # after that, so a replica never answers "loading" (the gateway's readiness is theirs).
        loaded = await asyncio.to_thread(load_model, model)
        self.app = create_app(loaded, **settings)
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        context = serve.get_replica_context()
        self.identity: Headers = [(REPLICA_HEADER.encode(), context.replica_tag.encode()),
                                  (NODE_HEADER.encode(), ray.get_runtime_context().get_node_id().encode())]
        logger.info("replica %s ready", context.replica_tag)

    async def handle(self, request: Forwarded) -> Answer:
        """Serve one forwarded request; the answer names this replica and its node."""
        answer = await call_asgi(self.app, request)
        answer.headers += self.identity
        return answer

    def check_health(self) -> None:
        """Serve's periodic probe: a replica whose engine is gone is replaced."""
        if not self.app.state.service.ready or self.app.state.stopping:
            raise RuntimeError("the model's engine is not running")

    async def __del__(self) -> None:
        """Serve's graceful shutdown: stop the engine after in-flight requests drained."""
        lifespan = getattr(self, "_lifespan", None)
        if lifespan is not None:  # None: the constructor failed, there is nothing to stop
            self.app.state.stopping = True
            await lifespan.__aexit__(None, None, None)
