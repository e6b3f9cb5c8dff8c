"""Deprecated aliases of renamed names: each warns once per process, then stays quiet."""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

_warned: set[str] = set()


def warn_once(old: str, new: str) -> None:
    """A DeprecationWarning ``old is deprecated; use new`` the first time ``old`` is used."""
    if old in _warned:
        return
    _warned.add(old)
    warnings.warn(f"{old} is deprecated; use {new}", DeprecationWarning, stacklevel=3)


def deprecated_alias(func: Callable[..., Any], old: str, new: str) -> Callable[..., Any]:
    """``func`` under its old name: same behaviour, plus one warning."""

    @functools.wraps(func)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warn_once(old, new)
        return func(*args, **kwargs)

    return alias
