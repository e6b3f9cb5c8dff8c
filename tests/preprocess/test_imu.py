"""IMU preprocessing: layouts, CSV headers, padding/cutting, resampling, windows, errors."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from imagebind_sdk.preprocess import InputError, imu

CANONICAL = ["accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z"]


def _signal(steps: int, seed: int = 0) -> np.ndarray:
    """A (6, steps) float32 signal in the canonical channel order."""
    return np.random.default_rng(seed).normal(size=(6, steps)).astype(np.float32)


def _csv(signal: np.ndarray, header: list[str], order: list[int], extra: bool = True) -> str:
    """CSV text whose column j holds canonical channel order[j] (plus a timestamp)."""
    names = (["timestamp"] if extra else []) + [header[j] for j in range(len(order))]
    lines = [",".join(names)]
    for t in range(signal.shape[1]):
        cells = ([f"{t * 5}"] if extra else []) + [repr(float(signal[c, t])) for c in order]
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def test_item_shape_and_channels() -> None:
    assert imu.ITEM_SHAPE == (6, 2000)
    assert list(imu.CHANNELS) == CANONICAL


def test_sample_assets(assets_dir: Path) -> None:
    files = sorted((assets_dir / "imu").glob("*.csv"))
    assert len(files) == 3
    for path in files:
        out = imu.preprocess(path)
        assert out.shape == (6, 2000) and out.dtype == torch.float32
        assert torch.isfinite(out).all()
        assert torch.equal(out, imu.preprocess(path))  # deterministic


def test_sample_asset_is_reordered_padded_and_cut(assets_dir: Path) -> None:
    path = assets_dir / "imu" / "imu6_1500.csv"
    raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)  # gyro xyz, accl xyz
    assert path.read_text().splitlines()[0] == "gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z"
    out = imu.preprocess(path)
    expected = raw[:, [3, 4, 5, 0, 1, 2]].T.astype(np.float32)
    assert torch.equal(out[:, :1500], torch.from_numpy(expected))
    assert torch.equal(out[:, 1500:], torch.zeros(6, 500))
    long = imu.load_imu(assets_dir / "imu" / "imu3_4k.csv")
    assert long.shape == (6, 4000)
    assert torch.equal(imu.preprocess(assets_dir / "imu" / "imu3_4k.csv"), long[:, :2000])


def test_input_kinds_agree(tmp_path: Path) -> None:
    signal = _signal(300)
    text = _csv(signal, CANONICAL, list(range(6)))
    path = tmp_path / "log.csv"
    path.write_text(text)
    reference = imu.preprocess(signal)
    with open(path, "rb") as binary, open(path) as textual:
        handles = [imu.preprocess(binary), imu.preprocess(textual)]
    variants = handles + [
        imu.preprocess(str(path)),
        imu.preprocess(path),
        imu.preprocess(text.encode()),
        imu.preprocess(io.BytesIO(text.encode())),
        imu.preprocess(io.StringIO(text)),
        imu.preprocess(signal.T),
        imu.preprocess(signal.astype(np.float64)),
        imu.preprocess(torch.from_numpy(signal)),
        imu.preprocess(torch.from_numpy(signal).T),
    ]
    for out in variants:
        assert torch.equal(out, reference)


def test_shuffled_columns_give_the_same_tensor() -> None:
    signal = _signal(50)
    order = [4, 0, 5, 2, 1, 3]
    shuffled = _csv(signal, [CANONICAL[c] for c in order], order)
    straight = _csv(signal, CANONICAL, list(range(6)), extra=False)
    assert torch.equal(imu.preprocess(shuffled.encode()), imu.preprocess(straight.encode()))
    assert torch.equal(imu.preprocess(shuffled.encode())[:, :50], torch.from_numpy(signal))


@pytest.mark.parametrize(
    "header",
    [
        ["ax", "ay", "az", "gx", "gy", "gz"],
        ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"],
        ["Accel X", "Accel Y", "Accel Z", "Gyro X", "Gyro Y", "Gyro Z"],
        ["accelerometer_x", "accelerometer_y", "accelerometer_z"]
        + ["gyroscope_x", "gyroscope_y", "gyroscope_z"],
        [" ACCL_X ", "accl-y", "accl.z"]
        + ["angular_velocity_x", "angular_velocity_y", "angular_velocity_z"],
    ],
)
def test_header_aliases(header: list[str]) -> None:
    signal = _signal(20)
    out = imu.preprocess(_csv(signal, header, list(range(6))).encode())
    assert torch.equal(out[:, :20], torch.from_numpy(signal))


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_other_delimiters(delimiter: str) -> None:
    signal = _signal(10)
    text = _csv(signal, CANONICAL, list(range(6))).replace(",", delimiter)
    assert torch.equal(imu.preprocess(text.encode())[:, :10], torch.from_numpy(signal))


def test_padding_hand_computed() -> None:
    out = imu.preprocess(np.ones((6, 5), dtype=np.float32))
    assert torch.equal(out[:, :5], torch.ones(6, 5))
    assert torch.equal(out[:, 5:], torch.zeros(6, 1995))


@pytest.mark.parametrize("crop, start", [("start", 0), ("center", 250), ("end", 500)])
def test_cutting(crop: str, start: int) -> None:
    ramp = np.tile(np.arange(2500, dtype=np.float32), (6, 1))
    out = imu.preprocess(ramp, crop=crop)
    assert torch.equal(out, torch.from_numpy(ramp[:, start : start + 2000]))


def test_six_by_six_is_channels_first() -> None:
    square = np.arange(36, dtype=np.float32).reshape(6, 6)
    assert torch.equal(imu.preprocess(square)[:, :6], torch.from_numpy(square))


def test_model_sized_tensor_unchanged() -> None:
    tensor = torch.randn(6, 2000)
    assert torch.equal(imu.preprocess(tensor), tensor)


def test_integer_array_is_cast() -> None:
    out = imu.preprocess(np.full((6, 3), 2, dtype=np.int64))
    assert out.dtype == torch.float32 and float(out[0, 0]) == 2.0


def test_resample_hand_computed() -> None:
    ramp = torch.arange(9, dtype=torch.float32).repeat(6, 1)  # 9 steps at 400 Hz
    down = imu.resample(ramp, 400, 200)
    assert torch.equal(down, torch.tensor([0.0, 2, 4, 6, 8]).repeat(6, 1))
    up = imu.resample(torch.arange(3, dtype=torch.float32).repeat(6, 1), 100, 200)
    assert torch.equal(up, torch.tensor([0.0, 0.5, 1, 1.5, 2]).repeat(6, 1))
    assert torch.equal(imu.resample(ramp, 200, 200), ramp)


def test_preprocess_resamples_when_rate_given() -> None:
    ramp = np.tile(np.arange(9, dtype=np.float32), (6, 1))
    out = imu.preprocess(ramp, sample_rate=400)
    assert torch.equal(out[0, :5], torch.tensor([0.0, 2, 4, 6, 8]))
    assert torch.equal(out[:, 5:], torch.zeros(6, 1995))
    assert torch.equal(imu.preprocess(ramp, sample_rate=100, target_rate=100), imu.preprocess(ramp))


def test_windows() -> None:
    ramp = np.tile(np.arange(4500, dtype=np.float32), (6, 1))
    out = imu.windows(ramp)
    assert out.shape == (3, 6, 2000)
    assert torch.equal(out[1], torch.from_numpy(ramp[:, 2000:4000]))
    assert torch.equal(out[2, :, :500], torch.from_numpy(ramp[:, 4000:]))
    assert torch.equal(out[2, :, 500:], torch.zeros(6, 1500))
    assert imu.windows(ramp, drop_last=True).shape == (2, 6, 2000)
    overlapping = imu.windows(ramp, stride=1000)
    assert overlapping.shape == (4, 6, 2000)
    assert float(overlapping[3, 0, 0]) == 3000.0
    assert imu.windows(ramp[:, :4000], stride=1000).shape == (3, 6, 2000)


def test_windows_of_short_log_and_agreement_with_preprocess() -> None:
    short = _signal(700)
    out = imu.windows(short, drop_last=True)
    assert out.shape == (1, 6, 2000)
    assert torch.equal(out[0], imu.preprocess(short))


def test_windows_bad_stride() -> None:
    for stride in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="stride must be a positive integer"):
            imu.windows(_signal(10), stride=stride)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 100), (100, 7), (1, 6, 100), (6,)])
def test_bad_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match=r"shape \(6, T\) or \(T, 6\).*found shape"):
        imu.preprocess(np.zeros(shape, dtype=np.float32))


def test_empty() -> None:
    with pytest.raises(InputError, match="at least one IMU time step"):
        imu.preprocess(np.zeros((6, 0), dtype=np.float32))


@pytest.mark.parametrize("value, counts", [(np.nan, r"1 NaN, 0 inf"), (np.inf, r"0 NaN, 1 inf")])
def test_non_finite(value: float, counts: str) -> None:
    signal = _signal(10)
    signal[2, 3] = value
    with pytest.raises(InputError, match=rf"IMU data contains non-finite values \({counts}\)"):
        imu.preprocess(signal)


def test_nan_in_csv() -> None:
    text = "accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z\n1,2,3,4,5,nan\n"
    with pytest.raises(InputError, match="non-finite"):
        imu.preprocess(text.encode())


@pytest.mark.parametrize("dtype", [bool, np.complex64])
def test_bad_dtype(dtype: type) -> None:
    with pytest.raises(InputError, match="numeric IMU array, found dtype"):
        imu.preprocess(np.zeros((6, 10), dtype=dtype))


@pytest.mark.parametrize("item", [None, 4, [[0.0] * 6] * 3])
def test_unsupported_type(item: object) -> None:
    with pytest.raises(InputError, match=r"expected a \(6, T\) / \(T, 6\) numpy array"):
        imu.preprocess(item)


def test_csv_missing_channels_are_named() -> None:
    text = "time,accl_x,accl_y,accl_z,gyro_x\n0,1,2,3,4\n"
    expected = r"missing IMU channel\(s\) gyro_y, gyro_z.*found \['time'"
    with pytest.raises(InputError, match=expected):
        imu.preprocess(text.encode())


def test_csv_duplicate_channel() -> None:
    text = "ax,acc_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z\n" + ",".join("1" * 7) + "\n"
    expected = r"one CSV column for IMU channel accl_x, found 2: \['ax', 'acc_x'\]"
    with pytest.raises(InputError, match=expected):
        imu.preprocess(text.encode())


def test_csv_without_header() -> None:
    with pytest.raises(InputError, match="header row naming the channels.*found numbers"):
        imu.preprocess(b"1,2,3,4,5,6\n7,8,9,10,11,12\n")


def test_csv_non_numeric_cell() -> None:
    text = "accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z\n1,2,3,4,5,6\n1,2,oops,4,5,6\n"
    with pytest.raises(InputError, match=r"number at CSV line 3, column 'accl_z', found 'oops'"):
        imu.preprocess(text.encode())


def test_csv_empty_cell() -> None:
    text = "accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z\n1,2,3,4,5,\n"
    with pytest.raises(InputError, match=r"line 2, column 'gyro_z', found ''"):
        imu.preprocess(text.encode())


def test_csv_short_row() -> None:
    text = "accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z\n1,2,3,4,5,6\n1,2,3\n"
    with pytest.raises(InputError, match="CSV line 3 has 3 fields, expected 6"):
        imu.preprocess(text.encode())


def test_csv_empty_file() -> None:
    with pytest.raises(InputError, match="found no rows"):
        imu.preprocess(b"")


def test_csv_header_only() -> None:
    with pytest.raises(InputError, match="at least one data row"):
        imu.preprocess(b"accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z\n")


def test_csv_not_utf8() -> None:
    with pytest.raises(InputError, match="UTF-8 text CSV"):
        imu.preprocess(b"\xff\xfe\x00\x81garbage")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="absent.csv"):
        imu.preprocess(tmp_path / "absent.csv")


def test_bad_crop() -> None:
    with pytest.raises(ValueError, match="crop must be one of"):
        imu.preprocess(_signal(10), crop="middle")


@pytest.mark.parametrize("rate", [0, -200.0, float("nan"), float("inf"), "200", True])
def test_bad_sample_rate(rate: object) -> None:
    with pytest.raises(ValueError, match="sample_rate must be a finite number of Hz > 0"):
        imu.preprocess(_signal(10), sample_rate=rate)
    with pytest.raises(ValueError, match="target_rate must be a finite number of Hz > 0"):
        imu.preprocess(_signal(10), target_rate=rate)


@pytest.mark.parametrize("sample_rate", [3.2e-4, 1e-9, 1e-300])
def test_resampling_beyond_the_limit_is_refused(sample_rate: float) -> None:
    signal = np.random.default_rng(0).normal(size=(6, 100))
    with pytest.raises(InputError, match=f"over the limit of {imu.MAX_RESAMPLED_STEPS}"):
        imu.preprocess(signal, sample_rate=sample_rate)


def test_resampling_up_to_the_limit_works() -> None:
    signal = np.random.default_rng(0).normal(size=(6, 101))
    out = imu.windows(signal, sample_rate=1.0, target_rate=200.0)  # 100 s at 1 Hz -> 20001 steps
    assert out.shape == (11, 6, 2000)
