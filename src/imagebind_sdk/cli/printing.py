"""What commands print: table labels, plain-text matrices, JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

LABEL_WIDTH = 24


def display_name(kinds: str) -> str:
    """"vision+audio" -> "Vision+Audio", "imu" -> "IMU" (table titles)."""
    return "+".join("IMU" if k == "imu" else k.title() for k in kinds.split("+"))


def short_label(kind: str, source: str, width: int = LABEL_WIDTH) -> str:
    """A table label: a text truncated to ``width``, or a file's basename."""
    text = source if kind == "text" else (os.path.basename(source.rstrip("/")) or source)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Sequence[str], cols: Sequence[str], matrix: Sequence[Sequence[float]],
                 fmt: str = "{:.4f}") -> str:
    """A plain-text matrix with row labels on the left and column labels on top."""
    cells = [[fmt.format(v) for v in row] for row in matrix]
    first = max([len(r) for r in rows] + [0])
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(cols)]
    lines = [" " * first + "  " + "  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    for label, row in zip(rows, cells):
        lines.append(label.ljust(first) + "  " + "  ".join(v.rjust(w) for v, w in zip(row, widths)))
    return "\n".join(lines)


def print_json(obj: Any, stream: TextIO | None = None) -> None:
    """Pretty JSON on stdout."""
    print(json.dumps(obj, indent=2, ensure_ascii=False), file=stream or sys.stdout)
