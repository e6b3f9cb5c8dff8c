"""Checks of preprocessing options (not items): a bad option is the caller's error, a ValueError."""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_real_number(value: Any) -> bool:
    """A real number that is not a bool (``True`` is an int in Python, never a sane option)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_number(name: str, value: Any, unit: str = "") -> float:
    """``value`` as a float if it is a finite number > 0, else ValueError naming the option."""
    if not (is_real_number(value) and math.isfinite(value) and value > 0):
        unit_words = f" of {unit}" if unit else ""
        raise ValueError(f"{name} must be a finite number{unit_words} > 0, got {value!r}")
    return float(value)
