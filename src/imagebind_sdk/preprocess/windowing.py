"""Where windows fall on a recording, and IMU windows (the shared part of windowed embedding).

Times are exact ``Fraction`` seconds (or steps for IMU) so that a window start equals a
reference clip start to the last bit. The rule, for a recording of duration ``D``:
windows start at ``0, hop, 2*hop, ...`` while they fit, ``floor((D - window) / hop) + 1``
of them; if the last one ends before ``D``, one more window ending exactly at ``D``
covers the tail (its start is ``D - window``, off the hop grid). A recording shorter
than a window gives one window ``[0, D)`` embedded as the reference embeds the whole
input (audio: 3 clips, video: 5 clips, IMU: zero-padded), see :mod:`..windows`.

A window longer than the encoder's clip (2 s for audio and video) holds
``ceil(window / clip)`` clips placed as the reference places its clips over a
recording (evenly from the window's start to its end minus a clip); their vectors
are averaged, as the reference averages a file's clips.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterator

import torch

from . import imu

# Bounds on what a window request may plan, checked before any sample is decoded (a
# hop of 1 ms over an hour is 3.6M windows; a 1e8 s window, 5e7 clips): docs/windows.md.
MAX_WINDOWS = 100_000  # windows per input
MAX_WINDOW_CLIPS = 60  # encoder clips per window: 120 s windows for the 2 s audio/video clips


@dataclass
class WindowPlan:
    """Where an input's windows lie, sent before their model inputs (times in seconds)."""

    starts: list[float]
    ends: list[float]

    @classmethod
    def of(cls, starts: list[Any], window: Any, total: Any, unit: Any = 1) -> "WindowPlan":
        """Windows of length ``window`` at ``starts``; none: one window over the whole input
        (``total`` long). Positions are in units of ``1 / unit`` seconds (samples at a rate)."""
        if not starts:
            return cls([0.0], [float(total / unit)])
        return cls([float(s / unit) for s in starts], [float((s + window) / unit) for s in starts])


def as_fraction(value: Any, name: str) -> Fraction:
    """A positive, finite number of seconds as an exact Fraction (floats via their decimal text: 0.1 -> 1/10)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    try:  # nan/inf first: Fraction("nan") says only "Invalid literal for Fraction"
        finite = math.isfinite(value)
    except OverflowError:  # an int or Fraction beyond any float
        finite = False
    if not finite or not value > 0:
        raise ValueError(f"{name} must be a positive, finite number of seconds, got {value!r}")
    return value if isinstance(value, Fraction) else Fraction(str(value))


def check_kinds(value: Any, name: str, kinds: tuple[str, ...]) -> None:
    """A per-kind mapping (``window_s={"audio": 4}``) may name only ``kinds``: a typo is refused."""
    for key in value:
        if key not in kinds:
            close = difflib.get_close_matches(str(key), kinds, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{name} has a value for {key!r}, which is not one of {', '.join(kinds)}{hint}")


def window_starts(duration: Fraction, window: Fraction, hop: Fraction) -> list[Fraction]:
    """Window starts over ``[0, duration)``: the hop grid, plus one end-aligned tail window.

    Empty when the recording is shorter than one window. More than ``MAX_WINDOWS``
    raise ValueError before any is listed.
    """
    if duration < window:
        return []
    count = math.floor((duration - window) / hop) + 1
    if count > MAX_WINDOWS:
        raise ValueError(
            f"{float(duration):g} s with window_s={float(window):g} and hop_s={float(hop):g} makes {count} windows, "
            f"more than the {MAX_WINDOWS} allowed per input; use a longer hop_s"
        )
    starts = [hop * i for i in range(count)]
    if starts[-1] + window < duration:
        starts.append(duration - window)
    return starts


def clip_offsets(window: Fraction, clip: int) -> list[Fraction]:
    """Clip starts within a window: ``ceil(window / clip)`` clips spread as the reference's sampler."""
    if window < clip:
        raise ValueError(f"window_s must be at least the encoder's {clip} s clip, got {float(window):g}")
    count = math.ceil(window / clip)
    if count > MAX_WINDOW_CLIPS:
        raise ValueError(f"window_s must be at most {MAX_WINDOW_CLIPS * clip} s ({MAX_WINDOW_CLIPS} clips of {clip} s), "
                         f"got {float(window):g}")
    if count == 1:
        return [Fraction(0)]
    step = (window - clip) / (count - 1)
    return [step * k for k in range(count)]


def batched(rows: Iterator[torch.Tensor], size: int) -> Iterator[torch.Tensor]:
    """Stack consecutive model inputs ``size`` at a time (the last batch may be shorter)."""
    batch: list[torch.Tensor] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield torch.stack(batch)
            batch = []
    if batch:
        yield torch.stack(batch)


def imu_windows(
    item: Any,
    window: Fraction,
    hop: Fraction,
    batch_size: int,
    *,
    sample_rate: float | None = None,
    target_rate: float = imu.MODEL_SAMPLE_RATE,
) -> Iterator[WindowPlan | torch.Tensor]:
    """An IMU log -> its :class:`WindowPlan`, then batches ``(n, 6, 2000)`` of windows.

    ``window``/``hop`` are seconds at ``target_rate`` (default 2000 and 1000 steps at
    200 Hz). A window shorter than 2000 steps is zero-padded, as a short log is.
    """
    imu.check_options(sample_rate=sample_rate, target_rate=target_rate)
    steps, hop_steps = round(window * Fraction(target_rate)), max(round(hop * Fraction(target_rate)), 1)
    if not 0 < steps <= imu.WINDOW:
        raise ValueError(
            f"an IMU window holds 1..{imu.WINDOW} steps ({imu.WINDOW / target_rate:g} s at {target_rate:g} Hz), "
            f"window_s={float(window):g} gives {steps}"
        )
    signal = imu.load_imu(item)
    if sample_rate is not None:
        signal = imu.resample(signal, sample_rate, target_rate)
    length = signal.shape[1]
    starts = [int(s) for s in window_starts(Fraction(length), Fraction(steps), Fraction(hop_steps))]
    yield WindowPlan.of(starts, steps, length, target_rate)
    if not starts:  # shorter than a window: the whole log, zero-padded
        yield imu.preprocess(signal)[None]
        return
    yield from batched((imu.preprocess(signal[:, s : s + steps]) for s in starts), batch_size)
