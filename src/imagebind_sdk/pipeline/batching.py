"""Items in batches for ``ImageBind.embed``: fixed-size chunks, and a progress bar that
is closed however the loop ends (an error is never printed on the bar's line)."""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Sequence

from ..progress import progress_bar


@contextlib.contextmanager
def closing_bar(total: int, desc: str, progress: bool | None) -> Iterator[Any]:
    """A progress bar (a no-op one when hidden) closed however the block ends, so an
    error is never printed on the bar's line."""
    bar = progress_bar(total, desc, "item", progress)
    try:
        yield bar if bar is not None else _NO_BAR
    finally:
        if bar is not None:
            bar.close()


class _NoBar:
    """Stands in for a hidden bar so the loop calls ``update`` unconditionally."""

    def update(self, n: int) -> None:
        """Nothing to show."""


_NO_BAR = _NoBar()


def chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    """(start index, items[start:start + size]) for consecutive batches."""
    for start in range(0, len(items), size):
        yield start, items[start : start + size]
