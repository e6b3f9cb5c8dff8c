"""Thermal preprocessing: grey conversion, resize/crop, [0, 1] scaling, errors."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imagebind_sdk.preprocess import InputError, thermal


@pytest.fixture()
def thermal_file(assets_dir: Path) -> Path:
    return sorted((assets_dir / "thermal").glob("*.jpg"))[0]


def test_item_shape() -> None:
    assert thermal.ITEM_SHAPE == (1, 224, 224)


def test_sample_assets(assets_dir: Path) -> None:
    files = sorted((assets_dir / "thermal").glob("*.jpg"))
    assert files
    for path in files:
        out = thermal.preprocess(path)
        assert out.shape == (1, 224, 224) and out.dtype == torch.float32
        assert torch.isfinite(out).all()
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
        assert torch.equal(out, thermal.preprocess(path))  # deterministic


def test_input_kinds_agree(thermal_file: Path) -> None:
    reference = thermal.preprocess(str(thermal_file))
    grey = np.array(Image.open(thermal_file).convert("L"))
    rgb = np.array(Image.open(thermal_file))
    with open(thermal_file, "rb") as handle:
        from_handle = thermal.preprocess(handle)
    variants = [
        thermal.preprocess(thermal_file),
        thermal.preprocess(thermal_file.read_bytes()),
        thermal.preprocess(io.BytesIO(thermal_file.read_bytes())),
        from_handle,
        thermal.preprocess(Image.open(thermal_file)),
        thermal.preprocess(Image.open(thermal_file).convert("L")),
        thermal.preprocess(grey),
        thermal.preprocess(grey[None]),
        thermal.preprocess(grey[..., None]),
        thermal.preprocess(rgb),
        thermal.preprocess(torch.from_numpy(grey)),
        thermal.preprocess(torch.from_numpy(grey)[None]),
    ]
    for out in variants:
        assert torch.equal(out, reference)


def test_three_channel_grey_equals_one_channel(thermal_file: Path) -> None:
    rgb = np.array(Image.open(thermal_file))
    assert (rgb[..., 0] == rgb[..., 1]).all()  # the LLVIP frames are grey
    assert torch.equal(thermal.preprocess(rgb), thermal.preprocess(rgb[..., 0]))


def test_float_input_matches_8bit_within_rounding(thermal_file: Path) -> None:
    grey = np.array(Image.open(thermal_file).convert("L"))
    from_uint8 = thermal.preprocess(grey)
    for item in (grey / 255.0, torch.from_numpy(grey).float() / 255, Image.fromarray(grey / 255.0)):
        out = thermal.preprocess(item)
        difference = (out - from_uint8).abs()
        assert float(difference.max()) <= 4 / 255  # 8-bit resampling rounds in two passes
        assert float(difference.mean()) <= 0.5 / 255
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_constant_image_hand_computed() -> None:
    flat = np.full((300, 500), 100, dtype=np.uint8)
    out = thermal.preprocess(flat)
    assert torch.allclose(out, torch.full((1, 224, 224), 100 / 255))
    normed = thermal.preprocess(flat, normalize=True)
    assert torch.allclose(normed, torch.full((1, 224, 224), (100 / 255 - 0.5) / 0.5))


def test_normalize_is_affine_of_default(thermal_file: Path) -> None:
    plain = thermal.preprocess(thermal_file)
    normed = thermal.preprocess(thermal_file, normalize=True)
    assert torch.allclose(normed, (plain - thermal.NORM_MEAN) / thermal.NORM_STD)


def test_centre_crop_geometry() -> None:
    ramp = np.tile(np.arange(600) % 256, (224, 1)).astype(np.uint8)  # 224 x 600
    out = thermal.preprocess(ramp)  # short side already 224: crop only
    expected = torch.from_numpy(ramp[:, 188:412].astype(np.float32) / 255)
    assert torch.equal(out[0], expected)


def test_resize_is_pil_bicubic_8bit() -> None:
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 420), dtype=np.uint8))
    expected = image.resize((313, 224), Image.Resampling.BICUBIC)  # int(224 * 420 / 300) = 313
    expected = np.asarray(expected, dtype=np.float32)[:, 44:268] / 255  # round(89 / 2) = 44
    assert torch.equal(thermal.preprocess(image)[0], torch.from_numpy(expected))


def test_colour_image_warns_and_uses_luma(caplog: pytest.LogCaptureFixture) -> None:
    colour = np.zeros((224, 224, 3), dtype=np.uint8)
    colour[..., 0] = 200  # pure red
    with caplog.at_level(logging.WARNING, logger="imagebind_sdk.preprocess.thermal"):
        out = thermal.preprocess(colour)
    assert "colour" in caplog.text
    luma = round(200 * 299 / 1000)  # ITU-R 601-2, PIL "L"
    assert torch.allclose(out, torch.full_like(out, luma / 255))


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("item", [None, 1, ["x.jpg"]])
def test_unsupported_type(item: object) -> None:
    with pytest.raises(InputError, match="expected a path, bytes"):
        thermal.preprocess(item)


@pytest.mark.parametrize("bad", [1.5, -0.2])
def test_float_out_of_range(bad: float) -> None:
    values = np.full((40, 40), 0.5, dtype=np.float32)
    values[0, 0] = bad
    with pytest.raises(InputError, match=r"float values in \[0, 1\], found values in"):
        thermal.preprocess(values)


def test_non_finite() -> None:
    values = np.full((40, 40), 0.5, dtype=np.float32)
    values[1, 1] = np.nan
    with pytest.raises(InputError, match=r"thermal image contains non-finite values \(1 NaN"):
        thermal.preprocess(values)


@pytest.mark.parametrize("dtype", [np.uint16, np.int32, bool])
def test_bad_dtype(dtype: type) -> None:
    expected = r"uint8 values \(0-255\) or floats in \[0, 1\], found dtype"
    with pytest.raises(InputError, match=expected):
        thermal.preprocess(np.ones((40, 40), dtype=dtype))


def test_16bit_png_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "radiometric.png"
    Image.fromarray(np.full((40, 40), 30000, dtype=np.uint16)).save(path)
    with pytest.raises(InputError, match=r"8-bit thermal image, found a I;16 \(16/32-bit\) image"):
        thermal.preprocess(path)


@pytest.mark.parametrize("shape", [(2, 40, 40), (40,), (40, 40, 2), (1, 1, 40, 40)])
def test_bad_shape(shape: tuple[int, ...]) -> None:
    expected = r"shape \(H, W\), \(1, H, W\) or \(H, W, 1\), found shape"
    with pytest.raises(InputError, match=expected):
        thermal.preprocess(np.zeros(shape, dtype=np.float32))


def test_empty_image() -> None:
    with pytest.raises(InputError, match="non-empty thermal image"):
        thermal.preprocess(np.zeros((0, 10), dtype=np.uint8))


def test_undecodable_bytes() -> None:
    with pytest.raises(InputError, match="could not decode 4 bytes"):
        thermal.preprocess(b"\x00\x01\x02\x03")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        thermal.preprocess(str(tmp_path / "missing.jpg"))


def test_normalize_must_be_bool() -> None:
    with pytest.raises(ValueError, match="normalize must be True or False, got 'yes'"):
        thermal.preprocess(np.zeros((30, 30), dtype=np.uint8), normalize="yes")
