"""Images -> the vision encoder's input, exactly as the reference computes it.

The reference (ImageBind's ``load_and_transform_vision_data``) runs torchvision's
``Resize(224, BICUBIC)``, ``CenterCrop(224)``, ``ToTensor()`` and ``Normalize`` on a
PIL image. On PIL images those are PIL's own bicubic resize, a crop, ``uint8 / 255``
and ``(x - mean) / std``, which is what this module does without torchvision. The
last two steps are a per-channel lookup table over the 256 byte values, computed
with the same float32 operations, so the output is bit-identical and cheap.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from PIL import Image

from .image import IMAGE_SIZE, check_size, decoded, open_image, resize_center_crop
from .sources import InputError, source_kind, tensor_to_numpy

logger = logging.getLogger(__name__)

ITEM_SHAPE = (3, IMAGE_SIZE, IMAGE_SIZE)
# CLIP normalisation constants used by the reference.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)


def _byte_lookup_table() -> np.ndarray:
    """(3, 256) float32: normalised value of each byte per channel.

    Same operations and order as ToTensor + Normalize: ``byte / 255`` then
    ``(x - mean) / std``, all in float32.
    """
    scaled = torch.arange(256, dtype=torch.float32).div(255)
    mean = torch.tensor(MEAN, dtype=torch.float32)[:, None]
    std = torch.tensor(STD, dtype=torch.float32)[:, None]
    return ((scaled[None, :] - mean) / std).numpy()


_LUT = _byte_lookup_table()


def preprocess(item: Any, *, exif_transpose: bool = False) -> torch.Tensor:
    """One image -> float32 tensor (3, 224, 224).

    ``item`` is a path, bytes, a binary file object, a PIL image, a numpy array
    (H, W) / (H, W, 1|3|4) of uint8 (or float in [0, 1]), or a torch tensor
    (1|3, H, W) of uint8 or float in [0, 1]. EXIF orientation is ignored, as in the
    reference, unless ``exif_transpose`` is true.
    """
    check_options(exif_transpose=exif_transpose)
    image = load_image(item, exif_transpose=exif_transpose)
    return to_model_input(image)


def check_options(*, exif_transpose: bool = False) -> None:
    """ValueError for an invalid option value (checked before any item is read)."""
    if not isinstance(exif_transpose, bool):
        raise ValueError(f"exif_transpose must be True or False, got {exif_transpose!r}")


def load_image(item: Any, *, exif_transpose: bool = False) -> Image.Image:
    """Any accepted image input -> an RGB PIL image (decoded, size-checked)."""
    if isinstance(item, Image.Image):
        image = decoded(item, exif_transpose=exif_transpose)
    elif isinstance(item, torch.Tensor):
        image = _image_from_tensor(item)
    elif isinstance(item, np.ndarray):
        image = _image_from_array(item)
    elif source_kind(item) is not None:
        image = open_image(item, exif_transpose=exif_transpose)
    else:
        raise InputError(
            "expected an image path, bytes, file object, PIL image, numpy array or "
            f"torch tensor, got {type(item).__name__}"
        )
    return image if image.mode == "RGB" else image.convert("RGB")


def to_model_input(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> resized, centre-cropped, normalised (3, 224, 224) tensor."""
    cropped = np.asarray(resize_center_crop(image))
    out = np.empty(ITEM_SHAPE, dtype=np.float32)
    for channel in range(3):
        np.take(_LUT[channel], cropped[:, :, channel], out=out[channel])
    return torch.from_numpy(out)


def _image_from_array(array: np.ndarray) -> Image.Image:
    """numpy (H, W) or (H, W, 1|3|4), uint8 or float in [0, 1] -> PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(
            "expected a numpy image of shape (H, W) or (H, W, 1|3|4), "
            f"found shape {tuple(array.shape)}"
        )
    check_size(array.shape[1], array.shape[0])
    # fromarray picks L / RGB / RGBA from the shape of a uint8 array.
    return Image.fromarray(np.ascontiguousarray(_as_uint8(array)))


def _image_from_tensor(tensor: torch.Tensor) -> Image.Image:
    """torch (1|3, H, W), uint8 or float in [0, 1] -> PIL image."""
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise InputError(
            f"expected an image tensor of shape (3, H, W) or (1, H, W), found shape {tuple(tensor.shape)}"
        )
    return _image_from_array(tensor_to_numpy(tensor.permute(1, 2, 0)))


def _as_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 as is; float in [0, 1] rounded to the nearest of 256 levels (x * 255)."""
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.floating):
        raise InputError(
            f"expected image pixels of dtype uint8 or float in [0, 1], found dtype {array.dtype}"
        )
    if not np.isfinite(array).all():
        raise InputError(f"image contains non-finite values ({int(np.isnan(array).sum())} NaN)")
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise InputError(f"expected float image values in [0, 1], found values in [{low:g}, {high:g}]")
    return np.rint(array.astype(np.float32) * 255.0).astype(np.uint8)
