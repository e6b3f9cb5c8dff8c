"""``embed_files(..., windows=True)``: every long recording of a folder as windows with timestamps.

Each audio, video or IMU file becomes one :class:`~imagebind_sdk.windows.Windows`
(see :func:`~imagebind_sdk.windows.embed_windows`); ``result.windows.add_to(index)``
stores one row per window with ``source``, ``kind``, ``start_s``, ``end_s`` metadata.
The result is held in memory; writing windows to a resumable output directory is not
supported yet (``out=`` is refused).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .kinds import infer_kind
from .preprocess.sources import InputError
from .windows import WINDOW_KINDS, WindowEmbeddings

logger = logging.getLogger(__name__)


@dataclass
class WindowFilesResult:
    """``windows``: one entry per embedded file, in file order; ``failed``/``unsupported``: (path, reason)."""

    windows: WindowEmbeddings
    failed: list[tuple[str, str]] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)


def embed_files_windows(
    model: Any,
    files: Sequence[str],
    modality: str | None = None,
    *,
    out: Any = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    num_workers: int = 0,
    **window_options: Any,
) -> WindowFilesResult:
    """Windows of every audio/video/IMU file; unreadable files are reported in ``failed``.

    ``num_workers`` is accepted for ``embed_files`` compatibility: windows stream through
    one background decoding thread per call instead of worker processes.
    """
    if out is not None:
        raise ValueError("embed_files(windows=True) keeps its result in memory; out= is not supported with windows")
    items, failed, unsupported = [], [], []
    extra = {"imu": dict(options["imu"])} if options and "imu" in options else None
    for path in files:
        kind = modality or infer_kind(path)
        if kind not in WINDOW_KINDS:
            unsupported.append((path, f"kind {kind or 'unknown'}: windows are for {', '.join(WINDOW_KINDS)} files"))
            continue
        try:
            items.append(model.embed_windows(**{kind: path}, preprocess=extra if kind == "imu" else None,
                                             **window_options)[0])
        except (InputError, OSError) as exc:
            logger.warning("failed %s: %s", path, exc)
            failed.append((path, str(exc)))
    return WindowFilesResult(WindowEmbeddings(items), failed, unsupported)
