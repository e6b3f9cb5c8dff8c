"""Input kinds of ``embed()`` and how files map to them (a leaf module: imports nothing of ours).

Vocabulary: a *modality* is one of the six encoders (``config.MODALITIES``); a *kind*
is an input kind of ``embed()``. ``video`` is a kind encoded by the vision encoder.
"""

from __future__ import annotations

import os

# Input kinds of embed(), in the order results are reported.
INPUT_KINDS = ("text", "vision", "video", "audio", "depth", "thermal", "imu")
# Kind -> the modality (encoder) that embeds it.
ENCODER_OF = {kind: ("vision" if kind == "video" else kind) for kind in INPUT_KINDS}
# Kinds that come from files.
FILE_KINDS = tuple(kind for kind in INPUT_KINDS if kind != "text")

_EXTENSIONS = {
    "vision": (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"),
    "audio": (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus"),
    "video": (".mp4", ".mov", ".mkv", ".webm", ".avi"),
    "imu": (".csv",),
}
# Lower-case extension -> input kind. Depth and thermal images look like any image:
# callers name those kinds explicitly.
KIND_OF_EXTENSION = {ext: kind for kind, exts in _EXTENSIONS.items() for ext in exts}
# Characters that make a path argument a glob pattern.
GLOB_CHARS = frozenset("*?[")


def infer_kind(path: str | os.PathLike[str]) -> str | None:
    """The input kind of a file from its extension (None when unknown; never depth/thermal)."""
    return KIND_OF_EXTENSION.get(os.path.splitext(os.fspath(path))[1].lower())


def unsupported_reason(path: str | os.PathLike[str]) -> str:
    """Why a file of unknown kind is left out (bulk mode, local and Ray engines)."""
    ext = os.path.splitext(os.fspath(path))[1] or "(none)"
    return f"unsupported file extension {ext}: pass modality= to embed it as one kind"
