"""Compact vectors: float16, int8/uint8 with calibrated per-dimension ranges, and packed sign bits.

The one place of this math; ``/v1/embed`` (``encoding``), ``embed_files(embedding_dtype=)``
and ``EmbeddingIndex(embedding_dtype=)`` all call it. The conventions are those of
sentence-transformers' ``quantize_embeddings`` and infinity's ``--embedding-dtype``:

* ``int8`` / ``uint8``: per dimension, ``[low, high]`` is cut into 255 equal steps;
  ``uint8 = round((x - low) / step)`` in 0..255 and ``int8 = uint8 - 128`` in -128..127.
  Values outside the range are clipped.
* ``binary`` / ``ubinary``: the sign bits (``x > 0``), 8 dimensions per byte, most significant
  bit first (``numpy.packbits``); ``ubinary`` is that byte (0..255), ``binary`` is byte - 128
  (-128..127).

The ranges are **fixed per model**, never computed from the vectors being quantised, so
vectors from different requests and runs stay comparable: :func:`calibrate` embeds the
documented :data:`CALIBRATION_PROMPTS` with the model (unit vectors) and takes each
dimension's minimum and maximum; users may give their own :class:`Ranges` instead.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = ["ENCODINGS", "CALIBRATION_PROMPTS", "Ranges", "calibrate", "read_ranges", "quantize", "dequantize",
           "packed_dim"]

ENCODINGS = ("float32", "float16", "int8", "uint8", "binary", "ubinary")
CALIBRATED = ("int8", "uint8")
BITS = ("binary", "ubinary")
STEPS = 255
BULK_INFO = "_info.json"  # a bulk output folder's description (imagebind_sdk.bulk.info.INFO, a layer above)
_TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "int8": torch.int8, "uint8": torch.uint8,
                 "binary": torch.int8, "ubinary": torch.uint8}

_SUBJECTS = ("dog", "cat", "bird", "car", "train", "airplane", "boat", "bicycle", "house", "tree", "flower",
             "mountain", "beach", "city street", "kitchen", "person walking", "guitar", "piano", "drum",
             "rain", "thunder", "waves", "crowd cheering", "engine", "baby crying", "laughter", "dinner",
             "computer", "book", "chair", "horse", "fish")
_FRAMES = ("a photo of a {}.", "the sound of a {}.", "a depth map of a {}.", "a video of a {}.")
CALIBRATION_PROMPTS: tuple[str, ...] = tuple(frame.format(s) for s in _SUBJECTS for frame in _FRAMES)
"""The calibration set of :func:`calibrate`: 32 everyday subjects x 4 framings (photo, sound,
depth map, video) = 128 captions, embedded by the model as unit text vectors."""


@dataclass(frozen=True)
class Ranges:
    """Per-dimension ``[low, high]`` of int8/uint8 quantisation; ``source`` says where they came from."""

    low: torch.Tensor
    high: torch.Tensor
    source: str = "given"

    def __post_init__(self) -> None:
        low, high = (torch.as_tensor(v, dtype=torch.float32).reshape(-1) for v in (self.low, self.high))
        if low.shape != high.shape or low.numel() == 0:
            raise ValueError(f"ranges: low and high must be two equal-length vectors, got {tuple(low.shape)} "
                             f"and {tuple(high.shape)}")
        if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError("ranges: low and high must be finite")
        if not (high > low).all():
            bad = int((high <= low).nonzero()[0, 0])
            raise ValueError(f"ranges: high must exceed low in every dimension; dimension {bad} has "
                             f"low {float(low[bad])!r}, high {float(high[bad])!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    @classmethod
    def of(cls, value: "Ranges | Any", source: str = "given") -> "Ranges":
        """A ``Ranges``, a ``(2, D)`` array (low row, high row), a dict from :meth:`to_json`, or
        the path of a saved one (:func:`read_ranges`)."""
        if isinstance(value, Ranges):
            return value
        if isinstance(value, (str, os.PathLike)):
            return read_ranges(value)
        if isinstance(value, dict):
            return cls(torch.tensor(value["low"]), torch.tensor(value["high"]), str(value.get("source", source)))
        pair = torch.as_tensor(np.asarray(value), dtype=torch.float32)
        if pair.ndim != 2 or pair.shape[0] != 2:
            raise ValueError(f"ranges: expected (2, dim) (low row, high row), got shape {tuple(pair.shape)}")
        return cls(pair[0], pair[1], source)

    @property
    def dim(self) -> int:
        return self.low.numel()

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "low": self.low.tolist(), "high": self.high.tolist(), "sha256": self.digest}

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write these ranges as JSON (:meth:`to_json`), for :func:`read_ranges`, ``--ranges FILE``
        and the ``ranges=`` arguments of other runs and machines."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_json(), f)

    @property
    def digest(self) -> str:
        """A short id of these exact ranges: vectors quantised with equal digests are comparable."""
        data = json.dumps([self.low.tolist(), self.high.tolist()]).encode()
        return hashlib.sha256(data).hexdigest()[:16]


def calibrate(model: Any, prompts: Sequence[str] = CALIBRATION_PROMPTS,
              source: str = "imagebind-sdk calibration prompts v1") -> Ranges:
    """Ranges of a model: each dimension's min and max over its unit vectors of ``prompts``.

    ``model``: an ``ImageBind``, or a function mapping texts to their (N, D) unit vectors.
    """
    embed_text: Callable[[list[str]], torch.Tensor] = (
        (lambda texts: model.embed(text=texts).text) if hasattr(model, "embed") else model)
    vectors = torch.as_tensor(embed_text(list(prompts))).float()
    low, high = vectors.min(dim=0).values, vectors.max(dim=0).values
    flat = high <= low  # a constant dimension: give it a tiny width so the step is not zero
    return Ranges(low, torch.where(flat, low + 1e-6, high), source)


def read_ranges(path: str | os.PathLike[str]) -> Ranges:
    """The ranges saved at ``path``: a JSON file of :meth:`Ranges.save` (``{"low": [...],
    "high": [...]}``), a ``.npy`` of shape (2, dim), or a bulk output folder of int8/uint8 rows
    (the ranges its ``_info.json`` records). Errors name the file."""
    path = os.fspath(path)
    source = f"file {os.path.basename(path.rstrip(os.sep)) or path}"
    try:
        if os.path.isdir(path):
            with open(os.path.join(path, BULK_INFO), encoding="utf-8") as f:
                info = json.load(f)
            if not isinstance(info, dict) or "ranges" not in info:
                raise ValueError(f"this folder's {BULK_INFO} records no int8/uint8 ranges")
            return Ranges.of(info["ranges"], source)
        if path.lower().endswith(".npy"):
            return Ranges.of(np.load(path, allow_pickle=False), source)
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
        if not isinstance(value, dict) or not {"low", "high"} <= set(value):
            raise ValueError('expected a JSON object {"low": [...], "high": [...]}')
        return Ranges.of(value, source)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"{path}: cannot read int8/uint8 ranges ({type(exc).__name__}: {exc})") from None


def check_encoding(encoding: Any, where: str = "encoding") -> str:
    if encoding not in ENCODINGS:
        raise ValueError(f"{where}: expected one of {', '.join(map(repr, ENCODINGS))}, got {encoding!r}")
    return encoding


def packed_dim(encoding: str, dim: int) -> int:
    """Values per row in ``encoding``: ``dim``, or ``ceil(dim / 8)`` bytes of sign bits."""
    return (dim + 7) // 8 if encoding in BITS else dim


def needs_ranges(encoding: str) -> bool:
    return encoding in CALIBRATED


def quantize(vectors: torch.Tensor, encoding: str, ranges: Ranges | None = None) -> torch.Tensor:
    """(N, D) float vectors -> (N, packed_dim) of ``encoding``'s dtype (see the module's conventions)."""
    check_encoding(encoding)
    x = torch.as_tensor(vectors).float().cpu()
    if encoding in ("float32", "float16"):
        return x.to(_TORCH_DTYPES[encoding])
    if encoding in BITS:
        packed = torch.from_numpy(np.packbits(x.numpy() > 0, axis=-1))
        return packed if encoding == "ubinary" else (packed.to(torch.int16) - 128).to(torch.int8)
    if ranges is None:
        raise ValueError(f"{encoding} needs calibrated ranges (see imagebind_sdk.vectors.compact.calibrate)")
    if ranges.dim != x.shape[-1]:
        raise ValueError(f"ranges have dim {ranges.dim}, vectors have dim {x.shape[-1]}")
    steps = (ranges.high - ranges.low) / STEPS
    levels = torch.round((x - ranges.low) / steps).clamp_(0, STEPS)
    return levels.to(torch.uint8) if encoding == "uint8" else (levels - 128).to(torch.int8)


def dequantize(packed: torch.Tensor, encoding: str, ranges: Ranges | None = None, dim: int | None = None) -> torch.Tensor:
    """Float32 approximations of quantised rows: int8/uint8 -> the step's value; bits -> +1/-1."""
    check_encoding(encoding)
    if encoding in ("float32", "float16"):
        return packed.float()
    if encoding in BITS:
        raw = packed.to(torch.int16) + (128 if encoding == "binary" else 0)
        bits = np.unpackbits(raw.to(torch.uint8).numpy(), axis=-1)
        signs = torch.from_numpy(bits[..., : dim or bits.shape[-1]]).float()
        return signs * 2 - 1
    if ranges is None:
        raise ValueError(f"{encoding} needs the ranges it was quantised with")
    levels = packed.float() + (128 if encoding == "int8" else 0)
    return ranges.low + levels * ((ranges.high - ranges.low) / STEPS)


def to_json_rows(packed: torch.Tensor) -> list[list[float]] | list[list[int]]:
    """Rows as JSON lists: ints for int8/uint8/bits, floats for float32/float16 (float16 values exactly)."""
    return packed.float().tolist() if packed.is_floating_point() else packed.tolist()


def torch_dtype(encoding: str) -> torch.dtype:
    return _TORCH_DTYPES[check_encoding(encoding)]
