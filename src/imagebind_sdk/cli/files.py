"""Input flag values -> items: directories and globs expand to sorted file lists."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence

from ..kinds import GLOB_CHARS, KIND_OF_EXTENSION


def _extensions(kind: str) -> tuple[str, ...]:
    """File extensions collected from a directory for an input kind."""
    file_kind = "vision" if kind in ("depth", "thermal") else kind
    return tuple(ext for ext, k in KIND_OF_EXTENSION.items() if k == file_kind)


def _walk(root: str, kind: str) -> list[str]:
    """Files of ``kind`` under ``root`` (recursive, hidden entries skipped), sorted."""
    from ..bulk.files import walk  # lazily: bulk brings in torch's DataLoader

    exts = _extensions(kind)
    found = [path for path in walk(root, recursive=True) if os.path.splitext(path)[1].lower() in exts]
    if not found:
        raise FileNotFoundError(f"no {kind} files ({', '.join(exts)}) in directory {root}")
    return sorted(found)


def _matches(pattern: str, flag: str) -> list[str]:
    """The files a glob matches, sorted; none is an error naming the flag."""
    matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
    if not matches:
        raise FileNotFoundError(f"no files match {pattern!r} ({flag})")
    return matches


def expand_value(kind: str, value: str) -> list[str]:
    """One flag value -> items: text as is; a directory or glob -> sorted files; else the path."""
    if kind == "text":
        return [value]
    if os.path.isdir(value):
        return _walk(value, kind)
    if not os.path.exists(value) and GLOB_CHARS & set(value):
        return _matches(value, f"--{kind}")
    if "://" not in value and not os.path.exists(value):
        raise FileNotFoundError(f"no such file: {value}")
    return [value]


def check_paths(paths: Sequence[str], what: str = "PATH") -> None:
    """Every positional path exists (file or directory) or is a glob matching files."""
    for path in paths:
        if os.path.exists(path):
            continue
        if GLOB_CHARS & set(path):
            _matches(path, what)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")


def expand_inputs(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """``(kind, value)`` pairs -> kind -> items, kinds in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for kind, value in pairs:
        grouped.setdefault(kind, []).extend(expand_value(kind, value))
    return grouped
