"""``DIR/_info.json`` of a bulk output folder: what the folder holds and who wrote it.

Written once when a folder is created (:func:`make_info`), read and checked field by
field whenever the folder is opened or loaded (:func:`read_info`); the part files are
described in :mod:`imagebind_sdk.bulk.format`.
"""

from __future__ import annotations

import json
import os
import re
import stat as stat_mod
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..vectors.space import Space, as_space
from ..vectors.compact import BULK_INFO

__all__ = ["FORMAT", "FORMAT_VERSION", "INFO", "OLD_INFO", "checkpoint_identity", "make_info", "read_info",
           "regular_file"]

FORMAT = "imagebind-sdk-bulk"
FORMAT_VERSION = 2
INFO = BULK_INFO  # "_info.json"; "_": pyarrow, Spark and datasets skip it when reading DIR as a table
OLD_INFO = "info.json"  # format 1 (safetensors shards + manifest)
MAX_DIM = 65536  # far above any ImageBind head (1024); bounds what info.json may claim
_OUTPUT_ID = re.compile(r"^[0-9a-f]{32}$")


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imagebind-sdk")
    except PackageNotFoundError:  # running from a source tree
        return "unknown"


def checkpoint_identity(source: str | os.PathLike[str], revision: str | None = None) -> dict[str, Any]:
    """``{"source", "revision"}`` naming a checkpoint the same way from any process:
    local paths made absolute, registry aliases with their pinned revision."""
    text = os.fspath(source)
    if os.path.exists(text):
        return {"source": os.path.abspath(text), "revision": revision}
    if revision is None:
        from ..weights.hub import registry  # local: hub is only needed for aliases

        revision = registry().get(text, {}).get("revision")
    return {"source": text, "revision": revision}


def make_info(
    checkpoint: Mapping[str, Any], embedding_dim: int, model_dtype: str = "float32",
    windows: Mapping[str, Any] | None = None, space: Space | None = None, dtype: str = "float32",
    ranges: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``info.json`` of a new output folder (a fresh ``output_id``); ``windows``: spans per kind;
    ``space``: the model's space (outputs written before spaces have none: unknown, not checked);
    ``dtype``: how rows are stored (see :mod:`imagebind_sdk.vectors.compact`), with int8/uint8 ``ranges``."""
    return ({"windows": dict(windows)} if windows is not None else {}) | (
        {"space": space.to_dict()} if space is not None else {}) | {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "output_id": uuid.uuid4().hex,
        "checkpoint": dict(checkpoint),
        "embedding_dim": int(embedding_dim),
        "dtype": dtype,
        **({"ranges": dict(ranges)} if ranges is not None else {}),
        "model_dtype": model_dtype,
        "package_version": package_version(),
    }


def regular_file(path: Path) -> bool:
    """A regular file, not a symlink (which could lead outside the folder), FIFO or device."""
    try:
        return stat_mod.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read_info(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """``DIR/info.json``, checked field by field; errors name the file and the field."""
    path = Path(out_dir) / INFO
    if not path.exists() and not path.is_symlink():
        if (Path(out_dir) / OLD_INFO).exists():
            raise ValueError(f"{out_dir} was written by an older imagebind-sdk (safetensors shards); "
                             "write to a new folder")
        raise FileNotFoundError(f"{out_dir} is not a bulk embedding output (no {INFO})")
    if not regular_file(path):
        raise ValueError(f"{path}: not a regular file (a symlink or device); refusing to read it")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} info file")
    if info.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format_version {info.get('format_version')!r}, this version reads {FORMAT_VERSION} "
            "(older outputs used safetensors shards); write to a new folder"
        )
    dim = info.get("embedding_dim")
    if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= MAX_DIM:
        raise ValueError(f"{path}: embedding_dim must be an integer in [1, {MAX_DIM}], got {dim!r}")
    if not isinstance(info.get("output_id"), str) or not _OUTPUT_ID.match(info["output_id"]):
        raise ValueError(f"{path}: output_id must be 32 hex digits, got {info.get('output_id')!r}")
    checkpoint = info.get("checkpoint")
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("source"), str):
        raise ValueError(f"{path}: checkpoint must be an object with a string source, got {checkpoint!r}")
    check_dtype(path, info)
    if not isinstance(info.get("windows", {}), dict):
        raise ValueError(f"{path}: windows must be an object of window spans per kind, got {info['windows']!r}")
    try:
        as_space(info.get("space"))
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return info


def check_dtype(path: Path, info: Mapping[str, Any]) -> None:
    """``dtype`` names an encoding; int8/uint8 carry their calibration ``ranges`` of embedding_dim values."""
    from ..vectors.compact import ENCODINGS, Ranges, needs_ranges

    dtype = info.get("dtype", "float32")
    if dtype not in ENCODINGS:
        raise ValueError(f"{path}: dtype must be one of {list(ENCODINGS)}, got {dtype!r}")
    if needs_ranges(dtype):
        try:
            ranges = Ranges.of(info["ranges"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: dtype {dtype} needs ranges {{low, high}} ({type(exc).__name__}: {exc})") from None
        if ranges.dim != info["embedding_dim"]:
            raise ValueError(f"{path}: ranges have dim {ranges.dim}, embedding_dim is {info['embedding_dim']}")
