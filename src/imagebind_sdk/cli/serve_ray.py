"""``imagebind-sdk serve --engine ray``: the same server as model replicas on a Ray cluster (Ray Serve)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from typing import Any

from .environment import RAY_INSTALL
from .errors import CliError, UsageError
from .loading import adapters_of, checkpoint_of

logger = logging.getLogger("imagebind_sdk.cli")

APP_NAME = "imagebind"
# As the single-process server (cli/serve.py KEEP_ALIVE_S): outlast the clients' idle expiry.
KEEP_ALIVE_S = 120
RAY_ONLY = ("replicas", "autoscale", "num_gpus_per_replica", "ray_address")


def register_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``serve`` that choose and shape the Ray engine."""
    group = parser.add_argument_group(
        "Ray Serve (--engine ray; needs the distributed extra: pip install \"imagebind-sdk[distributed]\")")
    group.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: one process (default); ray: model replicas on a Ray cluster behind one "
                       "gateway, the same endpoints and answers. A local --checkpoint path must be readable "
                       "at that path on every node")
    count = group.add_mutually_exclusive_group()
    count.add_argument("--replicas", type=int, default=None, metavar="N", help="a fixed number of model replicas "
                       "(default: 1)")
    count.add_argument("--autoscale", default=None, metavar="MIN:MAX",
                       help="scale between MIN and MAX replicas on queue depth (ongoing requests per replica, "
                       "target: --max-batch-size)")
    group.add_argument("--num-gpus-per-replica", type=float, default=None, metavar="G",
                       help="GPUs each replica reserves (fractions share a GPU; default: 0)")
    group.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="the cluster to join, e.g. 10.0.0.1:6379 or auto (default: start a local Ray)")


def check_options(args: argparse.Namespace) -> None:
    """Ray options need --engine ray; --index is the single-process server's."""
    if getattr(args, "engine", "local") == "ray":  # `app` reuses serve's run without these options
        if args.index:
            raise UsageError("--index is not served by --engine ray (serve the search page with --engine local)")
        return
    given = [f"--{name.replace('_', '-')}" for name in RAY_ONLY if getattr(args, name, None) is not None]
    if given:
        raise UsageError(f"{', '.join(given)} need --engine ray")


def application_args(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, Any]:
    """The args of ``imagebind_sdk.server.ray:app`` given by the command line."""
    out: dict[str, Any] = dict(settings)
    out.update(checkpoint=checkpoint_of(args), modalities=args.modalities, backend=getattr(args, "backend", None),
               device=args.device, dtype=args.dtype, quantize=getattr(args, "quantize", None),
               adapters=adapters_of(args), offline=bool(args.offline))
    if args.replicas is not None:
        out["replicas"] = args.replicas
    if args.autoscale is not None:
        out["autoscale"] = args.autoscale
    if args.num_gpus_per_replica is not None:
        out["num_gpus_per_replica"] = args.num_gpus_per_replica
    return out


def _stop_event() -> threading.Event:
    """Set by the first SIGTERM or SIGINT."""
    stop = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        logger.info("%s: deleting the application", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def run_ray(args: argparse.Namespace, settings: dict[str, Any]) -> int:
    """Deploy on Ray Serve, serve until SIGTERM/SIGINT, then delete the application."""
    try:
        import ray
        from ray import serve

        from ..server.ray import ArgsError, app
    except ImportError as exc:
        raise CliError(f"--engine ray needs Ray Serve and the serve extra, which cannot be imported ({exc}): "
                       f"{RAY_INSTALL}") from None
    try:
        application = app(application_args(args, settings))
    except (ArgsError, TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    started = time.monotonic()
    ray.init(address=args.ray_address, logging_level=args.log_level.upper())
    stop = _stop_event()  # after ray.init, whose own SIGTERM handler exits at once
    try:
        serve.start(http_options={"host": args.host, "port": args.port, "keep_alive_timeout_s": KEEP_ALIVE_S})
        try:
            # Returns once every replica is ready. Access lines as uvicorn's: at --log-level info or debug.
            serve.run(application, name=APP_NAME, route_prefix="/", logging_config={
                "log_level": args.log_level.upper(), "enable_access_log": args.log_level in ("info", "debug")})
        except RuntimeError as exc:  # Serve gave up on replicas whose constructor failed
            serve.delete(APP_NAME)  # not left behind, failed, on a shared cluster
            raise CliError(f"the model replicas could not start (their errors are above): {exc}") from None
        logger.warning("serving on http://%s:%d (Ray Serve, ready in %.1f s)", args.host, args.port,
                       time.monotonic() - started)
        stop.wait()
        serve.delete(APP_NAME)  # only ours: a shared cluster may run other applications
        if args.ray_address is None:  # the local Ray this command started
            serve.shutdown()
    finally:
        ray.shutdown()
    return 0
