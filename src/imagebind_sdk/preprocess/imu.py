"""IMU logs -> the ``(6, 2000)`` input of ImageBind's IMU encoder.

The reference code ships no IMU loader. ImageBind was trained on Ego4D IMU:
accelerometer and gyroscope, three axes each, as a 6 x 2000 tensor. Channels are
ordered ``CHANNELS`` = accl_x, accl_y, accl_z, gyro_x, gyro_y, gyro_z. Values are
passed through unchanged: give acceleration in m/s^2 and angular velocity in
rad/s (Ego4D's units); nothing is rescaled.

Inputs: (6, T) or (T, 6) numpy arrays / torch tensors (a 6 x 6 array is read as
channels-first, the model's layout), or CSV files with a header row naming the
channels (see ``CHANNEL_ALIASES``; other columns are ignored, except one timestamp
column: rows are then placed at their timestamps, see :mod:`.imu_timing`).
With ``sample_rate`` given, the log is linearly resampled to ``target_rate``
(default ``MODEL_SAMPLE_RATE`` = 200 Hz, Ego4D's rate: 2000 steps = 10 s). Then a
sequence shorter than 2000 steps is zero-padded on the right and a longer one is
cut to 2000 (``crop`` picks which part); :func:`windows` splits a long log into
consecutive windows instead.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import re
from typing import Any, Literal

import numpy as np
import torch

from ..model.config import IMU_LENGTH
from . import imu_timing
from .options import positive_number
from .sources import InputError, read_bytes, require_finite, source_kind, tensor_to_numpy

logger = logging.getLogger(__name__)

# The model's channel order: accelerometer then gyroscope, x, y, z each.
CHANNELS = ("accl_x", "accl_y", "accl_z", "gyro_x", "gyro_y", "gyro_z")
# CSV header names accepted for each sensor (case, spaces and punctuation ignored):
# "<prefix>_<axis>" or "<prefix><axis>", e.g. acc_x, ACCEL X, ax, gyr_x, gx.
ACCEL_PREFIXES = ("accl", "acc", "accel", "accelerometer", "acceleration", "a")
GYRO_PREFIXES = ("gyro", "gyr", "gyroscope", "angular_velocity", "g")
CSV_DELIMITERS = ",;\t"

NUM_CHANNELS = len(CHANNELS)
WINDOW = IMU_LENGTH
ITEM_SHAPE = (NUM_CHANNELS, WINDOW)
# Sampling rate (Hz) the 2000-step window is assumed to have (Ego4D IMU, ~200 Hz).
MODEL_SAMPLE_RATE = 200.0
# Resampling may produce at most this many steps (1000 windows, 2.8 h at 200 Hz; about
# 130 MB while interpolating): a wrong sample_rate must not allocate gigabytes.
MAX_RESAMPLED_STEPS = 2_000_000
# A CSV header with more fields than this is refused before parsing (a million columns
# took 10 s to sniff and match); real IMU logs have a few dozen at most.
MAX_CSV_COLUMNS = 1000

Crop = Literal["start", "center", "end"]
CROPS = ("start", "center", "end")


def _aliases(prefixes: tuple[str, ...], axis: str) -> tuple[str, ...]:
    return tuple(name for p in prefixes for name in (f"{p}_{axis}", f"{p}{axis}"))


CHANNEL_ALIASES: dict[str, tuple[str, ...]] = {
    channel: _aliases(ACCEL_PREFIXES if channel.startswith("accl") else GYRO_PREFIXES, channel[-1])
    for channel in CHANNELS
}

_ACCEPTED = "a (6, T) / (T, 6) numpy array or torch tensor, or a CSV path, bytes or file object"

__all__ = [
    "CHANNELS",
    "CHANNEL_ALIASES",
    "ITEM_SHAPE",
    "MAX_RESAMPLED_STEPS",
    "MODEL_SAMPLE_RATE",
    "load_imu",
    "preprocess",
    "resample",
    "windows",
]


def preprocess(
    item: Any,
    *,
    sample_rate: float | None = None,
    target_rate: float = MODEL_SAMPLE_RATE,
    crop: Crop = "start",
) -> torch.Tensor:
    """One IMU log -> float32 tensor of shape ``(6, 2000)``.

    Args:
        item: (6, T) or (T, 6) array / tensor, or a CSV path, bytes or file object.
        sample_rate: the log's sampling rate in Hz; when given and different from
            ``target_rate`` the log is linearly resampled. ``None``: used as is.
        target_rate: the rate the model's 2000-step window assumes.
        crop: which 2000 steps of a longer log to keep: ``"start"`` (default),
            ``"center"`` or ``"end"``. Shorter logs are zero-padded on the right.
    """
    check_options(sample_rate=sample_rate, target_rate=target_rate, crop=crop)
    signal = _prepared(item, sample_rate, target_rate)
    length = signal.shape[1]
    if length > WINDOW:
        start = {"start": 0, "center": (length - WINDOW) // 2, "end": length - WINDOW}[crop]
        logger.info("IMU log has %d steps; keeping steps %d-%d", length, start, start + WINDOW)
        return signal[:, start : start + WINDOW].contiguous()
    return _pad(signal)


def check_options(
    *, sample_rate: float | None = None, target_rate: float = MODEL_SAMPLE_RATE, crop: Crop = "start"
) -> None:
    """ValueError for an invalid option value (checked before any item is read)."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
    if sample_rate is not None:
        positive_number("sample_rate", sample_rate, "Hz")
    positive_number("target_rate", target_rate, "Hz")


def windows(
    item: Any,
    *,
    stride: int | None = None,
    sample_rate: float | None = None,
    target_rate: float = MODEL_SAMPLE_RATE,
    drop_last: bool = False,
) -> torch.Tensor:
    """Split a long IMU log into consecutive 2000-step windows: ``(N, 6, 2000)``.

    Windows start at 0, ``stride``, 2 * ``stride``, ... (default ``stride`` = 2000:
    no overlap) until the log is covered; the last one is zero-padded on the
    right. ``drop_last=True`` leaves out that padded tail window when the log has
    at least one full window. Each row can be embedded on its own.
    """
    stride = WINDOW if stride is None else stride
    if isinstance(stride, bool) or not isinstance(stride, int) or stride <= 0:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    signal = _prepared(item, sample_rate, target_rate)
    length = signal.shape[1]
    count = 1 + math.ceil(max(length - WINDOW, 0) / stride)
    if drop_last and length >= WINDOW and (count - 1) * stride + WINDOW > length:
        count -= 1
    rows = [_pad(signal[:, i * stride : i * stride + WINDOW]) for i in range(count)]
    return torch.stack(rows)


def load_imu(item: Any) -> torch.Tensor:
    """Any accepted input -> validated float32 ``(6, T)`` tensor in ``CHANNELS`` order."""
    if isinstance(item, torch.Tensor):
        item = tensor_to_numpy(item)
    if isinstance(item, np.ndarray):
        signal = _from_array(item)
    elif source_kind(item) is not None:
        signal = read_csv(item)
    else:
        raise InputError(f"expected {_ACCEPTED}, got {type(item).__name__}")
    signal = np.ascontiguousarray(signal, dtype=np.float32)
    require_finite(signal, "IMU data")
    return torch.from_numpy(signal)


def resample(signal: torch.Tensor, sample_rate: float, target_rate: float) -> torch.Tensor:
    """Linear resampling of a ``(C, T)`` signal from ``sample_rate`` to ``target_rate``.

    Output step ``j`` is the signal at time ``j / target_rate``; steps run while that
    time lies within the input (``(T - 1) / sample_rate``), so nothing is extrapolated.
    """
    positive_number("sample_rate", sample_rate, "Hz")
    positive_number("target_rate", target_rate, "Hz")
    length = signal.shape[1]
    if sample_rate == target_rate or length < 2:
        return signal
    steps = (length - 1) * target_rate / sample_rate  # inf for absurd ratios: refused below
    if not steps < MAX_RESAMPLED_STEPS:
        raise InputError(
            f"resampling {length} IMU steps from sample_rate={sample_rate:g} Hz to "
            f"target_rate={target_rate:g} Hz would make {steps + 1:.3g} steps, over the limit of "
            f"{MAX_RESAMPLED_STEPS} (imagebind_sdk.preprocess.imu.MAX_RESAMPLED_STEPS); "
            "is sample_rate in Hz?"
        )
    count = math.floor(steps + 1e-9) + 1
    positions = np.arange(count, dtype=np.float64) * (sample_rate / target_rate)
    source = np.arange(length, dtype=np.float64)
    data = signal.numpy().astype(np.float64)
    rows = [np.interp(positions, source, channel) for channel in data]
    return torch.from_numpy(np.stack(rows).astype(np.float32))


def _prepared(item: Any, sample_rate: float | None, target_rate: float) -> torch.Tensor:
    signal = load_imu(item)
    if sample_rate is not None:
        signal = resample(signal, sample_rate, target_rate)
    else:
        positive_number("target_rate", target_rate, "Hz")
    return signal


def _from_array(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind not in "iuf":
        raise InputError(f"expected a numeric IMU array, found dtype {array.dtype}")
    if array.ndim != 2 or NUM_CHANNELS not in array.shape:
        raise InputError(
            f"expected an IMU array of shape (6, T) or (T, 6) "
            f"(channels {', '.join(CHANNELS)}), found shape {array.shape}"
        )
    signal = array if array.shape[0] == NUM_CHANNELS else array.T
    if signal.shape[1] == 0:
        raise InputError(f"expected at least one IMU time step, found shape {array.shape}")
    return signal


def _pad(signal: torch.Tensor) -> torch.Tensor:
    out = torch.zeros(ITEM_SHAPE, dtype=torch.float32)
    out[:, : signal.shape[1]] = signal
    return out


# --- CSV ---------------------------------------------------------------------------------


def read_csv(item: Any) -> np.ndarray:
    """A CSV log with a header row -> float64 ``(6, T)`` array in ``CHANNELS`` order."""
    records = _csv_records(_read_text(item))
    if not records:
        raise InputError("expected a CSV file with a header row and data rows, found no rows")
    header = records[0][1]
    columns = _match_columns(header)
    if len(records) < 2:
        raise InputError("expected at least one data row after the CSV header, found none")
    signal = _parse_rows(records[1:], header, columns).T
    times = _timestamps(records[1:], header)
    return signal if times is None else imu_timing.regular_steps(signal, times)


def _timestamps(records: list[tuple[int, list[str]]], header: list[str]) -> np.ndarray | None:
    """The values of the CSV's one timestamp column (see ``imu_timing.TIME_COLUMNS``), or None."""
    names = [_normalise(cell) for cell in header]
    found = [i for i, name in enumerate(names) if name in imu_timing.TIME_COLUMNS]
    if len(found) != 1:
        return None
    try:
        return np.array([row[found[0]] if len(row) > found[0] else "" for _, row in records], dtype=np.float64)
    except ValueError:
        logger.warning("IMU CSV column %r does not hold numbers: rows are taken as uniform steps", header[found[0]])
        return None


def _read_text(item: Any) -> str:
    data = item.read() if source_kind(item) == "file" else read_bytes(item)
    if isinstance(data, str):
        return data
    try:
        return bytes(data).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"expected a UTF-8 text CSV file, could not decode it: {exc}") from exc


def _csv_records(text: str) -> list[tuple[int, list[str]]]:
    first_line = text.lstrip().split("\n", 1)[0]
    fields = 1 + max(first_line.count(delimiter) for delimiter in CSV_DELIMITERS)
    if fields > MAX_CSV_COLUMNS:
        raise InputError(f"CSV header has {fields} fields, over the limit of {MAX_CSV_COLUMNS} columns")
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, delimiters=CSV_DELIMITERS)
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        return [(reader.line_num, row) for row in reader if len(row) > 1 or _has_text(row)]
    except csv.Error as exc:
        raise InputError(f"expected a CSV file, could not parse it: {exc}") from exc


def _has_text(row: list[str]) -> bool:
    return bool(row) and bool(row[0].strip())


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _match_columns(header: list[str]) -> list[int]:
    names = [_normalise(cell) for cell in header]
    if all(_parses_as_float(cell) for cell in header):
        raise InputError(
            f"expected a CSV header row naming the channels ({', '.join(CHANNELS)}), "
            f"found numbers {header[:6]}; pass headerless data as a (T, 6) array in that order"
        )
    columns, missing = [], []
    for channel in CHANNELS:
        found = [i for i, name in enumerate(names) if name in CHANNEL_ALIASES[channel]]
        if len(found) > 1:
            raise InputError(
                f"expected one CSV column for IMU channel {channel}, "
                f"found {len(found)}: {[header[i] for i in found]}"
            )
        if found:
            columns.append(found[0])
        else:
            missing.append(channel)
    if missing:
        raise InputError(
            f"CSV is missing IMU channel(s) {', '.join(missing)}: expected columns named like "
            f"{', '.join(CHANNELS)} (or aliases such as acc_x, ax, gyr_x, gx), found {_listed(header)}"
        )
    return columns


def _listed(header: list[str], limit: int = 12) -> str:
    """The header cells for a message, at most ``limit`` of them."""
    more = f" and {len(header) - limit} more" if len(header) > limit else ""
    return f"{header[:limit]}{more}"


def _parse_rows(
    records: list[tuple[int, list[str]]], header: list[str], columns: list[int]
) -> np.ndarray:
    """The selected columns of the data rows as a float64 ``(T, 6)`` array."""
    for line, row in records:
        if len(row) <= max(columns):
            raise InputError(f"CSV line {line} has {len(row)} fields, expected {len(header)}")
    cells = [[row[column] for column in columns] for _, row in records]
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    for (line, _), values in zip(records, cells):  # find the culprit for the message
        for column, cell in zip(columns, values):
            if not _parses_as_float(cell):
                raise InputError(
                    f"expected a number at CSV line {line}, column {header[column]!r}, "
                    f"found {cell.strip()!r}"
                ) from None
    raise InputError("expected numbers in the IMU columns of the CSV file")


def _parses_as_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
