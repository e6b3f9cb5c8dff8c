"""Image preprocessing: bit-exact against the reference, every input kind, every error."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from imagebind_sdk.preprocess import image, preprocess_batch, preprocess_one, vision
from imagebind_sdk.preprocess.sources import InputError

GOLDEN_IMAGES = [
    "alpha_0.png",
    "bird_image.jpg",
    "car_image.jpg",
    "cmyk_0.jpg",
    "dog_image.jpg",
    "exif_rotated_0.jpg",
    "gradient_0.jpg",
    "gray_small_0.png",
    "palette_0.gif",
    "tall_0.png",
    "wide_0.png",
]


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` RGB pixels but holds no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def dog(assets_dir: Path) -> Path:
    return assets_dir / "dog_image.jpg"


@pytest.fixture(scope="module")
def dog_expected(dog: Path) -> torch.Tensor:
    return vision.preprocess(dog)


# --- reference numbers -------------------------------------------------------------


def test_golden_list_is_complete(golden_preprocess: dict) -> None:
    keys = sorted(k.split("/", 1)[1] for k in golden_preprocess if k.startswith("vision/"))
    assert keys == GOLDEN_IMAGES


@pytest.mark.parametrize("name", GOLDEN_IMAGES)
def test_matches_reference_exactly(name: str, assets_dir: Path, golden_preprocess: dict) -> None:
    out = vision.preprocess(assets_dir / name)
    expected = golden_preprocess[f"vision/{name}"]
    assert out.dtype == torch.float32 and tuple(out.shape) == vision.ITEM_SHAPE
    assert torch.equal(out, expected), (out - expected).abs().max()


def test_exif_orientation_is_opt_in(assets_dir: Path, golden_preprocess: dict) -> None:
    path = assets_dir / "exif_rotated_0.jpg"
    rotated = vision.preprocess(path, exif_transpose=True)
    assert not torch.equal(rotated, golden_preprocess["vision/exif_rotated_0.jpg"])
    with Image.open(path) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    assert upright.size == (200, 300)  # orientation 6: the stored 300x200 image stands up
    assert torch.equal(rotated, vision.preprocess(upright))


def test_resize_and_crop_geometry() -> None:
    wide = Image.new("RGB", (1000, 100))
    tall = Image.new("RGB", (70, 900))
    assert image.resize_center_crop(wide).size == (224, 224)
    assert image.resize_center_crop(tall).size == (224, 224)
    assert image.resize_center_crop(Image.new("RGB", (5, 5))).size == (224, 224)


# --- input kinds -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: str(p), id="str"),
        pytest.param(lambda p: p, id="Path"),
        pytest.param(lambda p: p.read_bytes(), id="bytes"),
        pytest.param(lambda p: bytearray(p.read_bytes()), id="bytearray"),
        pytest.param(lambda p: io.BytesIO(p.read_bytes()), id="BytesIO"),
        pytest.param(lambda p: open(p, "rb"), id="file"),
        pytest.param(lambda p: Image.open(p), id="PIL"),
        pytest.param(lambda p: np.asarray(Image.open(p).convert("RGB")), id="numpy-uint8"),
        pytest.param(lambda p: np.asarray(Image.open(p).convert("RGB")) / 255.0, id="numpy-float"),
        pytest.param(
            lambda p: torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1),
            id="torch-uint8",
        ),
        pytest.param(
            lambda p: torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1) / 255.0,
            id="torch-float",
        ),
    ],
)
def test_input_kinds_agree(make, dog: Path, dog_expected: torch.Tensor) -> None:
    item = make(dog)
    try:
        assert torch.equal(vision.preprocess(item), dog_expected)
    finally:
        if hasattr(item, "close"):
            item.close()


def test_grey_and_rgba_arrays_convert_like_pil(assets_dir: Path, golden_preprocess: dict) -> None:
    grey = np.asarray(Image.open(assets_dir / "gray_small_0.png"))
    assert grey.ndim == 2
    assert torch.equal(vision.preprocess(grey), golden_preprocess["vision/gray_small_0.png"])
    assert torch.equal(vision.preprocess(grey[:, :, None]), golden_preprocess["vision/gray_small_0.png"])
    grey_tensor = torch.from_numpy(grey.copy())[None] / 255.0
    assert torch.equal(vision.preprocess(grey_tensor), golden_preprocess["vision/gray_small_0.png"])
    rgba = np.asarray(Image.open(assets_dir / "alpha_0.png"))
    assert rgba.shape[2] == 4
    assert torch.equal(vision.preprocess(rgba), golden_preprocess["vision/alpha_0.png"])


def test_dispatcher_passes_through_and_skips(dog: Path, dog_expected: torch.Tensor, tmp_path: Path) -> None:
    ready = torch.rand(vision.ITEM_SHAPE)
    assert torch.equal(preprocess_one("vision", ready), ready)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    batch = preprocess_batch("vision", [dog, bad], on_error="skip")
    assert batch.sources == [str(dog)] and torch.equal(batch.tensor[0], dog_expected)
    assert batch.skipped[0].index == 1 and "cannot identify" in batch.skipped[0].error


# --- errors ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        vision.preprocess(tmp_path / "nope.jpg")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a file"):
        vision.preprocess(tmp_path)


def test_not_an_image(tmp_path: Path, assets_dir: Path) -> None:
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(b"\x00\x01 definitely not a jpeg " * 50)
    with pytest.raises(InputError, match="cannot identify as an image"):
        vision.preprocess(garbage)
    with pytest.raises(InputError, match="cannot identify as an image"):
        vision.preprocess(assets_dir / "car_audio.wav")


@pytest.mark.parametrize("keep", [200, 0.5])
def test_truncated_file(keep: float, dog: Path, tmp_path: Path) -> None:
    data = dog.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: int(keep if keep > 1 else len(data) * keep)])
    with pytest.raises(InputError, match="corrupt or truncated"):
        vision.preprocess(cut)
    if keep < 1:  # the header survives: PIL opens it lazily, and decoding fails later
        with Image.open(cut) as lazy, pytest.raises(InputError, match="corrupt or truncated"):
            vision.preprocess(lazy)


def test_other_pil_modes_convert_like_pil() -> None:
    ramp = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20
    for image in (Image.fromarray(ramp), Image.new("CMYK", (50, 30), (10, 200, 30, 40)), Image.new("LA", (9, 9))):
        assert torch.equal(vision.preprocess(image), vision.preprocess(image.convert("RGB"))), image.mode


def test_zero_size_images() -> None:
    with pytest.raises(InputError, match="zero-size image"):
        vision.preprocess(np.zeros((0, 10, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="zero-size image"):
        vision.preprocess(Image.new("RGB", (0, 0)))
    with pytest.raises(InputError, match="cannot identify"):  # PIL refuses a 0x0 PNG header
        vision.preprocess(_png_header(0, 0))


def test_decompression_bomb_header() -> None:
    with pytest.raises(InputError, match="decompression bomb"):
        vision.preprocess(_png_header(100_000, 100_000))


def test_pixel_limit_checked_before_decoding(dog: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "MAX_PIXELS", 1000)
    with pytest.raises(InputError, match="pixel limit"):
        vision.preprocess(dog)
    with pytest.raises(InputError, match="pixel limit"):
        vision.preprocess(np.zeros((40, 40, 3), dtype=np.uint8))


def test_extreme_aspect_ratio() -> None:
    with pytest.raises(InputError, match="aspect ratio"):
        vision.preprocess(Image.new("RGB", (1_000_000, 1)))


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros((8, 8, 2), dtype=np.uint8), "shape"),
        (np.zeros((2, 8, 8, 3), dtype=np.uint8), "shape"),
        (np.zeros(8, dtype=np.uint8), "shape"),
        (np.zeros((8, 8, 3), dtype=np.uint16), "dtype uint16"),
        (np.zeros((8, 8, 3), dtype=bool), "dtype bool"),
        (torch.zeros(8, 8, 3), "shape"),
        (torch.zeros(2, 8, 8), "shape"),
        (torch.zeros(3, 8, 8, dtype=torch.int64), "dtype int64"),
        (torch.full((3, 8, 8), 1.5), r"\[0, 1\]"),
        (np.full((8, 8, 3), -0.1), r"\[0, 1\]"),
        (torch.full((3, 8, 8), float("nan")), "non-finite"),
        (np.full((8, 8, 3), np.inf), "non-finite"),
    ],
)
def test_bad_arrays(array, words: str) -> None:
    with pytest.raises(InputError, match=words):
        vision.preprocess(array)


def test_unsupported_types(dog: Path) -> None:
    with pytest.raises(InputError, match="expected an image path"):
        vision.preprocess(42)
    with open(dog, encoding="latin-1") as text_file, pytest.raises(InputError, match="text mode"):
        vision.preprocess(text_file)
