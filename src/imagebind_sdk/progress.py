"""One rule for progress bars in Python and the CLI (a leaf module)."""

from __future__ import annotations

import sys
from typing import Any

# Below this many items a bar is not worth the noise unless asked for.
PROGRESS_MIN_ITEMS = 64


def progress_bar(
    total: int, desc: str, unit: str, progress: bool | None, min_items: int = PROGRESS_MIN_ITEMS
) -> Any:
    """A tqdm bar on stderr (None when hidden): shown when ``progress`` is True, or by
    default (``progress=None``) for at least ``min_items`` items on a terminal."""
    show = progress if progress is not None else (total >= min_items and sys.stderr.isatty())
    if not show:
        return None
    from tqdm.auto import tqdm  # imported only when a bar is shown: keeps start-up light

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
