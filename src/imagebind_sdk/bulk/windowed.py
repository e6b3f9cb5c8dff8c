"""``embed_files(..., windows=True)``: every long recording of a folder as windows with timestamps.

Each audio, video or IMU file becomes one :class:`~imagebind_sdk.windows.embed.Windows`
(see :func:`~imagebind_sdk.windows.embed.embed_windows`); ``result.windows.add_to(index)``
stores one row per window with ``source``, ``kind``, ``start_s``, ``end_s`` metadata.

With ``out=DIR`` each file's windows are committed as one Parquet part (one row per
window, ``start_s``/``end_s`` columns: :mod:`imagebind_sdk.bulk.format`) as soon as the
file is done, and ``DIR/_info.json`` records the window spans. Re-running with the same
``out`` skips files already windowed there, unchanged (same path, size and mtime);
resuming with other spans, or a whole-file output with windows, is refused.
``load_bulk_output(DIR)`` returns the windows as a ``WindowEmbeddings``.
Files are embedded one after the other, each decoded by one background thread
(:mod:`imagebind_sdk.windows.embed`); ``num_workers`` (decoding processes) is refused.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from .format import FileStat, stat_file
from .store import BulkStore, open_store
from ..kinds import infer_kind
from ..preprocess.sources import InputError
from ..windows.embed import WINDOW_KINDS, WindowEmbeddings, Windows, embed_windows, window_spans

logger = logging.getLogger(__name__)


@dataclass
class WindowFilesResult:
    """``windows``: one entry per embedded file, in file order; ``failed``/``unsupported``: (path, reason).

    ``embedded`` / ``already_done``: files windowed by this call / found complete in ``out``.
    """

    windows: WindowEmbeddings
    failed: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    out: Path | None = None
    embedded: int = 0
    already_done: int = 0

    def summary(self) -> dict[str, int]:
        """Counts of files (as ``BulkResult.summary``) and of windows."""
        counts = {"embedded": self.embedded, "already_done": self.already_done,
                  "failed": len(self.failed), "unsupported": len(self.unsupported)}
        return {"files": sum(counts.values()), **counts, "windows": int(self.windows.vectors.shape[0])}


def _plan(files: Sequence[str], kind_of_all: str | None) -> tuple[list[tuple[FileStat, str]], list[tuple[str, str]]]:
    """(stat, kind) of the files that have windows; the others with a reason."""
    planned, unsupported = [], []
    for path in files:
        kind = kind_of_all or infer_kind(path)
        if kind in WINDOW_KINDS:
            planned.append((stat_file(path), kind))
        else:
            unsupported.append((path, f"kind {kind or 'unknown'}: windows are for {', '.join(WINDOW_KINDS)} files"))
    return planned, unsupported


def _embed_one(model: Any, stat: FileStat, kind: str, store: BulkStore | None, **options: Any) -> Windows | str:
    """One file's windows (committed to ``store``), or its error message (recorded there too)."""
    try:
        windows = embed_windows(model, **{kind: stat.path}, **options)[0]
    except (InputError, OSError) as exc:  # one unreadable file must not end the job
        logger.warning("failed %s: %s", stat.path, exc)
        message = f"{type(exc).__name__}: {exc}"
        if store is not None:
            store.write_batch(kind, [(stat, message)])
        return message
    windows = Windows(kind, stat.path, windows.vectors, windows.start_s, windows.end_s)
    if store is not None:
        store.write_windows(kind, stat, windows.vectors, list(zip(windows.start_s.tolist(), windows.end_s.tolist())))
    return windows


def embed_files_windows(
    model: Any,
    files: Sequence[str],
    kind: str | None = None,
    *,
    out: str | os.PathLike[str] | None = None,
    resume: bool = True,
    allow_other_space: bool = False,
    batch_size: int = 32,
    num_workers: int = 0,
    progress: bool | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    window_s: Any = None,
    hop_s: Any = None,
) -> WindowFilesResult:
    """Windows of every audio/video/IMU file of ``files``; see the module docstring."""
    if num_workers:
        raise ValueError(
            f"num_workers={num_workers} is not supported with windows=True: each file is decoded by a background "
            "thread while the model runs (pass num_workers=0)"
        )
    unknown = sorted(set(options or {}) - {"imu"})
    if unknown:
        raise ValueError(f"options with windows=True are taken for imu only, got them for {unknown}")
    extra = {"imu": dict((options or {})["imu"])} if options and "imu" in options else None
    planned, unsupported = _plan(files, kind)
    spans = window_spans(window_s, hop_s)  # checks window_s/hop_s before anything is written
    store = open_store(model, out, resume, windows=spans, allow_other_space=allow_other_space) if out is not None else None
    items: list[Windows] = []
    failed: list[tuple[str, str]] = []
    done = 0
    try:
        for stat, kind in planned:
            if store is not None and store.done(stat, kind):
                items.append(Windows(kind, stat.path, *store.windows(stat.path)))
                done += 1
                continue
            got = _embed_one(model, stat, kind, store, window_s=window_s, hop_s=hop_s, batch_size=batch_size,
                             progress=progress, preprocess=extra if kind == "imu" else None)
            if isinstance(got, str):
                failed.append((stat.path, got))
            else:
                items.append(got)
        if store is not None:
            store.compact()  # the job is complete: drop windows superseded by this run
    finally:
        if store is not None:
            store.close()
    result = WindowFilesResult(WindowEmbeddings(items, failed, getattr(model, "space", None)), failed, unsupported, embedded=len(items) - done,
                               already_done=done, out=Path(out) if out is not None else None)
    logger.info("embed_files(windows=True): %s", result.summary())
    return result
