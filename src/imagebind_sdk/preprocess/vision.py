"""Images -> the vision encoder's input, exactly as the reference computes it.

The reference (ImageBind's ``load_and_transform_vision_data``) runs torchvision's
``Resize(224, BICUBIC)``, ``CenterCrop(224)``, ``ToTensor()`` and ``Normalize`` on a
PIL image. On PIL images those are PIL's own bicubic resize, a crop, ``uint8 / 255``
and ``(x - mean) / std``, which is what this module does without torchvision. The
last two steps are a per-channel lookup table over the 256 byte values, computed
with the same float32 operations, so the output is bit-identical and cheap.
"""

from __future__ import annotations

import contextlib
import io
import logging
from typing import Any, Iterator

import numpy as np
import torch
from PIL import Image, ImageOps

from .sources import InputError, as_binary_stream, is_filelike, is_pathlike

logger = logging.getLogger(__name__)

IMAGE_SIZE = 224
ITEM_SHAPE = (3, IMAGE_SIZE, IMAGE_SIZE)
# CLIP normalisation constants used by the reference.
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
# Refuse images (and resized intermediates) with more pixels than this, checked
# from the header before decoding: guards against decompression bombs. It equals
# the size at which PIL itself raises DecompressionBombError (twice its default).
MAX_PIXELS = 178_956_970


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
    image = load_image(item, exif_transpose=exif_transpose)
    return to_model_input(image)


def load_image(item: Any, *, exif_transpose: bool = False) -> Image.Image:
    """Any accepted image input -> an RGB PIL image (decoded, size-checked)."""
    if isinstance(item, Image.Image):
        image = item
    elif isinstance(item, torch.Tensor):
        image = _image_from_tensor(item)
    elif isinstance(item, np.ndarray):
        image = _image_from_array(item)
    elif is_pathlike(item) or is_filelike(item) or isinstance(item, (bytes, bytearray, memoryview)):
        return _decode(item, exif_transpose)
    else:
        raise InputError(
            "expected an image path, bytes, file object, PIL image, numpy array or "
            f"torch tensor, got {type(item).__name__}"
        )
    with _decoder_errors():  # a PIL image may still be lazily backed by a bad file
        return _finish(image, exif_transpose)


def to_model_input(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> resized, centre-cropped, normalised (3, 224, 224) tensor."""
    cropped = np.asarray(resize_and_crop(image))
    out = np.empty(ITEM_SHAPE, dtype=np.float32)
    for channel in range(3):
        np.take(_LUT[channel], cropped[:, :, channel], out=out[channel])
    return torch.from_numpy(out)


def resize_and_crop(image: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Bicubic resize of the short side to ``size``, then a centre crop of size².

    Sizes and offsets follow torchvision: long side ``int(size * long / short)``,
    crop offset ``int(round((length - size) / 2))``.
    """
    width, height = image.size
    short, long = min(width, height), max(width, height)
    new_long = int(size * long / short)
    if new_long * size > MAX_PIXELS:
        raise InputError(
            f"image aspect ratio is too extreme ({width}x{height}): resizing it would "
            f"make {new_long * size} pixels, over the {MAX_PIXELS} limit"
        )
    new_w, new_h = (size, new_long) if width <= height else (new_long, size)
    if (new_w, new_h) != (width, height):
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
    left = int(round((new_w - size) / 2))
    top = int(round((new_h - size) / 2))
    return image.crop((left, top, left + size, top + size))


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise InputError(f"expected an image with pixels, found a zero-size image ({width}x{height})")
    if width * height > MAX_PIXELS:
        raise InputError(
            f"image is {width}x{height} = {width * height} pixels, over the {MAX_PIXELS}-pixel "
            "limit (possible decompression bomb); raise imagebind_sdk.preprocess.vision.MAX_PIXELS "
            "to allow it"
        )


def _decode(item: Any, exif_transpose: bool) -> Image.Image:
    """Open and fully decode an encoded image."""
    if isinstance(item, io.TextIOBase):
        raise InputError("file object is opened in text mode; open it with 'rb'")
    stream = as_binary_stream(item)
    try:
        with _decoder_errors():
            return _finish(Image.open(stream), exif_transpose)
    finally:
        if stream is not item:
            stream.close()


def _finish(image: Image.Image, exif_transpose: bool) -> Image.Image:
    """Size check (from the header, before decoding), decode, orientation, RGB."""
    _check_size(*image.size)
    image.load()  # decodes now, so corrupt data fails here and the stream can close
    if exif_transpose:
        image = ImageOps.exif_transpose(image)
    return image if image.mode == "RGB" else image.convert("RGB")


@contextlib.contextmanager
def _decoder_errors() -> Iterator[None]:
    """Turn PIL's many decoder failures into InputError saying what went wrong."""
    try:
        yield
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"image is too large (possible decompression bomb): {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise InputError("expected an image file, found data PIL cannot identify as an image") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InputError(f"image file is corrupt or truncated: {type(exc).__name__}: {exc}") from exc


def _image_from_array(array: np.ndarray) -> Image.Image:
    """numpy (H, W) or (H, W, 1|3|4), uint8 or float in [0, 1] -> PIL image."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InputError(
            "expected a numpy image of shape (H, W) or (H, W, 1|3|4), "
            f"found shape {tuple(array.shape)}"
        )
    _check_size(array.shape[1], array.shape[0])
    # fromarray picks L / RGB / RGBA from the shape of a uint8 array.
    return Image.fromarray(np.ascontiguousarray(_as_uint8(array)))


def _image_from_tensor(tensor: torch.Tensor) -> Image.Image:
    """torch (1|3, H, W), uint8 or float in [0, 1] -> PIL image."""
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3):
        raise InputError(
            f"expected an image tensor of shape (3, H, W) or (1, H, W), found shape {tuple(tensor.shape)}"
        )
    tensor = tensor.detach().cpu()
    if tensor.dtype in (torch.bfloat16, torch.float16):
        tensor = tensor.float()
    array = tensor.permute(1, 2, 0).numpy()
    return _image_from_array(array)


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
