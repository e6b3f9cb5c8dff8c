"""Input kinds of ``embed()`` and how files map to them (a leaf module: imports nothing of ours).

Vocabulary: a *modality* is one of the six encoders (``config.MODALITIES``); a *kind*
is an input kind of ``embed()``. ``video`` is a kind encoded by the vision encoder.
"""

from __future__ import annotations

import difflib
import os
import warnings
from typing import Iterable

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


def kind_argument(function: str, kind: str | None, modality: str | None) -> str | None:
    """``kind=`` of ``embed_files``/``embed_dataset``, also taken under its 0.1 name ``modality=``
    (a DeprecationWarning: the argument is an input kind, e.g. ``video``, not an encoder)."""
    if modality is None:
        return kind
    if kind is not None:
        raise TypeError(f"{function}() got kind={kind!r} and modality={modality!r}; pass kind= only")
    warnings.warn(f"{function}(modality=...) is deprecated: it takes an input kind; use kind={modality!r}",
                  DeprecationWarning, stacklevel=3)
    return modality


def infer_kind(path: str | os.PathLike[str]) -> str | None:
    """The input kind of a file from its extension (None when unknown; never depth/thermal)."""
    return KIND_OF_EXTENSION.get(os.path.splitext(os.fspath(path))[1].lower())


# Keyword names a user may reach for first -> the input kind that takes them.
KIND_ALIASES = {"image": "vision", "images": "vision", "img": "vision", "photo": "vision", "texts": "text",
                "videos": "video", "sound": "audio", "audios": "audio", "speech": "audio"}


def unexpected_kinds(function: str, names: Iterable[str]) -> TypeError:
    """The error for keyword arguments that are no input kind, suggesting the kind meant."""
    name = sorted(names)[0]
    guess = KIND_ALIASES.get(name) or next(iter(difflib.get_close_matches(name, INPUT_KINDS, n=1)), None)
    hint = f"; did you mean {guess}=?" if guess else ""
    return TypeError(
        f"{function}() got an unexpected keyword argument {name!r}{hint} (input kinds: {', '.join(INPUT_KINDS)})"
    )


def unsupported_reason(path: str | os.PathLike[str]) -> str:
    """Why a file of unknown kind is left out (bulk mode, local and Ray engines)."""
    ext = os.path.splitext(os.fspath(path))[1] or "(none)"
    return f"unsupported file extension {ext}: pass kind= to embed it as one kind"
