"""The process environment of a command: logging set-up and offline mode."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from ..progress import write_line
from .errors import CliError


class StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        try:
            write_line(self.format(record))  # above an open progress bar, not inside it
        except Exception:  # noqa: BLE001 - logging's own convention
            self.handleError(record)


# Loggers that report each bad item, and how those records begin; commands that print
# each bad item themselves hold these back so that every failure is reported once.
ITEM_LOGGERS = ("imagebind_sdk.bulk.files", "imagebind_sdk.preprocess", "imagebind_sdk.api")
ITEM_MESSAGES = ("failed to embed ", "skipping ")


class _HoldItemReports(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno == logging.WARNING and str(record.msg).startswith(ITEM_MESSAGES))


@contextlib.contextmanager
def items_reported_here() -> Iterator[None]:
    """Within the block, the library's per-item warnings are left to the command to print."""
    held = _HoldItemReports()
    loggers = [logging.getLogger(name) for name in ITEM_LOGGERS]
    for logger in loggers:
        logger.addFilter(held)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(held)


@contextlib.contextmanager
def logging_setup(verbose: bool, debug: bool) -> Iterator[None]:
    """WARNING by default; INFO with -v; DEBUG for imagebind_sdk with --debug.

    Restores the previous set-up afterwards, so that ``main()`` called in-process
    leaves the caller's logging as it was.
    """
    root = logging.getLogger()
    handler = None
    if not root.handlers:  # leave an application's (or pytest's) logging set-up alone
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    ours, hub = logging.getLogger("imagebind_sdk"), logging.getLogger("huggingface_hub")
    saved = ours.level, hub.level
    ours.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    # huggingface_hub logs every retry of an unreachable Hub; the final error says enough.
    hub.setLevel(logging.INFO if verbose or debug else logging.ERROR)
    try:
        yield
    finally:
        ours.setLevel(saved[0])
        hub.setLevel(saved[1])
        if handler is not None:
            root.removeHandler(handler)


RAY_INSTALL = 'pip install "imagebind-sdk[distributed]"'


@contextlib.contextmanager
def _env(name: str, value: str | None) -> Iterator[None]:
    """``os.environ[name] = value`` within the block (``None``: left as it is)."""
    old = os.environ.get(name)
    if value is not None:
        os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


@contextlib.contextmanager
def ray_session(address: str | None, *, verbose: bool) -> Iterator[None]:
    """Ray for one command (joined at ``address``, else a local Ray), shut down afterwards.

    Quiet unless ``verbose``: by default Ray prints its start-up warnings, Ray Data's
    progress as ~15 INFO lines, workers' logs, and an error-level line from its C++ core
    about restarting actors whose arguments are in the object store (Ray Data's own
    actor pool does that; ray-project/ray#53727), which is no error of the job. The
    command prints its own summary and one line per failed file instead, and a failing
    job still raises. With -v/--debug all of Ray's output shows. A Ray the caller
    already started is used and left running.
    """
    try:
        import ray
        from ray.data import DataContext
    except ImportError as exc:
        raise CliError(f"--engine ray needs Ray ({exc}): {RAY_INSTALL}") from None
    context, data_logger = DataContext.get_current(), logging.getLogger("ray.data")
    saved = context.enable_progress_bars, context.print_on_execution_start, data_logger.level
    if not verbose:
        context.enable_progress_bars = context.print_on_execution_start = False
        data_logger.setLevel(logging.ERROR)  # also its warning that progress bars are off
    started = not ray.is_initialized()
    try:
        # Read when the driver's core starts; Ray then says once that it read it (one I-level line).
        with _env("RAY_BACKEND_LOG_LEVEL", None if verbose else "fatal"):
            if started:
                ray.init(address=address, logging_level=logging.INFO if verbose else logging.ERROR,
                         log_to_driver=verbose)
        yield
    finally:
        if started:
            ray.shutdown()
        context.enable_progress_bars, context.print_on_execution_start = saved[:2]
        data_logger.setLevel(saved[2])


@contextlib.contextmanager
def offline_env(enabled: bool) -> Iterator[None]:
    """Set HF_HUB_OFFLINE=1 for the duration of a command when --offline is given."""
    if not enabled:
        yield
        return
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old
