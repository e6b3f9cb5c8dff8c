"""The process environment of a command: logging set-up and offline mode."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from ..progress import write_line


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
