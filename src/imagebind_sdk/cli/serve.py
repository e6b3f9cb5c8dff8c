"""``imagebind-sdk serve``: the HTTP server (Weaviate multi2vec-bind, native and OpenAI APIs)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import signal
import socket
import sys
import threading
from typing import Any

from ..model.config import MODALITIES
from .loading import CHECKPOINT_ENV, checkpoint_of, load_model
from .errors import CliError, UsageError
from .options import PROG
from .serve_ray import check_options, register_options

logger = logging.getLogger("imagebind_sdk.cli")

API_KEY_ENV = "IMAGEBIND_API_KEY"
SERVE_INSTALL = "pip install 'imagebind-sdk[serve]'"
# How long an idle keep-alive connection stays open. It must outlast the clients' own idle
# expiry (httpx 5 s, aiohttp 15 s, Go's net/http -- Weaviate -- 90 s): when the server
# closes first, a request the client sends at that moment finds the connection reset
# (uvicorn's 5 s equalled httpx's, and 32 busy clients met that race).
KEEP_ALIVE_S = 120

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
  {PROG} serve --engine ray --autoscale 1:4 --num-gpus-per-replica 1 --ray-address auto
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
    p.add_argument("--max-batch-gflops", type=float, default=2048.0, metavar="G",
                   help="estimated compute per encoder call; a longer item (a video's views) goes in several "
                        "calls of at most this (default: 2048, ~6 imagebind-huge images; see docs/serving.md)")
    p.add_argument("--bulk-every", type=int, default=4, metavar="N",
                   help="while requests sent with 'X-ImageBind-Priority: bulk' wait, every Nth encoder call "
                        "is theirs; interactive requests go first otherwise (default: 4)")
    p.add_argument("--max-queue", type=int, default=1024, metavar="N",
                   help="items in flight before answering 503 (default: 1024)")
    p.add_argument("--max-request-mb", type=float, default=64.0, metavar="MB",
                   help="largest request body, else 413 (default: 64)")
    p.add_argument("--max-inflight-mb", type=float, default=256.0, metavar="MB",
                   help="request bodies and decoded inputs held at once, server-wide, "
                        "else 503 with Retry-After (default: 256)")
    p.add_argument("--max-labels", type=int, default=1000, metavar="N",
                   help="zero-shot labels per request, else 413 (default: 1000)")
    p.add_argument("--cache-mb", type=float, default=0.0, metavar="MB",
                   help="answer identical texts and media bytes from an LRU cache of this many MB "
                        "(default: 0, no cache)")
    p.add_argument("--ranges", action="append", default=[], metavar="[MODEL=]FILE",
                   help="int8/uint8 ranges for /v1/embed's encoding instead of the model's calibration (a JSON "
                        "file of Ranges.save, a (2, dim) .npy or an int8 bulk output folder); MODEL: an adapter's "
                        "name (default: the base); repeatable")
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
    p.add_argument("--model-name", default=None,
                   help="model name in answers (default: the checkpoint's alias, repo id or folder name)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default: info)")
    p.add_argument("--index", action="append", default=None, metavar="DIR",
                   help="also serve the search page and API over this bulk output (see `app`; repeatable)")
    register_options(p)
    p.set_defaults(func=run)


def _modalities(text: str) -> list[str]:
    wanted = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in wanted if m not in MODALITIES]
    if unknown or not wanted:
        raise UsageError(f"--modalities: expected names from {', '.join(MODALITIES)}, got {text!r}")
    return wanted


def _api_key(args: argparse.Namespace) -> str | None:
    """--api-key, else $IMAGEBIND_API_KEY, else None; an empty value given either way is
    kept, so that Settings refuses it instead of serving without authentication."""
    return args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    """The ``create_app`` settings given by the options."""
    from ..server.settings import public_name

    return dict(
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue,
        max_batch_gflops=args.max_batch_gflops, bulk_every=args.bulk_every,
        max_request_mb=args.max_request_mb, max_inflight_mb=args.max_inflight_mb, max_labels=args.max_labels,
        cache_mb=args.cache_mb, api_key=_api_key(args), workers_preprocess=args.workers_preprocess,
        request_timeout_s=args.request_timeout, shutdown_timeout_s=args.shutdown_timeout,
        cors_origins=tuple(args.cors_origin), model_name=args.model_name or public_name(checkpoint_of(args)),
        ranges=_ranges_files(args.ranges),
    )


def _ranges_files(values: list[str]) -> dict[str | None, str]:
    """``--ranges [MODEL=]FILE`` options as {model name (None: the base): file}."""
    given: dict[str | None, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or os.path.exists(value):  # a file name may hold "="
            name, path = "", value
        if (name or None) in given:
            raise UsageError(f"--ranges: two files for {'the base model' if not name else repr(name)}")
        given[name or None] = path
    return given


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the model loads: a busy port is one line, exit 1."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {port}")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except (OSError, IndexError) as exc:
        raise CliError(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart need not wait for TIME_WAIT
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = " (another server uses it? choose one with --port)" if exc.errno == 98 else ""
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}") from None
    sock.set_inheritable(True)
    return sock


def _force_exit(timeout_s: float) -> None:
    logger.error("shutdown took longer than --shutdown-timeout (%g s): exiting with work still running", timeout_s)
    logging.shutdown()
    sys.stderr.flush()
    os._exit(1)  # threads stuck in native code cannot be joined


def _server(uvicorn: Any, config: Any, timeout_s: float) -> Any:
    """A uvicorn server that ends the process ``timeout_s`` after the first stop signal,
    whatever threads still run.

    uvicorn drains requests for most of the timeout; a decoder or the model busy past it
    would otherwise keep the process alive (until an orchestrator's SIGKILL). The timer
    thread only exists once shutdown began, and sleeps through a clean exit.
    """
    class Server(uvicorn.Server):  # type: ignore[misc, name-defined]
        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                timer = threading.Timer(timeout_s, _force_exit, args=(timeout_s,))
                timer.daemon = True
                timer.start()
                # The timer is a Python thread, which interpreter finalisation stops; should
                # finalisation itself outlast the deadline, the kernel ends the process.
                signal.signal(signal.SIGALRM, signal.SIG_DFL)
                signal.alarm(math.ceil(timeout_s) + 1)
            super().handle_exit(sig, frame)

    return Server(config)


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


def _warn_if_open(host: str, api_key: str | None) -> None:
    from ..server.settings import is_loopback

    if api_key is None and not is_loopback(host):
        logger.warning("serving on %s without an API key: anyone who can reach this address can use the "
                       "server (set --api-key or $%s)", host, API_KEY_ENV)


def run(args: argparse.Namespace) -> int:
    check_options(args)
    if getattr(args, "engine", "local") == "ray":
        from .serve_ray import run_ray

        _modalities(args.modalities)
        settings = settings_of(args)
        _warn_if_open(args.host, settings["api_key"])
        return run_ray(args, settings)
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
        settings = settings_of(args)
        app = _app_factory(args, create_app)(load, **settings)
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    sock = bind(args.host, args.port)
    _warn_if_open(args.host, settings["api_key"])
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, lifespan="on",
        timeout_keep_alive=KEEP_ALIVE_S,
        # Most of the shutdown timeout for draining requests; the rest for stopping the engine.
        timeout_graceful_shutdown=args.shutdown_timeout * 0.8,
    )
    server = _server(uvicorn, config, args.shutdown_timeout)
    # uvicorn re-raises the signal that stopped it once it is done; a no-op handler for
    # SIGTERM makes a drained shutdown exit 0 instead of dying by the signal.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        server.run(sockets=[sock])
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    load_error = app.state.service.load_error
    if load_error is not None:
        raise load_error
    if not server.started:
        raise CliError("the server did not start (see the messages above)")
    return 0
