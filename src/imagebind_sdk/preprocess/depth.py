"""Depth maps -> the ``(1, 224, 224)`` input of ImageBind's depth encoder.

The reference code ships no depth loader. ImageBind's depth encoder was trained on
SUN RGB-D converted to *normalised disparity* with the Omnivore recipe:
``disparity = baseline * focal_length / depth`` (metres, pixels), clamped at 75
and divided by 75, then resized (short side 224, bicubic) and centre-cropped.
This module implements that recipe as ``mode="disparity"`` (the default), plus
``"inverse"`` (inverse depth divided by its maximum: scale-free, for depth of
unknown scale) and ``"raw"`` (depth in metres, untouched).

What the input values mean depends on their type (see ``docs/preprocessing.md``):

* float arrays / tensors / 32-bit float images: depth in metres;
* integer arrays / tensors / 16-bit images (PNG): depth in units of
  ``1 / depth_scale`` metres (default 1000: millimetres, as NYU / SUN RGB-D);
* 8-bit images / uint8 arrays: *already normalised disparity* (bright = near), as
  saved by monocular depth estimators; mapped to ``value / 255`` in every mode.

A depth of 0 marks a missing pixel: it becomes 0 in the output (no signal)
instead of an infinite disparity. Negative or non-finite depth is refused.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from .image import (
    IMAGE_SIZE,
    WIDE_INTEGER_MODES,
    channel_spread,
    decoded,
    float_map,
    open_image,
    single_band_to_input,
    squeeze_channel,
)
from .options import positive_number
from .sources import InputError, require_finite, source_kind, tensor_to_numpy

logger = logging.getLogger(__name__)

ITEM_SHAPE = (1, IMAGE_SIZE, IMAGE_SIZE)

DepthMode = Literal["disparity", "inverse", "raw"]
MODES = ("disparity", "inverse", "raw")
DEFAULT_MODE: DepthMode = "disparity"

# Integer depth units per metre (16-bit PNG depth in millimetres, as NYU / SUN RGB-D).
DEFAULT_DEPTH_SCALE = 1000.0
# Omnivore's SUN RGB-D disparity: Kinect-class stereo baseline (m) and focal length (px).
KINECT_BASELINE_M = 0.075
KINECT_FOCAL_PX = 518.857901
# Disparity is clamped at this value and divided by it (Omnivore's DepthNorm(max_depth=75)).
MAX_DISPARITY = 75.0
# 8-bit depth images hold normalised disparity: value / 255.
EIGHT_BIT_MAX = 255.0
# A colour image whose channels differ by more than this (mean, 8-bit levels) is refused.
GREY_TOLERANCE = 2.0

_ACCEPTED = "a path, bytes, a binary file object, a PIL image, a numpy array or a torch tensor"


def preprocess(
    item: Any,
    *,
    mode: DepthMode = DEFAULT_MODE,
    depth_scale: float = DEFAULT_DEPTH_SCALE,
    baseline: float = KINECT_BASELINE_M,
    focal_length: float = KINECT_FOCAL_PX,
    max_disparity: float = MAX_DISPARITY,
) -> torch.Tensor:
    """One depth map -> float32 tensor of shape ``ITEM_SHAPE``.

    Args:
        item: path, bytes, binary file object, PIL image, numpy array or torch tensor.
        mode: ``"disparity"`` (Omnivore/ImageBind recipe), ``"inverse"`` (inverse
            depth / its maximum) or ``"raw"`` (metres). Ignored for 8-bit inputs.
        depth_scale: integer depth units per metre (16-bit PNGs, integer arrays).
        baseline: stereo baseline in metres for ``"disparity"``.
        focal_length: focal length in pixels for ``"disparity"``.
        max_disparity: disparity clamp and divisor for ``"disparity"``.
    """
    check_options(
        mode=mode, depth_scale=depth_scale, baseline=baseline, focal_length=focal_length, max_disparity=max_disparity
    )
    values, relative = load_depth(item, depth_scale=depth_scale)
    if not relative:
        values = depth_to_model_values(
            values, mode, baseline=baseline, focal_length=focal_length, max_disparity=max_disparity
        )
    tensor = single_band_to_input(float_map(values))
    require_finite(tensor, "depth output")
    return tensor


def depth_to_model_values(
    depth: np.ndarray,
    mode: DepthMode = DEFAULT_MODE,
    *,
    baseline: float = KINECT_BASELINE_M,
    focal_length: float = KINECT_FOCAL_PX,
    max_disparity: float = MAX_DISPARITY,
) -> np.ndarray:
    """Metric depth (metres, 0 = missing) -> the float32 map fed to the resize."""
    if not (depth > 0).any():
        logger.warning("depth map has no valid (non-zero) pixel; the input is all zeros")
    if mode == "disparity":
        return normalized_disparity(depth, baseline, focal_length, max_disparity)
    if mode == "inverse":
        return normalized_inverse_depth(depth)
    return depth.astype(np.float32)


def normalized_disparity(
    depth: np.ndarray, baseline: float, focal_length: float, max_disparity: float
) -> np.ndarray:
    """``min(baseline * focal / depth, max_disparity) / max_disparity``; 0 where depth is 0."""

    def disparity(block: np.ndarray) -> np.ndarray:
        valid = block > 0
        safe = np.where(valid, block, 1.0).astype(np.float64)
        values = np.minimum(baseline * focal_length / safe, max_disparity) / max_disparity
        return np.where(valid, values, 0.0)

    return _by_rows(depth, disparity)


def normalized_inverse_depth(depth: np.ndarray) -> np.ndarray:
    """``1 / depth`` divided by its maximum (nearest pixel -> 1); 0 where depth is 0."""

    def inverse(block: np.ndarray) -> np.ndarray:
        valid = block > 0
        return np.where(valid, 1.0 / np.where(valid, block, 1.0).astype(np.float64), 0.0)

    peak = max((float(inverse(depth[a:b]).max(initial=0.0)) for a, b in _row_blocks(depth)), default=0.0)
    return _by_rows(depth, lambda block: inverse(block) / peak if peak > 0 else inverse(block))


def _row_blocks(array: np.ndarray) -> list[tuple[int, int]]:
    """Row ranges of about a million pixels: float64 work on a large map stays ~8 MB a copy."""
    rows = max(1, (1 << 20) // max(array.shape[1], 1))
    return [(a, min(a + rows, array.shape[0])) for a in range(0, array.shape[0], rows)]


def _by_rows(array: np.ndarray, elementwise: Any) -> np.ndarray:
    """float32 ``elementwise(array)``, computed a block of rows at a time (same numbers, no
    whole-map float64 temporaries: a 4096² 16-bit PNG took 0.5 GB)."""
    out = np.empty(array.shape, dtype=np.float32)
    for a, b in _row_blocks(array):
        out[a:b] = elementwise(array[a:b])
    return out


def load_depth(item: Any, *, depth_scale: float = DEFAULT_DEPTH_SCALE) -> tuple[np.ndarray, bool]:
    """Any accepted input -> (float32 (H, W) map, relative).

    ``relative`` is True for 8-bit inputs (values already normalised disparity in
    [0, 1]) and False for metric depth in metres (validated: finite, >= 0).
    """
    if isinstance(item, torch.Tensor):
        item = tensor_to_numpy(item)
    if isinstance(item, np.ndarray):
        values, relative = _from_array(item, depth_scale)
    elif isinstance(item, Image.Image):
        values, relative = _from_image(decoded(item, limit="MAX_MAP_PIXELS"), depth_scale)
    elif source_kind(item) is not None:
        values, relative = _from_image(open_image(item, limit="MAX_MAP_PIXELS"), depth_scale)
    else:
        raise InputError(f"expected {_ACCEPTED}, got {type(item).__name__}")
    if not relative:
        _check_metric(values)
    return values, relative


def _from_array(array: np.ndarray, depth_scale: float) -> tuple[np.ndarray, bool]:
    if array.dtype == np.uint8 and array.ndim == 3 and array.shape[-1] in (3, 4):
        return _from_image(Image.fromarray(array[..., :3]), depth_scale)
    array = squeeze_channel(array, "depth map", "(H, W) or (1, H, W)")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(EIGHT_BIT_MAX), True
    if array.dtype.kind in "iu":
        return _by_rows(array, lambda block: block.astype(np.float64) / depth_scale), False
    if array.dtype.kind == "f":
        return array.astype(np.float32), False
    raise InputError(
        f"expected a numeric depth map (float metres or integer units), found dtype {array.dtype}"
    )


def _from_image(image: Image.Image, depth_scale: float) -> tuple[np.ndarray, bool]:
    if image.mode in WIDE_INTEGER_MODES:
        return _from_array(np.asarray(image), depth_scale)
    if image.mode == "F":
        return np.asarray(image, dtype=np.float32), False
    if image.mode not in ("L", "1", "LA", "La"):
        spread = channel_spread(image)
        if spread > GREY_TOLERANCE:
            raise InputError(
                f"expected a grey-scale depth image, found a colour {image.mode} image "
                f"(channels differ by {spread:.1f} levels on average); colour-mapped depth "
                "visualisations cannot be turned back into depth"
            )
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    return grey / np.float32(EIGHT_BIT_MAX), True


def _check_metric(depth: np.ndarray) -> None:
    require_finite(depth, "depth map")
    negative = depth < 0
    if negative.any():
        raise InputError(
            f"expected depth >= 0 (0 marks missing pixels), found {int(negative.sum())} "
            f"negative values (min {float(depth.min()):g})"
        )


def check_options(
    *,
    mode: str = DEFAULT_MODE,
    depth_scale: float = DEFAULT_DEPTH_SCALE,
    baseline: float = KINECT_BASELINE_M,
    focal_length: float = KINECT_FOCAL_PX,
    max_disparity: float = MAX_DISPARITY,
) -> None:
    """ValueError for an invalid option value (checked before any item is read)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    positive_number("depth_scale", depth_scale)
    positive_number("baseline", baseline)
    positive_number("focal_length", focal_length)
    positive_number("max_disparity", max_disparity)
