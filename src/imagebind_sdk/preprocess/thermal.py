"""Thermal (infrared) images -> the ``(1, 224, 224)`` input of ImageBind's thermal encoder.

The reference code ships no thermal loader; ImageBind was trained on LLVIP
infrared frames, which are stored as 3-channel JPEGs of grey content. The
pipeline mirrors the vision one on a single channel:

1. grey-scale: colour images are converted with PIL's ``convert("L")``
   (ITU-R 601-2 luma; for grey content every channel is equal, so it is exact);
2. resize the short side to 224 with PIL's bicubic filter (long side
   ``int(224 * long / short)``) and centre-crop 224 x 224;
3. scale to [0, 1] (``value / 255`` for 8-bit data);
4. optionally (``normalize=True``) ``(x - 0.5) / 0.5``. Off by default: community
   reproductions of the paper's LLVIP numbers report better results without it.

8-bit data is resampled in 8 bits exactly as the vision pipeline does; float
data in [0, 1] is resampled in floating point (PIL mode ``"F"``) and clipped to
[0, 1] afterwards (8-bit resampling clips its bicubic overshoot the same way).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from PIL import Image

from .image import (
    IMAGE_SIZE,
    WIDE_INTEGER_MODES,
    channel_spread,
    decoded,
    open_image,
    single_band_to_input,
    squeeze_channel,
)
from .sources import InputError, require_finite, source_kind, tensor_to_numpy

logger = logging.getLogger(__name__)

ITEM_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)

EIGHT_BIT_MAX = 255.0
# Used only with normalize=True: maps [0, 1] to [-1, 1].
NORM_MEAN = 0.5
NORM_STD = 0.5
# A colour image whose channels differ by more than this (mean, 8-bit levels) is logged.
GREY_TOLERANCE = 2.0
# Float inputs may exceed [0, 1] by this much (rounding) before they are refused.
RANGE_TOLERANCE = 1e-6

_ACCEPTED = "a path, bytes, a binary file object, a PIL image, a numpy array or a torch tensor"


def preprocess(item: Any, *, normalize: bool = False) -> torch.Tensor:
    """One thermal image -> float32 tensor of shape ``ITEM_SHAPE``.

    Args:
        item: path, bytes, binary file object, PIL image, numpy array or torch
            tensor: (H, W) / (1, H, W) / (H, W, 1) uint8 (0-255) or float in [0, 1],
            or (H, W, 3) uint8.
        normalize: subtract ``NORM_MEAN`` and divide by ``NORM_STD`` after scaling
            to [0, 1].
    """
    check_options(normalize=normalize)
    image = load_thermal(item)
    if image.mode == "F":  # clip bicubic overshoot, as 8-bit resampling does
        tensor = single_band_to_input(image).clamp_(0.0, 1.0)
    else:
        tensor = single_band_to_input(image, divisor=EIGHT_BIT_MAX)
    if normalize:
        tensor = (tensor - NORM_MEAN) / NORM_STD
    require_finite(tensor, "thermal output")
    return tensor


def check_options(*, normalize: bool = False) -> None:
    """ValueError for an invalid option value (checked before any item is read)."""
    if not isinstance(normalize, bool):
        raise ValueError(f"normalize must be True or False, got {normalize!r}")


def load_thermal(item: Any) -> Image.Image:
    """Any accepted input -> a single-band PIL image: ``"L"`` (8-bit) or ``"F"`` (in [0, 1])."""
    if isinstance(item, torch.Tensor):
        item = tensor_to_numpy(item)
    if isinstance(item, np.ndarray):
        return _from_array(item)
    if isinstance(item, Image.Image):
        return _from_image(decoded(item, limit="MAX_MAP_PIXELS"))
    if source_kind(item) is not None:
        return _from_image(open_image(item, limit="MAX_MAP_PIXELS"))
    raise InputError(f"expected {_ACCEPTED}, got {type(item).__name__}")


def _from_array(array: np.ndarray) -> Image.Image:
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[-1] in (3, 4):
        return _from_image(Image.fromarray(np.ascontiguousarray(array[..., :3])))
    array = squeeze_channel(array, "thermal image", "(H, W), (1, H, W) or (H, W, 1)")
    if array.dtype == np.uint8:
        return Image.fromarray(np.ascontiguousarray(array))
    if array.dtype.kind == "f":
        return Image.fromarray(_check_unit_range(array.astype(np.float32)))
    raise InputError(
        f"expected uint8 values (0-255) or floats in [0, 1], found dtype {array.dtype}; "
        "scale 16-bit or radiometric data to [0, 1] first"
    )


def _check_unit_range(array: np.ndarray) -> np.ndarray:
    require_finite(array, "thermal image")
    low, high = float(array.min()), float(array.max())
    if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
        raise InputError(
            f"expected float values in [0, 1], found values in [{low:g}, {high:g}]; "
            "divide 8-bit data by 255 or pass it as uint8"
        )
    return np.ascontiguousarray(np.clip(array, 0.0, 1.0))


def _from_image(image: Image.Image) -> Image.Image:
    if image.mode == "L":
        return image
    if image.mode == "F":
        return Image.fromarray(_check_unit_range(np.array(image, dtype=np.float32)))
    if image.mode in WIDE_INTEGER_MODES:
        raise InputError(
            f"expected an 8-bit thermal image, found a {image.mode} (16/32-bit) image; "
            "scale radiometric data to [0, 1] and pass it as a float array"
        )
    if image.mode not in ("1", "LA", "La"):
        spread = channel_spread(image)
        if spread > GREY_TOLERANCE:
            logger.warning(
                "thermal image is in colour (channels differ by %.1f levels on average, "
                "a false-colour palette?); converting it to grey luma",
                spread,
            )
    return image.convert("L")
