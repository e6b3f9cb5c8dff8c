"""IMU CSV timestamps are honoured: a gap in the log is not closed up silently."""

from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pytest

from imagebind_sdk.preprocess import imu
from imagebind_sdk.preprocess.sources import InputError
from imagebind_sdk.preprocess.windowing import imu_windows

RATE = 200


def _csv(times: np.ndarray, values: np.ndarray) -> bytes:
    lines = ["timestamp,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z"]
    lines += [f"{float(t)!r}," + ",".join(repr(float(v)) for v in row) for t, row in zip(times, values)]
    return ("\n".join(lines) + "\n").encode()


def _log_with_gap() -> tuple[np.ndarray, np.ndarray]:
    """10 s at 200 Hz, nothing for 5 s, then 10 s more: 4000 rows over 25 s."""
    times = np.concatenate([np.arange(2000), np.arange(3000, 5000)]) / RATE
    values = np.stack([np.sin(times * (c + 1)) for c in range(6)], axis=1)
    return times, values


def test_rows_after_a_gap_are_placed_at_their_timestamps(caplog: pytest.LogCaptureFixture) -> None:
    times, values = _log_with_gap()
    with caplog.at_level(logging.WARNING):
        signal = imu.load_imu(_csv(times, values)).numpy()
    assert signal.shape == (6, 5000)  # 25 s at 200 Hz, not 4000 rows closed up into 20 s
    np.testing.assert_allclose(signal[:, :2000], values[:2000].T, rtol=0, atol=1e-6)
    np.testing.assert_allclose(signal[:, 3000:], values[2000:].T, rtol=0, atol=1e-6)
    assert "1 timestamp gap(s), the largest 1e+03 steps after data row 2000" in caplog.text


def test_windows_follow_the_timestamps() -> None:
    times, values = _log_with_gap()
    plan = next(imu_windows(_csv(times, values), Fraction(10), Fraction(10), batch_size=4))
    assert plan.starts == [0.0, 10.0, 15.0] and plan.ends[-1] == 25.0


def test_uniform_timestamps_change_nothing(caplog: pytest.LogCaptureFixture) -> None:
    times = np.arange(3000) / RATE + 0.0001 * np.sin(np.arange(3000))  # jitter, no gap
    values = np.random.default_rng(0).standard_normal((3000, 6))
    with caplog.at_level(logging.WARNING):
        signal = imu.load_imu(_csv(times, values))
    np.testing.assert_array_equal(signal.numpy(), values.T.astype(np.float32))
    assert not caplog.text


def test_timestamps_that_do_not_increase_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    times = np.arange(100) / RATE
    times[50] = times[10]
    values = np.ones((100, 6))
    with caplog.at_level(logging.WARNING):
        signal = imu.load_imu(_csv(times, values))
    assert signal.shape == (6, 100)
    assert "not finite and increasing (data row 51)" in caplog.text


def test_a_hostile_gap_is_refused_before_allocating() -> None:
    times = np.array([0.0, 0.005, 0.010, 1e9])
    with pytest.raises(InputError, match="IMU timestamps span .* over the limit"):
        imu.load_imu(_csv(times, np.zeros((4, 6))))
