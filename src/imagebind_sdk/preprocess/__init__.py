"""Input transforms: raw files, arrays and tensors -> the tensors the model takes.

One module per modality. Each exposes ``ITEM_SHAPE`` (the model input of one item)
and ``preprocess(item, **options) -> torch.Tensor`` of exactly that shape.
:func:`preprocess_batch` runs one of them over a list, names failing items by
index and source, and either raises or skips them (``on_error``).

Convention for tensors: a ``torch.Tensor`` whose shape equals ``ITEM_SHAPE`` (or a
batch ``(N, *ITEM_SHAPE)`` passed as the whole argument) is taken as already
preprocessed and passed through unchanged. Raw data is given as a path, bytes, a
file object, a PIL image, a numpy array, or a tensor of another shape.
"""

from __future__ import annotations

import importlib
import logging
import numbers
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal, Sequence

import torch

from ..integrations.hf_datasets import dataset_value
from .sources import InputError, check_finite, describe

logger = logging.getLogger(__name__)

# Modality name -> module under imagebind_sdk.preprocess. "video" feeds the vision encoder.
MODULES = {
    "vision": "vision",
    "video": "video",
    "audio": "audio",
    "depth": "depth",
    "thermal": "thermal",
    "imu": "imu",
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
    """Preprocessed inputs of one modality, ready for the model."""

    tensor: torch.Tensor | None  # (N_ok, *ITEM_SHAPE), None when every item was skipped
    indices: list[int]  # position of each row in the caller's input list
    sources: list[str]  # source identifier of each row
    skipped: list[Skipped] = field(default_factory=list)


def module_for(modality: str) -> ModuleType:
    """The preprocessing module of a modality name."""
    if modality not in MODULES:
        raise ValueError(f"unknown modality {modality!r}; expected one of {sorted(MODULES)}")
    return importlib.import_module(f"{__name__}.{MODULES[modality]}")


def _is_audio_pair(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[1], numbers.Real)
        and not isinstance(value[1], bool)
    )


def as_item_list(modality: str, value: Any) -> list[Any]:
    """Split the argument of ``embed(<modality>=value)`` into a list of items."""
    item_shape = tuple(module_for(modality).ITEM_SHAPE)
    if isinstance(value, torch.Tensor) and tuple(value.shape[1:]) == item_shape:
        return list(value.unbind(0))
    if modality == "audio" and _is_audio_pair(value):
        return [value]
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def preprocess_one(modality: str, item: Any, **options: Any) -> torch.Tensor:
    """One item -> its model input tensor (float32, shape ``ITEM_SHAPE``)."""
    module = module_for(modality)
    item_shape = tuple(module.ITEM_SHAPE)
    # A float tensor of the model's input shape is already preprocessed; integer
    # tensors are raw data (e.g. a uint8 image) and go through the module.
    if isinstance(item, torch.Tensor) and tuple(item.shape) == item_shape and item.is_floating_point():
        return check_finite(item.detach().to(torch.float32), "tensor")
    out = module.preprocess(item, **options)
    if tuple(out.shape) != item_shape:  # a bug in a preprocessor, not a user error
        raise RuntimeError(f"{modality} preprocessing returned {tuple(out.shape)}, not {item_shape}")
    return out


def preprocess_batch(
    modality: str,
    items: Sequence[Any],
    *,
    on_error: OnError = "raise",
    **options: Any,
) -> Batch:
    """Preprocess ``items``; errors name the item's index and source.

    With ``on_error="raise"`` (default) the first bad item raises. With ``"skip"``
    bad items are left out and listed in ``Batch.skipped`` (and logged).
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    rows, indices, sources, skipped = [], [], [], []
    for index, item in enumerate(items):
        item = dataset_value(item)  # Hugging Face datasets feature values (integrations/hf_datasets.py)
        source = describe(item)
        try:
            rows.append(preprocess_one(modality, item, **options))
        except (InputError, FileNotFoundError, OSError, ValueError) as exc:
            message = f"{modality}[{index}] ({source}): {exc}"
            if on_error == "raise":
                kind = FileNotFoundError if isinstance(exc, FileNotFoundError) else InputError
                raise kind(message) from exc
            logger.warning("skipping %s", message)
            skipped.append(Skipped(index, source, str(exc)))
            continue
        indices.append(index)
        sources.append(source)
    tensor = torch.stack(rows) if rows else None
    return Batch(tensor, indices, sources, skipped)


__all__ = [
    "Batch",
    "InputError",
    "MODULES",
    "Skipped",
    "as_item_list",
    "module_for",
    "preprocess_batch",
    "preprocess_one",
]
