"""The batch dispatcher in imagebind_sdk.preprocess, exercised with IMU and thermal items."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from imagebind_sdk.kinds import INPUT_KINDS
from imagebind_sdk.preprocess import audio, depth, imu, thermal, video, vision
from imagebind_sdk.preprocess import (
    ITEM_SHAPES,
    PREPROCESSORS,
    Batch,
    InputError,
    Skipped,
    as_item_list,
    option_names,
    preprocess_batch,
    preprocess_one,
    validate_options,
)


def _imu(seed: int, steps: int = 100) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(6, steps)).astype(np.float32)


@pytest.fixture()
def thermal_paths(tmp_path: Path) -> list[Path]:
    paths = []
    for value in (10, 120, 240):
        path = tmp_path / f"thermal_{value}.png"
        Image.fromarray(np.full((240, 320), value, dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.fixture()
def broken_csv(tmp_path: Path) -> Path:
    path = tmp_path / "broken.csv"
    path.write_text("time,accl_x,accl_y\n0,1,2\n")
    return path


def test_good_items_are_stacked_in_order() -> None:
    items = [_imu(0), _imu(1, steps=2500), _imu(2).T]
    batch = preprocess_batch("imu", items)
    assert isinstance(batch, Batch)
    assert batch.tensor is not None and batch.tensor.shape == (3, 6, 2000)
    assert batch.tensor.dtype == torch.float32
    for row, item in zip(batch.tensor, (_imu(0), _imu(1, steps=2500), _imu(2))):
        steps = min(item.shape[1], 2000)
        assert torch.equal(row[:, :steps], torch.from_numpy(item[:, :steps]))
    assert batch.skipped == []
    assert batch.sources == [
        "<numpy.ndarray shape=(6, 100)>",
        "<numpy.ndarray shape=(6, 2500)>",
        "<numpy.ndarray shape=(100, 6)>",
    ]


def test_thermal_paths_batch(thermal_paths: list[Path]) -> None:
    batch = preprocess_batch("thermal", thermal_paths, normalize=True)  # options reach the module
    assert batch.tensor is not None and batch.tensor.shape == (3, 1, 224, 224)
    for row, value in zip(batch.tensor, (10, 120, 240)):
        assert torch.allclose(row, torch.full((1, 224, 224), (value / 255 - 0.5) / 0.5))
    assert batch.sources == [str(p) for p in thermal_paths]


def test_bad_item_in_the_middle_raises_with_modality_index_and_path(broken_csv: Path) -> None:
    with pytest.raises(InputError) as info:
        preprocess_batch("imu", [_imu(0), broken_csv, _imu(1)])
    message = str(info.value)
    assert message.startswith("imu[1]")
    assert str(broken_csv) in message
    assert "missing IMU channel(s) accl_z, gyro_x, gyro_y, gyro_z" in message
    assert isinstance(info.value.__cause__, InputError)


def test_bad_thermal_path_in_the_middle(thermal_paths: list[Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"definitely not an image")
    with pytest.raises(InputError, match=r"thermal\[1\] \(.*junk\.png\): expected an image file"):
        preprocess_batch("thermal", [thermal_paths[0], junk, thermal_paths[1]])


def test_missing_path_raises_file_not_found_naming_it(
    thermal_paths: list[Path], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.jpg"
    with pytest.raises(FileNotFoundError) as info:
        preprocess_batch("thermal", [thermal_paths[0], thermal_paths[1], missing])
    assert str(info.value).startswith("thermal[2]")
    assert str(missing) in str(info.value)


def test_skip_returns_good_ones_and_lists_the_bad_one(
    broken_csv: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="imagebind_sdk.preprocess"):
        batch = preprocess_batch("imu", [_imu(0), broken_csv, _imu(1)], on_error="skip")
    assert batch.tensor is not None and batch.tensor.shape == (2, 6, 2000)
    assert torch.equal(batch.tensor[1, :, :100], torch.from_numpy(_imu(1)))
    assert len(batch.skipped) == 1
    skipped = batch.skipped[0]
    assert isinstance(skipped, Skipped)
    assert skipped.index == 1 and skipped.source == str(broken_csv)
    assert "missing IMU channel" in skipped.error
    assert "skipping imu[1]" in caplog.text


def test_skip_everything_gives_no_tensor(tmp_path: Path) -> None:
    missing = [tmp_path / "a.csv", tmp_path / "b.csv"]
    batch = preprocess_batch("imu", missing, on_error="skip")
    assert batch.tensor is None and batch.sources == []
    assert [s.index for s in batch.skipped] == [0, 1]
    assert "no such file" in batch.skipped[0].error


def test_invalid_on_error() -> None:
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip', got 'ignore'"):
        preprocess_batch("imu", [_imu(0)], on_error="ignore")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "modality, shape", [("imu", (6, 2000)), ("thermal", (1, 224, 224)), ("depth", (1, 224, 224))]
)
def test_item_shaped_tensor_passes_through(modality: str, shape: tuple[int, ...]) -> None:
    tensor = torch.randn(shape) * 10  # out of any module's natural range: untouched
    batch = preprocess_batch(modality, [tensor])
    assert batch.tensor is not None and torch.equal(batch.tensor[0], tensor)
    assert torch.equal(preprocess_one(modality, tensor.double()), tensor)


def test_raw_depth_tensor_of_other_shape_is_converted() -> None:
    batch = preprocess_batch("depth", [torch.full((224, 224), 2.0)])  # metres, not (1, 224, 224)
    expected = 0.075 * 518.857901 / 2.0 / 75.0
    assert batch.tensor is not None
    assert torch.allclose(batch.tensor, torch.full((1, 1, 224, 224), expected), atol=1e-6)


def test_batch_tensor_splits_into_items() -> None:
    stacked = torch.randn(4, 6, 2000)
    items = as_item_list("imu", stacked)
    assert len(items) == 4 and all(item.shape == (6, 2000) for item in items)
    batch = preprocess_batch("imu", items)
    assert batch.tensor is not None and torch.equal(batch.tensor, stacked)
    assert as_item_list("thermal", torch.zeros(2, 1, 224, 224))[1].shape == (1, 224, 224)


def test_as_item_list_wraps_single_items(thermal_paths: list[Path]) -> None:
    single = _imu(0)
    assert as_item_list("imu", single)[0] is single
    assert as_item_list("thermal", thermal_paths[0]) == [thermal_paths[0]]
    assert as_item_list("thermal", tuple(thermal_paths)) == thermal_paths
    raw = torch.zeros(6, 300)  # not the item shape: one raw item, not split
    assert len(as_item_list("imu", raw)) == 1


def test_nan_in_pass_through_tensor() -> None:
    tensor = torch.zeros(6, 2000)
    tensor[0, 5] = float("nan")
    with pytest.raises(InputError, match=r"imu\[0\] .*tensor contains non-finite values \(1 NaN"):
        preprocess_batch("imu", [tensor])


def test_integer_tensor_of_input_shape_is_raw_data() -> None:
    # A uint8 (3, 224, 224) tensor is an image (e.g. torchvision.io.read_image), not a model input.
    pixels = torch.randint(0, 256, (3, 224, 224), dtype=torch.uint8)
    batch = preprocess_batch("vision", [pixels])
    expected = vision.preprocess(Image.fromarray(pixels.permute(1, 2, 0).numpy()))
    assert torch.equal(batch.tensor[0], expected)
    assert batch.tensor[0].min() < 0  # normalised, not passed through as 0..255


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown input kind 'smell'") as info:
        preprocess_batch("smell", [1])
    for name in ("depth", "imu", "thermal", "vision"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="expected one of"):
        as_item_list("smell", [1])


def test_table_covers_every_input_kind() -> None:
    modules = {"vision": vision, "video": video, "audio": audio, "depth": depth, "thermal": thermal, "imu": imu}
    assert set(PREPROCESSORS) == set(ITEM_SHAPES) == set(INPUT_KINDS) - {"text"}
    for kind, module in modules.items():
        assert PREPROCESSORS[kind] is module.preprocess and ITEM_SHAPES[kind] == module.ITEM_SHAPE


# --- options are checked first; every per-item failure is the item's -----------------


def test_invalid_option_value_raises_before_any_item_is_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.png"  # would be a skipped item if it were read
    with pytest.raises(ValueError, match="mode must be one of .*got 'metric'"):
        preprocess_batch("depth", [missing], on_error="skip", mode="metric")
    with pytest.raises(ValueError, match="crop must be one of"):
        validate_options("imu", {"crop": "middle"})
    validate_options("depth", {"mode": "raw", "depth_scale": 5000})  # valid: no error


def test_unknown_option_names_the_kind_and_lists_the_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown thermal option\(s\) 'normalise'; valid thermal options: normalize"):
        preprocess_batch("thermal", [tmp_path / "x.png"], on_error="skip", normalise=True)
    with pytest.raises(ValueError, match=r"unknown audio option\(s\) 'rate'; valid audio options: none"):
        validate_options("audio", {"rate": 16000})
    assert option_names("imu") == ["sample_rate", "target_rate", "crop"]


def test_overflow_after_decoding_is_a_skippable_item_error() -> None:
    sign = np.where(np.arange(32000) % 2 == 0, 1.0, -1.0)
    ok = (np.random.default_rng(0).normal(0, 0.1, 32000).astype(np.float32), 16000)
    huge = ((np.full(32000, 3e38) * sign).astype(np.float32), 16000)  # finite, overflows in the fbank
    batch = preprocess_batch("audio", [ok, huge], on_error="skip")
    assert batch.tensor is not None and batch.tensor.shape[0] == 1 and torch.isfinite(batch.tensor).all()
    assert [s.index for s in batch.skipped] == [1] and "non-finite" in batch.skipped[0].error
    with pytest.raises(InputError, match=r"audio\[1\] .*non-finite"):
        preprocess_batch("audio", [ok, huge])


def test_memory_error_of_one_item_is_that_items_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def greedy(item: np.ndarray, **options: object) -> torch.Tensor:
        if item.shape[1] > 1000:
            np.empty(1 << 62, dtype=np.uint8)  # numpy raises MemoryError: no real allocation
        return imu.preprocess(item, **options)

    monkeypatch.setitem(PREPROCESSORS, "imu", greedy)
    batch = preprocess_batch("imu", [_imu(0), _imu(1, steps=1500)], on_error="skip")
    assert batch.tensor is not None and batch.tensor.shape[0] == 1
    assert batch.skipped[0].index == 1 and "Unable to allocate" in batch.skipped[0].error


def test_numpy_image_batch_is_n_images() -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 40, 50, 3), dtype=np.uint8)
    items = as_item_list("vision", images)
    assert len(items) == 3
    batch = preprocess_batch("vision", items)
    for row, image in zip(batch.tensor, images):
        assert torch.equal(row, vision.preprocess(image))
