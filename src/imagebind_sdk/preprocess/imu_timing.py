"""IMU rows placed at their timestamps: gaps in a log are not silently closed up.

An IMU CSV with a timestamp column (names in ``TIME_COLUMNS``, any unit) is checked for
gaps: a step more than ``GAP_FACTOR`` times the median step. Without gaps the rows are
used as they are (uniform steps, numbers unchanged). With gaps, each row is placed at
its timestamp on a uniform grid of the median step and the gaps are filled by linear
interpolation, so that step ``k`` is the time ``k`` median steps after the first row (a
2000-step window is then 10 s of the recording, not 10 s of rows) -- with a warning,
since the filled values were never measured. Timestamps that do not increase cannot be
honoured: the rows are then used in file order, with a warning.
"""

from __future__ import annotations

import logging

import numpy as np

from .sources import InputError

logger = logging.getLogger(__name__)

# Normalised CSV header names taken as the timestamp column (see imu._normalise).
TIME_COLUMNS = (
    "t", "ts", "time", "times", "timestamp", "timestamps", "seconds", "sec", "time_s", "time_ms",
    "time_us", "time_ns", "timestamp_s", "timestamp_ms", "timestamp_us", "timestamp_ns", "elapsed", "elapsed_s",
)
# A step longer than this many median steps is a gap.
GAP_FACTOR = 1.5
# Gridded logs longer than this are refused (a hostile timestamp must not allocate gigabytes);
# the same bound as resampling (imu.MAX_RESAMPLED_STEPS).
MAX_GRID_STEPS = 2_000_000


def regular_steps(signal: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``signal`` (channels, T) with rows at ``times`` -> (channels, T') on uniform steps."""
    if len(times) < 3:
        return signal
    steps = np.diff(times)
    if not np.isfinite(times).all() or (steps <= 0).any():
        row = int(np.argmax(~(steps > 0))) + 2 if np.isfinite(times).all() else 1
        logger.warning(
            "IMU timestamps are not finite and increasing (data row %d): rows are used in file order "
            "as uniform steps", row
        )
        return signal
    step = float(np.median(steps))
    gaps = np.flatnonzero(steps > GAP_FACTOR * step)
    if not len(gaps):
        return signal
    positions = (times - times[0]) / step
    count = int(np.floor(positions[-1] + 1e-9)) + 1
    if count > MAX_GRID_STEPS:
        raise InputError(
            f"IMU timestamps span {positions[-1]:.3g} median steps ({step:g} apart), over the limit of "
            f"{MAX_GRID_STEPS} steps (imagebind_sdk.preprocess.imu_timing.MAX_GRID_STEPS)"
        )
    largest = int(gaps[np.argmax(steps[gaps])])
    logger.warning(
        "IMU log has %d timestamp gap(s), the largest %.3g steps after data row %d: rows are placed at "
        "their timestamps on steps of %g and the gaps filled by linear interpolation",
        len(gaps), steps[largest] / step, largest + 1, step,
    )
    grid = np.arange(count, dtype=np.float64)
    return np.stack([np.interp(grid, positions, channel) for channel in signal])
