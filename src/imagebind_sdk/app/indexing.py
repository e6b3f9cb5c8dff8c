"""Embedding the files the page searches: a resumable bulk output per folder set and model.

``imagebind-sdk app PATH...`` writes whole files to ``DIR/files`` and, with
``--windows``, long audio, video and IMU recordings as windows to ``DIR/windows``
(both :mod:`imagebind_sdk.bulk_format` outputs, so a second start only embeds new
or changed files). ``DIR`` defaults to a folder of the user's cache named by a hash
of the input paths, the checkpoint and the windows choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

from ..bulk import embed_files, list_files
from ..kinds import infer_kind
from ..progress import progress_bar
from ..windows import WINDOW_KINDS
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


def default_index_dir(paths: Sequence[str], checkpoint: str, windows: bool) -> Path:
    """The cache folder for these inputs and this model (the same inputs resume the same folder)."""
    key = {"paths": sorted(os.path.abspath(p) for p in paths), "checkpoint": checkpoint, "windows": windows}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return cache_root() / digest


def plan(paths: Sequence[str], windows: bool) -> tuple[list[str], list[str], list[str]]:
    """(whole files, files to window, files of unknown kind), each in walk order."""
    whole, windowed, unknown = [], [], []
    for path in list_files(list(paths)):
        kind = infer_kind(path)
        if kind is None:
            unknown.append(path)
        elif windows and kind in WINDOW_KINDS:
            windowed.append(path)
        else:
            whole.append(path)
    return whole, windowed, unknown


def build_index(model: Any, paths: Sequence[str], index_dir: str | os.PathLike[str], *,
                windows: bool = False, state: AppState | None = None, progress: bool | None = None) -> Catalog:
    """Embed ``paths`` into ``index_dir`` (resuming what is there) and return the catalog of exactly these files."""
    state = state or AppState()
    whole, windowed, unknown = plan(paths, windows)
    if unknown:
        logger.warning("%d files of unknown kind left out (e.g. %s)", len(unknown), unknown[0])
    total = len(whole) + len(windowed)
    state.update(stage="indexing", total=total, done=0, message=f"embedding {total} files")
    bar = progress_bar(total, "indexing", "file", progress)
    root = Path(index_dir)
    jobs = [(chunk, root / "files", {}) for chunk in _chunks(whole, CHUNK_FILES)]
    jobs += [(chunk, root / "windows", {"windows": True}) for chunk in _chunks(windowed, 1)]
    done = 0
    try:
        for chunk, out, options in jobs:
            result = embed_files(model, chunk, out=out, progress=False, **options)
            for path, error in result.failed:
                logger.warning("could not embed %s: %s", path, error)
            done += len(chunk)
            state.update(done=done, message=f"embedded {done} of {total} files")
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    existing = [d for d in (root / "files", root / "windows") if d.is_dir()]
    catalog = Catalog.load(existing, only=set(whole) | set(windowed))
    logger.info("indexed %d files as %d items in %s", total, len(catalog), root)
    return catalog


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
