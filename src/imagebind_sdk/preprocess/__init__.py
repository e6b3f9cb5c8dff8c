"""Input transforms: raw files, arrays and tensors -> the tensors the model takes.

One module per input kind (``video`` is a kind the vision encoder encodes). Each
exposes ``ITEM_SHAPE`` (the model input of one item) and
``preprocess(item, **options) -> torch.Tensor`` of exactly that shape; the tables
below map each kind to them. :func:`preprocess_batch` runs one over a list, names
failing items by index and source, and either raises or skips them (``on_error``).

Convention for tensors: a ``torch.Tensor`` whose shape equals ``ITEM_SHAPE`` (or a
batch ``(N, *ITEM_SHAPE)`` passed as the whole argument) is taken as already
preprocessed and passed through unchanged. Raw data is given as a path, bytes, a
file object, a PIL image, a numpy array, or a tensor of another shape.
"""

from __future__ import annotations

import inspect
import logging
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np
import torch

from ..kinds import INPUT_KINDS
from .hf_datasets import dataset_value
from . import audio, depth, imu, thermal, video, vision
from .sources import InputError, check_finite, describe

logger = logging.getLogger(__name__)

# Input kind -> its preprocessing function and the shape of one preprocessed item.
PREPROCESSORS: dict[str, Callable[..., torch.Tensor]] = {
    "vision": vision.preprocess,
    "video": video.preprocess,
    "audio": audio.preprocess,
    "depth": depth.preprocess,
    "thermal": thermal.preprocess,
    "imu": imu.preprocess,
}
# Input kind -> its option check (ValueError for bad values; same keywords as the preprocessor).
OPTION_CHECKS: dict[str, Callable[..., None]] = {
    "vision": vision.check_options,
    "video": video.check_options,
    "audio": audio.check_options,
    "depth": depth.check_options,
    "thermal": thermal.check_options,
    "imu": imu.check_options,
}
ITEM_SHAPES: dict[str, tuple[int, ...]] = {
    "vision": vision.ITEM_SHAPE,
    "video": video.ITEM_SHAPE,
    "audio": audio.ITEM_SHAPE,
    "depth": depth.ITEM_SHAPE,
    "thermal": thermal.ITEM_SHAPE,
    "imu": imu.ITEM_SHAPE,
}

OnError = Literal["raise", "skip"]


@dataclass
class Skipped:
    """An input item that was skipped with ``on_error="skip"``."""

    index: int
    source: str
    error: str


@dataclass
class Batch:
    """Preprocessed inputs of one kind, ready for the model."""

    tensor: torch.Tensor | None  # (N_ok, *ITEM_SHAPE), None when every item was skipped
    sources: list[str]  # source identifier of each row
    skipped: list[Skipped] = field(default_factory=list)


def item_shape(kind: str) -> tuple[int, ...]:
    """The shape of one preprocessed item of an input kind; ValueError for an unknown kind."""
    if kind not in ITEM_SHAPES:
        raise ValueError(f"unknown input kind {kind!r}; expected one of {sorted(ITEM_SHAPES)}")
    return ITEM_SHAPES[kind]


def item_nbytes(kind: str) -> int:
    """Bytes of one preprocessed item of ``kind`` (float32): known before anything is decoded,
    whatever the input holds (a one-frame 16x16 video still becomes 15 clips-crops: 18 MB).
    What a request of N items costs at least, for admission against a memory budget."""
    return 4 * math.prod(item_shape(kind))


def option_names(kind: str) -> list[str]:
    """The keyword options the preprocessor of ``kind`` takes."""
    item_shape(kind)  # refuses an unknown kind
    parameters = inspect.signature(PREPROCESSORS[kind]).parameters.values()
    return [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]


def validate_options(kind: str, options: Mapping[str, Any]) -> None:
    """ValueError for an unknown option name or an invalid value, before any item is read.

    Options apply to every item, so a bad one is the caller's error, never a skipped item.
    """
    valid = option_names(kind)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        listed = ", ".join(valid) if valid else "none"
        names = ", ".join(map(repr, unknown))
        raise ValueError(f"unknown {kind} option(s) {names}; valid {kind} options: {listed}")
    OPTION_CHECKS[kind](**options)


def _is_numpy_image_batch(kind: str, value: Any) -> bool:
    """A (N, H, W, C) array of images passed as vision: N items, as a tensor batch is."""
    return kind == "vision" and isinstance(value, np.ndarray) and value.ndim == 4 and value.shape[-1] in (1, 3, 4)


def _is_audio_pair(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[1], numbers.Real)
        and not isinstance(value[1], bool)
    )


def as_item_list(kind: str, value: Any) -> list[Any]:
    """Split the argument of ``embed(<kind>=value)`` into a list of items."""
    shape = item_shape(kind)  # also refuses an unknown kind
    if isinstance(value, torch.Tensor) and tuple(value.shape[1:]) == shape:
        return list(value.unbind(0))
    if _is_numpy_image_batch(kind, value):
        return list(value)
    if kind == "audio" and _is_audio_pair(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def preprocess_one(kind: str, item: Any, **options: Any) -> torch.Tensor:
    """One item -> its model input tensor (float32, shape ``ITEM_SHAPES[kind]``)."""
    shape = item_shape(kind)
    # A float tensor of the model's input shape is already preprocessed; integer
    # tensors are raw data (e.g. a uint8 image) and go through the preprocessor.
    if isinstance(item, torch.Tensor) and tuple(item.shape) == shape and item.is_floating_point():
        return check_finite(item.detach().to(torch.float32), "tensor")
    out = PREPROCESSORS[kind](item, **options)
    if tuple(out.shape) != shape:  # a bug in a preprocessor, not a user error
        raise RuntimeError(f"{kind} preprocessing returned {tuple(out.shape)}, not {shape}")
    # Finite but extreme data (e.g. audio at 3e38) can overflow in the transform.
    return check_finite(out, "preprocessed input")


def preprocess_batch(
    kind: str,
    items: Sequence[Any],
    *,
    on_error: OnError = "raise",
    start: int = 0,
    **options: Any,
) -> Batch:
    """Preprocess ``items``; errors name the item's index (``start`` + its position: the
    index in the caller's whole list when ``items`` is one batch of it) and source.

    With ``on_error="raise"`` (default) the first bad item raises. With ``"skip"``
    bad items are left out and listed in ``Batch.skipped`` (and logged).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    validate_options(kind, options)
    rows, sources, skipped = [], [], []
    for index, item in enumerate(items):
        item = dataset_value(item)  # Hugging Face datasets feature values (preprocess/hf_datasets.py)
        source = describe(item)
        try:
            rows.append(preprocess_one(kind, item, **options))
        except (InputError, OSError, ValueError, MemoryError) as exc:  # this item's fault
            message = f"{kind}[{start + index}] ({source}): {exc or type(exc).__name__}"
            if on_error == "raise":
                error = FileNotFoundError if isinstance(exc, FileNotFoundError) else InputError
                raise error(message) from exc
            logger.warning("skipping %s", message)
            skipped.append(Skipped(start + index, source, str(exc) or type(exc).__name__))
            continue
        sources.append(source)
    tensor = torch.stack(rows) if rows else None
    return Batch(tensor, sources, skipped)


__all__ = [
    "ITEM_SHAPES",
    "PREPROCESSORS",
    "Batch",
    "InputError",
    "OnError",
    "Skipped",
    "as_item_list",
    "check_finite",
    "describe",
    "item_nbytes",
    "item_shape",
    "option_names",
    "validate_options",
    "preprocess_batch",
    "preprocess_one",
]


# Checks of embed()'s arguments (not of items), raised before any item is read.


def checked_options(preprocess: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """``embed(preprocess=...)`` checked before any item is read: a bad option is the
    caller's error (ValueError), never a skipped item."""
    if preprocess is None:
        return {}
    if not isinstance(preprocess, Mapping):
        raise ValueError(f"preprocess must be a dict kind -> options, got {type(preprocess).__name__}")
    unknown = sorted(set(preprocess) - set(INPUT_KINDS))
    if unknown:
        raise ValueError(f"preprocess options for unknown input kinds {unknown}; expected {INPUT_KINDS}")
    options = {}
    for kind, values in preprocess.items():
        if not isinstance(values, Mapping):
            raise ValueError(f"preprocess[{kind!r}] must be a dict of options, got {type(values).__name__}")
        if kind == "text" and values:
            raise ValueError(f"text takes no preprocess options, got {sorted(values)}")
        if kind != "text":
            try:
                validate_options(kind, values)
            except ValueError as exc:
                raise ValueError(f"preprocess[{kind!r}]: {exc}") from exc
        options[kind] = dict(values)
    return options
