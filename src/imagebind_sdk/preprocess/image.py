"""Images for every image-like kind: decoding with size guards, and the reference resize + crop.

Serves vision (RGB), depth and thermal (one band) and the frames of videos:

* :func:`check_size` refuses empty images, more than ``MAX_PIXELS`` pixels (read from
  the header, before decoding: decompression bombs) and aspect ratios over
  ``MAX_ASPECT_RATIO`` (the resize would blow the long side up).
* :func:`open_image` decodes a path, bytes or binary file object; :func:`decoded`
  finishes a PIL image handed in by the caller. Both apply the guards and turn PIL's
  many decoder failures into :class:`InputError`.
* :func:`resize_center_crop` is torchvision's ``Resize(224)`` + ``CenterCrop(224)``
  on a PIL image: short side to 224 with PIL's bicubic filter, long side
  ``int(224 * long / short)``, crop offsets ``int(round((size - 224) / 2))``. It works
  in the image's own mode: 8-bit ``"RGB"`` / ``"L"`` (as the reference) and 32-bit
  float ``"F"`` (resampled in floating point, no quantisation).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Iterator, Literal

import numpy as np
import torch
from PIL import Image, ImageChops, ImageOps, ImageStat

from ..model.config import IMAGE_SIZE
from .sources import InputError, read_bytes, require_finite

RESAMPLE = Image.Resampling.BICUBIC
# Refuse images with more pixels than this, checked from the header before decoding:
# guards against decompression bombs. PIL's own limit (178,956,970 pixels) is not enough:
# a 20 KB 13000 x 13000 palette PNG passed it and took 0.8 GB as vision, 1.6 GB as depth.
# 8192 x 6144 (50 MP photos) decodes in under ~250 MB.
MAX_PIXELS = 8192 * 6144
# Depth and thermal maps cost more per pixel (float copies): their limit is 4096 x 4096
# (~160 MB at most). Depth and thermal sensors give about 1 MP.
MAX_MAP_PIXELS = 4096 * 4096
PixelLimit = Literal["MAX_PIXELS", "MAX_MAP_PIXELS"]
# Refuse images so elongated that resizing the short side to 224 explodes the long side.
MAX_ASPECT_RATIO = 100.0
# PIL modes of 16/32-bit integer images (16-bit PNG depth, for instance).
WIDE_INTEGER_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")

__all__ = [
    "IMAGE_SIZE",
    "MAX_ASPECT_RATIO",
    "MAX_MAP_PIXELS",
    "MAX_PIXELS",
    "WIDE_INTEGER_MODES",
    "channel_spread",
    "check_size",
    "decoded",
    "open_image",
    "resize_center_crop",
    "single_band_to_input",
    "squeeze_channel",
]


def check_size(width: int, height: int, what: str = "image", limit: PixelLimit = "MAX_PIXELS") -> None:
    """InputError for an empty ``what``, one over the pixel ``limit`` (the name of this
    module's constant: ``MAX_PIXELS`` or ``MAX_MAP_PIXELS``) or over ``MAX_ASPECT_RATIO``."""
    if width <= 0 or height <= 0:
        raise InputError(f"expected a non-empty {what}, found a zero-size {what} ({width}x{height})")
    max_pixels = globals()[limit]  # read at call time: the constants may be raised
    if width * height > max_pixels:
        raise InputError(
            f"{what} is {width}x{height} = {width * height} pixels, over the {max_pixels}-pixel "
            f"limit (possible decompression bomb), checked before decoding; raise "
            f"imagebind_sdk.preprocess.image.{limit} to allow it"
        )
    short, long = min(width, height), max(width, height)
    if long / short > MAX_ASPECT_RATIO:
        raise InputError(
            f"expected an aspect ratio of at most {MAX_ASPECT_RATIO:g}:1, "
            f"found a {width}x{height} {what} ({long / short:.0f}:1)"
        )


def open_image(item: Any, *, exif_transpose: bool = False, limit: PixelLimit = "MAX_PIXELS") -> Image.Image:
    """Decode a path, bytes or binary file object into a loaded PIL image (its own mode).

    ``limit`` names the pixel limit checked from the header (see :func:`check_size`).
    """
    data = read_bytes(item)  # FileNotFoundError / InputError for bad sources
    with decoder_errors(len(data)):
        return _finish(Image.open(io.BytesIO(data)), exif_transpose, limit)


def decoded(image: Image.Image, *, exif_transpose: bool = False, limit: PixelLimit = "MAX_PIXELS") -> Image.Image:
    """A caller's PIL image, size-checked and loaded (it may be lazily backed by a bad file)."""
    with decoder_errors():
        return _finish(image, exif_transpose, limit)


def _finish(image: Image.Image, exif_transpose: bool, limit: str) -> Image.Image:
    check_size(*image.size, limit=limit)  # from the header: before decoding
    image.load()  # decodes now, so corrupt data fails here
    if image.mode == "F":  # float pixels (TIFF, PIL "F"): NaN/inf would be clamped to a silent grey
        require_finite(np.asarray(image), "float image")
    return ImageOps.exif_transpose(image) if exif_transpose else image


@contextlib.contextmanager
def decoder_errors(num_bytes: int | None = None) -> Iterator[None]:
    """Turn PIL's many decoder failures into InputError saying what went wrong."""
    what = "expected an image file (PNG, JPEG, TIFF, ...), could not decode " + (
        "it" if num_bytes is None else f"{num_bytes} bytes"
    )
    try:
        yield
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"image is too large (possible decompression bomb): {exc}") from exc
    except Image.UnidentifiedImageError as exc:
        raise InputError(f"{what}: data PIL cannot identify as an image") from exc
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        raise InputError(f"{what}: corrupt or truncated ({type(exc).__name__}: {exc})") from exc


def resized_size(width: int, height: int, size: int = IMAGE_SIZE) -> tuple[int, int]:
    """(width, height) after scaling the short side to ``size`` (long side truncated)."""
    check_size(width, height)
    short, long = min(width, height), max(width, height)
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


def center_crop_box(width: int, height: int, size: int = IMAGE_SIZE) -> tuple[int, int, int, int]:
    """The (left, top, right, bottom) box of the centred ``size`` x ``size`` crop."""
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return left, top, left + size, top + size


def resize_center_crop(image: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """Bicubic resize of the short side to ``size``, then the centred ``size`` x ``size`` crop."""
    new_size = resized_size(*image.size, size=size)
    if new_size != image.size:
        image = image.resize(new_size, resample=RESAMPLE)
    return image.crop(center_crop_box(*image.size, size=size))


def single_band_to_input(image: Image.Image, divisor: float = 1.0) -> torch.Tensor:
    """An ``"L"`` or ``"F"`` image -> resized, centre-cropped ``(1, 224, 224)`` tensor / ``divisor``."""
    if image.mode not in ("L", "F"):
        raise ValueError(f"single_band_to_input takes modes L and F, got {image.mode!r}")
    array = np.array(resize_center_crop(image), dtype=np.float32)  # a writable copy
    if divisor != 1.0:
        array = array / np.float32(divisor)
    return torch.from_numpy(array).unsqueeze(0)


def float_map(values: np.ndarray) -> Image.Image:
    """A float (H, W) array -> a 32-bit float PIL image (mode ``"F"``)."""
    return Image.fromarray(np.ascontiguousarray(values, dtype=np.float32))


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


def channel_spread(image: Image.Image) -> float:
    """Mean absolute difference (8-bit levels) between the colour channels; 0 for grey."""
    red, green, blue = image.convert("RGB").split()
    spreads = [ImageStat.Stat(ImageChops.difference(red, other)).mean[0] for other in (green, blue)]
    return float(max(spreads))
