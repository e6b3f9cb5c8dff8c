"""``create_app(model, **settings)``: the ASGI app with every API family, limits and metrics."""

from __future__ import annotations

import contextlib
import logging
from typing import Any, AsyncIterator, Callable, Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from . import routes_native, routes_openai, routes_weaviate
from .errors import ApiError
from .lanes import HEADER as PRIORITY_HEADER
from .lanes import PriorityMiddleware
from .metrics import Metrics
from .security import ApiKeyMiddleware, BodyLimitMiddleware, MetricsMiddleware, error_response
from .service import Service
from .settings import Settings

logger = logging.getLogger(__name__)

ROUTERS = (routes_weaviate.router, routes_native.router, routes_openai.router)


def create_app(model: Any, *, routers: Sequence[APIRouter] = (), **settings: Any) -> FastAPI:
    """The ASGI app serving ``model`` (an ``ImageBind``, or a no-argument function loading one).

    With a loader, the app answers ``/.well-known/live`` at once and ``/.well-known/ready``
    (204) once the model is loaded in a background thread. ``settings`` are the fields of
    :class:`~imagebind_sdk.server.settings.Settings` (``max_batch_size=32``, ``api_key=...``).
    ``routers``: more API routes behind the same key, limits and metrics (the search page's).

    >>> app = create_app(ImageBind.load("imagebind-huge"), max_batch_size=16)  # doctest: +SKIP
    >>> uvicorn.run(app, port=8080)  # doctest: +SKIP
    """
    config = Settings.from_kwargs(**settings)
    metrics = Metrics()
    service = Service(config, metrics, model)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        yield
        app.state.stopping = True
        service.stop()  # the HTTP server has drained in-flight requests by now

    app = FastAPI(title="imagebind-sdk", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.service = service
    app.state.stopping = False
    all_routers = (*ROUTERS, *routers)
    for router in all_routers:
        app.include_router(router)
    _add_metrics_route(app, metrics)
    _add_error_handlers(app)
    # Metric labels: the known paths (any other path shares one label, bounding cardinality).
    endpoints = frozenset(route.path for router in all_routers for route in router.routes) | {"/metrics"}
    # Added innermost first: metrics (outermost) count every answer, 401 and 413 included.
    app.add_middleware(PriorityMiddleware)  # the request's lane (X-ImageBind-Priority), see lanes.py
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_request_bytes, budget=service.budget)
    if config.api_key is not None:
        app.add_middleware(ApiKeyMiddleware, api_key=config.api_key)
    if config.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "HEAD", "POST"], allow_headers=["Authorization", "Content-Type", PRIORITY_HEADER])
    app.add_middleware(MetricsMiddleware, metrics=metrics, endpoints=endpoints)
    return app


def _add_metrics_route(app: FastAPI, metrics: Metrics) -> None:
    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)


def _add_error_handlers(app: FastAPI) -> None:
    def handler(status_of: Callable[[Any], int], message_of: Callable[[Any], str]) -> Any:
        async def handle(request: Request, exc: Any) -> Response:
            headers = getattr(exc, "headers", None)
            return error_response(request.url.path, status_of(exc), message_of(exc), dict(headers or {}))
        return handle

    app.add_exception_handler(ApiError, handler(lambda e: e.status, lambda e: e.message))
    app.add_exception_handler(StarletteHTTPException, handler(lambda e: e.status_code, lambda e: str(e.detail)))
    app.add_exception_handler(RequestValidationError, handler(lambda e: 400, lambda e: str(e.errors())))
    # Anything else is a server fault: the endpoint's own JSON shape, the type only (the
    # details, which may hold paths or input, go to the log; Starlette logs the traceback).
    app.add_exception_handler(Exception, handler(lambda e: 500, lambda e: f"internal error: {type(e).__name__}"))
