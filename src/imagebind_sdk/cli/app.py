"""``imagebind-sdk app PATH...``: embed a folder of media and serve a search page over it."""

from __future__ import annotations

import argparse
import glob
import logging
import os
from typing import Any

from ..model.config import MODALITIES
from ..server.settings import Settings
from .errors import UsageError
from .loading import checkpoint_of
from .options import PROG

logger = logging.getLogger("imagebind_sdk.cli")

NAMED_KINDS = ("depth", "thermal")

DESCRIPTION = """\
Embed every image, audio, video and IMU file under PATH (resumable: a second start
only embeds new or changed files) and serve a search page over them at
http://127.0.0.1:PORT/ : query with text, a file, the microphone or the webcam,
weighted terms, zero-shot labels and a similarity heatmap. The page works offline.
The search API (POST /v1/search, GET /v1/items/ID/media) and the server's other
APIs are served with it. Needs the app extra: pip install "imagebind-sdk[app]".
"""

EPILOG = f"""\
examples:
  {PROG} app ~/Pictures ~/Music
  {PROG} app clips/ --windows --port 8000 --api-key secret
  {PROG} app photos/ --depth scans/depth --thermal scans/ir
  {PROG} serve --index ~/.cache/imagebind_sdk/app/<hash>   # serve an existing index
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``app``."""
    p = subparsers.add_parser(
        "app", parents=parents, help="search page over folders of media (text, file, mic, webcam queries)",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="folders, files or globs to index (kinds by extension)")
    for kind in NAMED_KINDS:  # depth and thermal images look like any image: the user names them
        p.add_argument(f"--{kind}", action="append", default=[], metavar="PATH",
                       help=f"{kind} images (folder, file or glob; repeatable)")
    p.add_argument("--index-dir", metavar="DIR", default=None,
                   help="where the embeddings are kept (default: a folder in the user's cache keyed by the "
                        "paths and the model; $IMAGEBIND_APP_CACHE moves the cache)")
    p.add_argument("--windows", action="store_true",
                   help="embed long audio, video and IMU files as windows with timestamps")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    p.add_argument("--api-key", default=None, metavar="KEY",
                   help="require this key (the page asks for it once; default: $IMAGEBIND_API_KEY)")
    p.add_argument("--max-request-mb", type=float, default=Settings.max_request_mb, metavar="MB",
                   help="largest upload, else 413 (default: 64)")
    p.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"],
                   help="uvicorn's log level (default: warning)")
    p.set_defaults(func=run, modalities=",".join(MODALITIES), cors_origin=[], model_name=None, index=None,
                   max_batch_size=Settings.max_batch_size, max_wait_ms=Settings.max_wait_ms,
                   max_batch_gflops=Settings.max_batch_gflops, bulk_every=Settings.bulk_every,
                   max_queue=Settings.max_queue, workers_preprocess=Settings.workers_preprocess,
                   max_inflight_mb=Settings.max_inflight_mb, max_labels=Settings.max_labels,
                   cache_mb=Settings.cache_mb, ranges=[], request_timeout=Settings.request_timeout_s,
                   shutdown_timeout=5.0, engine="local", replicas=None, autoscale=None,
                   num_gpus_per_replica=None, ray_address=None)


def _check_paths(paths: list[str]) -> None:
    if not paths:
        raise UsageError("give at least one PATH, --depth or --thermal to index")
    missing = [p for p in paths if not os.path.exists(p) and not glob.glob(p)]
    if missing:
        raise UsageError(f"no such file, folder or glob match: {', '.join(missing)}")


def app_factory(args: argparse.Namespace) -> Any:
    """``(load, **settings) -> app`` for ``serve.run``: load the model, index the paths, serve the page."""
    from ..app.indexing import build_index, default_index_dir, plan
    from ..app.server import check_dim, create_search_app
    from ..app.state import AppState

    named = {kind: getattr(args, kind) for kind in NAMED_KINDS}
    todo = plan(args.paths, args.windows, named)
    if not todo.files:
        given = [*args.paths, *(p for paths in named.values() for p in paths)]
        raise UsageError(f"no image, audio, video or IMU files under {', '.join(given)}")
    index_dir = args.index_dir or default_index_dir(args.paths, checkpoint_of(args), args.windows, named)
    logger.warning("index: %s (%d files)", index_dir, len(todo.files))
    state = AppState()

    def factory(load: Any, **settings: Any) -> Any:
        def load_and_index() -> Any:
            state.update(stage="loading", message=f"loading {checkpoint_of(args)}")
            try:
                model = load()
                catalog = build_index(model, args.paths, index_dir, windows=args.windows, named=named, state=state)
                check_dim(model, catalog)
            except BaseException as exc:
                state.update(stage="failed", message=f"{type(exc).__name__}: {exc}")
                raise
            state.ready(catalog)
            logger.warning("ready: http://%s:%d/ (%d items)", args.host, args.port, len(catalog))
            return model

        return create_search_app(load_and_index, state, **settings)

    return factory


def run(args: argparse.Namespace) -> int:
    from . import serve

    _check_paths([*args.paths, *(p for kind in NAMED_KINDS for p in getattr(args, kind))])
    args.app_factory = app_factory(args)
    return serve.run(args)
