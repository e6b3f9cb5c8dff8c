"""Embedding the files the page searches: a resumable bulk output per folder set and model.

``imagebind-sdk app PATH...`` writes whole files to ``DIR/files`` and, with
``--windows``, long audio, video and IMU recordings as windows to ``DIR/windows``
(both :mod:`imagebind_sdk.bulk.format` outputs, so a second start only embeds new
or changed files). ``DIR`` defaults to a folder of the user's cache named by a hash
of the input paths, the checkpoint and the windows choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..bulk.files import embed_files, list_files
from ..kinds import infer_kind
from ..progress import progress_bar
from ..windows.embed import WINDOW_KINDS
from .catalog import Catalog
from .state import AppState

logger = logging.getLogger(__name__)

CHUNK_FILES = 16  # files per embed_files call: the page's progress moves at least this often
CACHE_ENV = "IMAGEBIND_APP_CACHE"


def cache_root() -> Path:
    """``$IMAGEBIND_APP_CACHE``, else ``$XDG_CACHE_HOME/imagebind_sdk/app``, else ``~/.cache/imagebind_sdk/app``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "imagebind_sdk" / "app"


def default_index_dir(paths: Sequence[str], checkpoint: str, windows: bool,
                      named: Mapping[str, Sequence[str]] | None = None) -> Path:
    """The cache folder for these inputs and this model (the same inputs resume the same folder)."""
    key: dict[str, Any] = {"paths": sorted(os.path.abspath(p) for p in paths), "checkpoint": checkpoint,
                           "windows": windows}
    key.update({kind: sorted(os.path.abspath(p) for p in named_paths)
                for kind, named_paths in (named or {}).items() if named_paths})
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / digest


@dataclass
class Plan:
    """What to embed: ``(files, sub-folder, embed_files options)`` jobs, and the files left out."""

    jobs: list[tuple[list[str], str, dict[str, Any]]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return [path for files, _, _ in self.jobs for path in files]


def plan(paths: Sequence[str], windows: bool, named: Mapping[str, Sequence[str]] | None = None) -> Plan:
    """The jobs for ``paths`` (kinds from extensions) and ``named`` (kind -> paths, e.g. depth images).

    With ``windows`` audio, video and IMU files become windows (``DIR/windows``); the rest
    are whole files (``DIR/files``). A file named under a kind is only embedded as that kind.
    """
    result = Plan()
    named_files = {kind: list_files(list(named_paths)) for kind, named_paths in (named or {}).items() if named_paths}
    taken = {path for files in named_files.values() for path in files}
    whole, windowed = [], []
    for path in list_files(list(paths)) if paths else []:
        kind = infer_kind(path)
        if path in taken:
            continue
        if kind is None:
            result.unknown.append(path)
        else:
            (windowed if windows and kind in WINDOW_KINDS else whole).append(path)
    result.jobs += [(chunk, "files", {}) for chunk in _chunks(whole, CHUNK_FILES)]
    result.jobs += [(chunk, "windows", {"windows": True}) for chunk in _chunks(windowed, 1)]
    for kind, files in named_files.items():
        result.jobs += [(chunk, "files", {"kind": kind}) for chunk in _chunks(files, CHUNK_FILES)]
    return result


def build_index(model: Any, paths: Sequence[str], index_dir: str | os.PathLike[str], *, windows: bool = False,
                named: Mapping[str, Sequence[str]] | None = None, state: AppState | None = None,
                progress: bool | None = None) -> Catalog:
    """Embed ``paths`` (and ``named`` kind -> paths) into ``index_dir``, resuming what is there;
    the catalog of exactly these files."""
    state = state or AppState()
    todo = plan(paths, windows, named)
    if todo.unknown:
        logger.warning("%d files of unknown kind left out (e.g. %s)", len(todo.unknown), todo.unknown[0])
    total = len(todo.files)
    state.update(stage="indexing", total=total, done=0, message=f"embedding {total} files")
    bar = progress_bar(total, "indexing", "file", progress)
    root = Path(index_dir)
    done = 0
    try:
        for files, folder, options in todo.jobs:
            result = embed_files(model, files, out=root / folder, progress=False, **options)
            for path, error in result.failed:
                logger.warning("could not embed %s: %s", path, error)
            done += len(files)
            state.update(done=done, message=f"embedded {done} of {total} files")
            if bar is not None:
                bar.update(len(files))
    finally:
        if bar is not None:
            bar.close()
    existing = [d for d in (root / "files", root / "windows") if d.is_dir()]
    catalog = Catalog.load(existing, only=set(todo.files))
    logger.info("indexed %d files as %d items in %s", total, len(catalog), root)
    return catalog


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
