"""Single-channel image helpers shared by the depth and thermal pipelines.

Opening image files (errors as :class:`InputError`), measuring whether a colour
image is really grey, and the resize + centre crop.

The geometry is the one of the vision pipeline (torchvision ``Resize(224)`` then
``CenterCrop(224)`` on a PIL image): the short side becomes 224 with PIL's bicubic
filter, the long side ``int(224 * long / short)``, and the crop offsets are
``int(round((size - 224) / 2))``. It works on one band: 8-bit ``"L"`` images
(resampled in 8 bits, exactly as PIL does for the RGB pipeline) and 32-bit float
``"F"`` images (resampled in floating point, no quantisation).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageChops, ImageStat

from .sources import InputError, read_bytes

IMAGE_SIZE = 224
RESAMPLE = Image.Resampling.BICUBIC
# Refuse images so elongated that resizing the short side to 224 explodes the long side.
MAX_ASPECT_RATIO = 100.0
SINGLE_BAND_MODES = ("L", "F")


def squeeze_channel(array: np.ndarray, what: str, shapes: str) -> np.ndarray:
    """(1, H, W) or (H, W, 1) -> (H, W); anything else that is not a non-empty 2-D map is an error."""
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    elif array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise InputError(f"expected a {what} of shape {shapes}, found shape {array.shape}")
    if array.size == 0:
        raise InputError(f"expected a non-empty {what}, found shape {array.shape}")
    return array


def open_image(item: Any) -> Image.Image:
    """Decode a path, bytes or binary file object into a loaded PIL image."""
    data = read_bytes(item)  # FileNotFoundError / InputError for bad sources
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InputError(
            f"expected an image file (PNG, JPEG, TIFF, ...), "
            f"could not decode {len(data)} bytes: {exc}"
        ) from exc
    return image


def channel_spread(image: Image.Image) -> float:
    """Mean absolute difference (8-bit levels) between the colour channels; 0 for grey."""
    red, green, blue = image.convert("RGB").split()
    spreads = [ImageStat.Stat(ImageChops.difference(red, other)).mean[0] for other in (green, blue)]
    return float(max(spreads))


def resized_size(width: int, height: int, size: int = IMAGE_SIZE) -> tuple[int, int]:
    """(width, height) after scaling the short side to ``size`` (long side truncated)."""
    if width <= 0 or height <= 0:
        raise InputError(f"expected a non-empty image, found size {width}x{height}")
    short, long = min(width, height), max(width, height)
    if long / short > MAX_ASPECT_RATIO:
        raise InputError(
            f"expected an aspect ratio of at most {MAX_ASPECT_RATIO:g}:1, "
            f"found {width}x{height} ({long / short:.0f}:1)"
        )
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


def center_crop_box(width: int, height: int, size: int = IMAGE_SIZE) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the centred ``size`` x ``size`` crop."""
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def resize_center_crop(image: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Resize a single-band PIL image (short side -> ``size``, bicubic) and centre-crop it."""
    if image.mode not in SINGLE_BAND_MODES:
        raise ValueError(f"resize_center_crop takes modes {SINGLE_BAND_MODES}, got {image.mode!r}")
    new_size = resized_size(*image.size, size=size)
    if new_size != image.size:
        image = image.resize(new_size, resample=RESAMPLE)
    return image.crop(center_crop_box(*image.size, size=size))


def float_map_to_input(values: np.ndarray, size: int = IMAGE_SIZE) -> torch.Tensor:
    """A float (H, W) map -> resized, centre-cropped ``(1, size, size)`` float32 tensor."""
    if values.ndim != 2:
        raise ValueError(f"float_map_to_input takes an (H, W) array, got shape {values.shape}")
    image = Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))  # mode "F"
    return image_to_input(image, size=size)


def image_to_input(
    image: Image.Image, size: int = IMAGE_SIZE, divisor: float = 1.0
) -> torch.Tensor:
    """A single-band image -> resized, centre-cropped ``(1, size, size)`` tensor / ``divisor``."""
    cropped = resize_center_crop(image, size=size)
    array = np.array(cropped, dtype=np.float32)  # a writable copy
    if divisor != 1.0:
        array = array / np.float32(divisor)
    return torch.from_numpy(array).unsqueeze(0)
