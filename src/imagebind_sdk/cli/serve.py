"""``imagebind-sdk serve``: the HTTP server (Weaviate multi2vec-bind, native and OpenAI APIs)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
from typing import Any

from ..config import MODALITIES
from .loading import CHECKPOINT_ENV, checkpoint_of, load_model
from .errors import CliError, UsageError
from .options import PROG

logger = logging.getLogger("imagebind_sdk.cli")

API_KEY_ENV = "IMAGEBIND_API_KEY"
SERVE_INSTALL = "pip install 'imagebind-sdk[serve]'"

DESCRIPTION = """\
Serve the model over HTTP: Weaviate multi2vec-bind compatible endpoints
(/vectorize, /meta, /.well-known/live|ready), the native API (/v1/embed,
/v1/zero-shot), OpenAI-compatible text embeddings (/v1/embeddings) and
Prometheus /metrics. Concurrent requests are batched per input kind.
Binds 127.0.0.1 unless --host says otherwise. Needs the serve extra:
pip install "imagebind-sdk[serve]".
"""

EPILOG = f"""\
examples:
  {PROG} serve --checkpoint imagebind-huge --port 8080
  {PROG} serve --modalities text --max-batch-size 64 --api-key secret
  BIND_INFERENCE_API=http://127.0.0.1:8080   # point Weaviate's multi2vec-bind here
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``serve``."""
    p = subparsers.add_parser(
        "serve", parents=parents, help="serve embeddings over HTTP (Weaviate, native, OpenAI APIs)",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--modalities", metavar="LIST", default=",".join(MODALITIES),
                   help="encoders to load, comma-separated (default: all six)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    p.add_argument("--max-batch-size", type=int, default=32, metavar="N", help="items per encoder call (default: 32)")
    p.add_argument("--max-wait-ms", type=float, default=10.0, metavar="MS",
                   help="how long a queued item waits for companions (default: 10)")
    p.add_argument("--max-queue", type=int, default=1024, metavar="N",
                   help="items in flight before answering 503 (default: 1024)")
    p.add_argument("--max-request-mb", type=float, default=64.0, metavar="MB",
                   help="largest request body, else 413 (default: 64)")
    p.add_argument("--api-key", default=None, metavar="KEY",
                   help=f"require 'Authorization: Bearer KEY' on all but health (default: ${API_KEY_ENV})")
    p.add_argument("--workers-preprocess", type=int, default=min(4, os.cpu_count() or 1), metavar="N",
                   help="threads decoding and preprocessing media (default: CPUs, at most 4)")
    p.add_argument("--request-timeout", type=float, default=120.0, metavar="S",
                   help="seconds per request before 504 (default: 120)")
    p.add_argument("--shutdown-timeout", type=float, default=30.0, metavar="S",
                   help="on SIGTERM, seconds to finish in-flight requests (default: 30)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser requests from ORIGIN (repeatable; default: no CORS)")
    p.add_argument("--model-name", default=None, help="model name in answers (default: the checkpoint)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default: info)")
    p.add_argument("--index", action="append", default=None, metavar="DIR",
                   help="also serve the search page and API over this bulk output (see `app`; repeatable)")
    p.set_defaults(func=run)


def _modalities(text: str) -> list[str]:
    wanted = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in MODALITIES]
    if unknown or not wanted:
        raise UsageError(f"--modalities: expected names from {', '.join(MODALITIES)}, got {text!r}")
    return wanted


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The ``create_app`` settings given by the options."""
    return dict(
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
        max_request_mb=args.max_request_mb, api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        workers_preprocess=args.workers_preprocess, request_timeout_s=args.request_timeout,
        shutdown_timeout_s=args.shutdown_timeout, cors_origins=tuple(args.cors_origin),
        model_name=args.model_name or checkpoint_of(args),
    )


def _app_factory(args: argparse.Namespace, create_app: Any) -> Any:
    """``create_app``, or the search page's app (``serve --index``, ``imagebind-sdk app``)."""
    if getattr(args, "app_factory", None) is not None:
        return args.app_factory
    if args.index:
        from ..app.server import index_checkpoint, serving_index

        if not args.checkpoint and not os.environ.get(CHECKPOINT_ENV):  # the checkpoint that built the index
            args.checkpoint = index_checkpoint(args.index[0])
        return lambda load, **settings: serving_index(load, args.index, **settings)
    return create_app


def run(args: argparse.Namespace) -> int:
    try:  # a missing optional library is exit status 1 with the install command, not a usage error
        import uvicorn

        from ..server.app import create_app  # imports FastAPI now, not when the app is built
    except ImportError as exc:
        raise CliError(f"serving needs FastAPI, uvicorn and prometheus-client, which cannot be imported ({exc}): "
                       f"{SERVE_INSTALL}") from None
    modalities = _modalities(args.modalities)
    server: Any = None

    def load() -> Any:
        try:
            return load_model(args, modalities)
        except BaseException:
            server.should_exit = True  # a server that can never be ready should not linger
            raise

    try:
        app = _app_factory(args, create_app)(load, **settings_of(args))
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on",
        timeout_graceful_shutdown=math.ceil(args.shutdown_timeout),
    )
    server = uvicorn.Server(config)
    # uvicorn re-raises the signal that stopped it once it is done; a no-op handler for
    # SIGTERM makes a drained shutdown exit 0 instead of dying by the signal.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)
    load_error = app.state.service.load_error
    if load_error is not None:
        raise load_error
    if not server.started:
        logger.error("the server did not start (port %d in use?)", args.port)
        return 1
    return 0
