"""One rule for progress bars in Python and the CLI (a leaf module).

The rule (``PROGRESS_RULE``): ``progress=True`` shows a bar on stderr, ``False`` never;
``None`` (the default everywhere) shows one only when stderr is a terminal, and a
default bar appears only once the work has run for ``DEFAULT_DELAY_S`` seconds, so
quick calls print nothing. The command line's ``--progress/--no-progress`` sets the
answer for everything a command runs (:func:`asked`) instead of passing it through
every call. Open bars are tracked so that an error or a log line is printed on a
line of its own (:func:`close_open_bars`, :func:`write_line`).
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import weakref
from collections.abc import Iterator
from typing import Any

# A default bar appears only after this long: no flash for calls that finish sooner.
DEFAULT_DELAY_S = 1.0
# Kept for callers that pass it; 0 means the rule above alone decides.
PROGRESS_MIN_ITEMS = 0
PROGRESS_RULE = "a progress bar on stderr: by default only when stderr is a terminal"
CLI_HELP = f"{PROGRESS_RULE}; --progress always shows it, --no-progress never"

_ASKED: contextvars.ContextVar[bool | None] = contextvars.ContextVar("imagebind_sdk_progress", default=None)
_OPEN: "weakref.WeakSet[Any]" = weakref.WeakSet()


@contextlib.contextmanager
def asked(progress: bool | None) -> Iterator[None]:
    """Within the block, calls that leave ``progress`` at None get this answer instead."""
    token = _ASKED.set(progress)
    try:
        yield
    finally:
        _ASKED.reset(token)


def wanted(progress: bool | None, total: int = 0, min_items: int = PROGRESS_MIN_ITEMS) -> bool:
    """Whether a bar is shown: asked for (argument, else :func:`asked`), else a terminal."""
    if progress is None:
        progress = _ASKED.get()
    if progress is not None:
        return bool(progress)
    return total >= min_items and _is_terminal(sys.stderr)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress_bar(
    total: int, desc: str, unit: str, progress: bool | None, min_items: int = PROGRESS_MIN_ITEMS
) -> Any:
    """A tqdm bar on stderr, or None when the rule above hides it."""
    if not wanted(progress, total, min_items):
        return None
    from tqdm.auto import tqdm  # imported only when a bar is shown: keeps start-up light

    explicit = progress if progress is not None else _ASKED.get()
    delay = 0.0 if explicit else DEFAULT_DELAY_S
    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True, delay=delay)
    _OPEN.add(bar)
    return bar


def _open_bars() -> list[Any]:
    return [bar for bar in list(_OPEN) if not getattr(bar, "disable", True)]


def close_open_bars() -> None:
    """Close every bar still open (e.g. one an exception left behind) before printing."""
    for bar in _open_bars():
        bar.close()


def write_line(text: str) -> None:
    """Write one line to stderr above any open bar (which is redrawn below it)."""
    if _open_bars():
        from tqdm.auto import tqdm

        tqdm.write(text, file=sys.stderr)
    else:
        sys.stderr.write(text + "\n")
        sys.stderr.flush()
