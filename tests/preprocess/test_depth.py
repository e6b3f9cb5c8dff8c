"""Depth preprocessing: input kinds, the disparity recipe, missing pixels, errors."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imagebind_sdk.preprocess import InputError, depth

BASELINE_X_FOCAL = 0.075 * 518.857901  # 38.914342575 (metres x pixels)


def _png(tmp_path: Path, array: np.ndarray, name: str = "depth.png") -> Path:
    path = tmp_path / name
    Image.fromarray(array).save(path)
    return path


@pytest.fixture()
def depth_mm() -> np.ndarray:
    """A 16-bit depth map in millimetres: a ramp 500..4500 mm with a missing corner."""
    ramp = np.linspace(500, 4500, 300 * 400).reshape(300, 400).astype(np.uint16)
    ramp[:20, :30] = 0
    return ramp


@pytest.fixture()
def depth_png(tmp_path: Path, depth_mm: np.ndarray) -> Path:
    return _png(tmp_path, depth_mm)


def test_item_shape() -> None:
    assert depth.ITEM_SHAPE == (1, 224, 224)


def test_sample_assets(assets_dir: Path) -> None:
    files = sorted((assets_dir / "depth").glob("*.jpg"))
    assert files
    for path in files:
        out = depth.preprocess(path)
        assert out.shape == (1, 224, 224) and out.dtype == torch.float32
        assert torch.isfinite(out).all()
        assert -0.1 < float(out.min()) and float(out.max()) < 1.1  # 8-bit: value / 255
        assert torch.equal(out, depth.preprocess(path))  # deterministic


def test_16bit_png_input_kinds_agree(depth_png: Path, depth_mm: np.ndarray) -> None:
    reference = depth.preprocess(str(depth_png))
    metres = (depth_mm.astype(np.float64) / 1000).astype(np.float32)
    with open(depth_png, "rb") as handle:
        from_handle = depth.preprocess(handle)
    variants = [
        depth.preprocess(depth_png),
        depth.preprocess(depth_png.read_bytes()),
        depth.preprocess(io.BytesIO(depth_png.read_bytes())),
        from_handle,
        depth.preprocess(Image.open(depth_png)),
        depth.preprocess(depth_mm),
        depth.preprocess(depth_mm[None]),
        depth.preprocess(depth_mm[..., None]),
        depth.preprocess(torch.from_numpy(depth_mm.astype(np.int32))),
        depth.preprocess(metres),
        depth.preprocess(torch.from_numpy(metres)[None]),
        depth.preprocess(metres.astype(np.float64)),
    ]
    for out in variants:
        assert torch.equal(out, reference)
    assert torch.equal(reference, depth.preprocess(depth_png))  # deterministic


def test_8bit_input_kinds_agree(assets_dir: Path) -> None:
    path = sorted((assets_dir / "depth").glob("*.jpg"))[0]
    reference = depth.preprocess(path)
    grey = np.array(Image.open(path).convert("L"))
    rgb = np.asarray(Image.open(path))
    for item in (path.read_bytes(), Image.open(path), grey, rgb, torch.from_numpy(grey)):
        assert torch.equal(depth.preprocess(item), reference)


def test_8bit_is_normalised_disparity_in_every_mode() -> None:
    grey = np.full((240, 320), 51, dtype=np.uint8)
    for mode in depth.MODES:
        out = depth.preprocess(grey, mode=mode)
        assert torch.allclose(out, torch.full_like(out, 51 / 255), atol=1e-6)


def test_constant_depth_gives_hand_computed_disparity() -> None:
    out = depth.preprocess(np.full((300, 400), 2.0, dtype=np.float32))
    expected = BASELINE_X_FOCAL / 2.0 / 75.0  # 0.25942895...
    assert torch.allclose(out, torch.full_like(out, expected), atol=1e-6)


def test_16bit_png_uses_depth_scale(tmp_path: Path) -> None:
    path = _png(tmp_path, np.full((240, 320), 4000, dtype=np.uint16))
    expected = BASELINE_X_FOCAL / 2.0 / 75.0  # 4000 units / 2000 units per metre = 2 m
    out = depth.preprocess(path, depth_scale=2000)
    assert torch.allclose(out, torch.full_like(out, expected), atol=1e-6)
    out_mm = depth.preprocess(path)  # default: millimetres -> 4 m
    assert torch.allclose(out_mm, torch.full_like(out_mm, expected / 2), atol=1e-6)


def test_near_depth_is_clamped_at_max_disparity() -> None:
    out = depth.preprocess(np.full((224, 224), 0.4, dtype=np.float32))  # 97.3 px > 75
    assert torch.allclose(out, torch.ones_like(out))


def test_camera_parameters() -> None:
    flat = np.full((224, 224), 2.0, dtype=np.float32)
    out = depth.preprocess(flat, baseline=0.1, focal_length=500.0, max_disparity=50.0)
    assert torch.allclose(out, torch.full_like(out, 0.1 * 500.0 / 2.0 / 50.0), atol=1e-6)


def test_normalized_disparity_small_case() -> None:
    values = np.array([[0.0, 1.0], [0.25, 100.0]])
    out = depth.normalized_disparity(values, 0.075, 518.857901, 75.0)
    expected = [[0.0, BASELINE_X_FOCAL / 75], [1.0, BASELINE_X_FOCAL / 100 / 75]]
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out.dtype == np.float32


def test_inverse_mode() -> None:
    values = np.array([[1.0, 2.0], [4.0, 0.0]])
    np.testing.assert_allclose(depth.normalized_inverse_depth(values), [[1, 0.5], [0.25, 0]])
    out = depth.preprocess(np.full((224, 300), 3.0, dtype=np.float32), mode="inverse")
    assert torch.allclose(out, torch.ones_like(out))


def test_raw_mode_and_centre_crop_geometry() -> None:
    values = np.random.default_rng(0).random((224, 600), dtype=np.float32)
    out = depth.preprocess(values, mode="raw")  # short side already 224: crop only
    assert torch.equal(out[0], torch.from_numpy(values[:, 188:412]))  # round((600-224)/2)
    tall = np.random.default_rng(1).random((225, 224), dtype=np.float32)
    out = depth.preprocess(tall, mode="raw")
    assert torch.equal(out[0], torch.from_numpy(tall[:224]))  # round(0.5) == 0


def test_resize_is_float_bicubic_of_short_side() -> None:
    ramp = np.tile(np.linspace(1.0, 2.0, 800, dtype=np.float32), (448, 1))  # 448 x 800
    out = depth.preprocess(ramp, mode="raw")
    expected = Image.fromarray(ramp).resize((400, 224), Image.Resampling.BICUBIC)
    expected = np.asarray(expected)[:, 88:312]  # round((400 - 224) / 2) = 88
    assert torch.equal(out[0], torch.from_numpy(np.ascontiguousarray(expected)))


def test_direct_call_on_model_sized_tensor_is_identity_in_raw_mode() -> None:
    tensor = torch.rand(1, 224, 224)
    assert torch.equal(depth.preprocess(tensor, mode="raw"), tensor)


def test_half_precision_tensors() -> None:
    values = torch.full((230, 240), 2.0)
    expected = depth.preprocess(values)
    for dtype in (torch.float16, torch.bfloat16):
        assert torch.allclose(depth.preprocess(values.to(dtype)), expected, atol=1e-6)


def test_missing_pixels_give_zero_not_inf(caplog: pytest.LogCaptureFixture) -> None:
    values = np.full((224, 224), 2.0, dtype=np.float32)
    values[:, :100] = 0.0  # missing
    for mode in depth.MODES:
        out = depth.preprocess(values, mode=mode)
        assert torch.isfinite(out).all()
        assert float(out[0, 100, 10]) == 0.0
    with caplog.at_level(logging.WARNING, logger="imagebind_sdk.preprocess.depth"):
        out = depth.preprocess(np.zeros((224, 300), dtype=np.uint16))
    assert torch.equal(out, torch.zeros(1, 224, 224))
    assert "no valid" in caplog.text


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("item", [None, 3.5, ["a.png"], {"depth": 1}])
def test_unsupported_type(item: object) -> None:
    with pytest.raises(InputError, match="expected a path, bytes"):
        depth.preprocess(item)


def test_non_finite_depth() -> None:
    values = np.full((50, 50), 1.0, dtype=np.float32)
    values[3, 3] = np.nan
    values[4, 4] = np.inf
    with pytest.raises(InputError, match=r"depth map contains non-finite values \(1 NaN, 1 inf\)"):
        depth.preprocess(values)


def test_negative_depth() -> None:
    values = np.full((50, 50), 1.0, dtype=np.float32)
    values[0, :5] = -1.0
    with pytest.raises(InputError, match=r"depth >= 0.*5 negative values \(min -1\)"):
        depth.preprocess(values)


@pytest.mark.parametrize("shape", [(2, 50, 50), (50,), (1, 2, 50, 50), (50, 50, 2)])
def test_bad_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=r"shape \(H, W\) or \(1, H, W\), found shape"):
        depth.preprocess(np.ones(shape, dtype=np.float32))


def test_empty_map() -> None:
    with pytest.raises(InputError, match="non-empty depth map"):
        depth.preprocess(np.ones((0, 5), dtype=np.float32))


@pytest.mark.parametrize("dtype", [bool, np.complex64])
def test_bad_dtype(dtype: type) -> None:
    with pytest.raises(InputError, match="numeric depth map.*found dtype"):
        depth.preprocess(np.ones((20, 20), dtype=dtype))


def test_colour_image_is_refused() -> None:
    colour = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    with pytest.raises(InputError, match="grey-scale depth image, found a colour RGB image"):
        depth.preprocess(Image.fromarray(colour))


def test_undecodable_bytes() -> None:
    with pytest.raises(InputError, match=r"expected an image file .* could not decode 9 bytes"):
        depth.preprocess(b"not a png")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        depth.preprocess(missing)


def test_directory_path(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected a file"):
        depth.preprocess(tmp_path)


def test_text_mode_file_object(depth_png: Path) -> None:
    with open(depth_png, encoding="latin-1") as handle:
        with pytest.raises(InputError, match="text mode"):
            depth.preprocess(handle)


def test_extreme_aspect_ratio() -> None:
    with pytest.raises(InputError, match="aspect ratio of at most 100:1, found a 500x2 image"):
        depth.preprocess(np.ones((2, 500), dtype=np.float32))


def test_bad_mode() -> None:
    with pytest.raises(ValueError, match="mode must be one of .*'disparity'.*got 'metric'"):
        depth.preprocess(np.ones((30, 30), dtype=np.float32), mode="metric")


@pytest.mark.parametrize("name", ["depth_scale", "baseline", "focal_length", "max_disparity"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), True, "1000"])
def test_bad_numeric_option(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a finite number > 0"):
        depth.preprocess(np.ones((30, 30), dtype=np.float32), **{name: value})
