"""When a video's frames are shown: at its average rate, or at the stream's own timestamps.

The reference (pytorchvideo over decord) places frame ``i`` at ``i / fps``, fps being the
stream's average rate; a clip ``[start, start + 2)`` holds the frames ``ceil(fps * start)``
up to ``ceil(fps * (start + 2))`` (exclusive). That is exact for a constant frame rate,
and this module keeps it, bit for bit, whenever the timestamps agree with it (every
frame less than one frame period from ``i / fps``). A variable-frame-rate video (phones, screen
recordings) does not: there, frame ``i`` is placed at its own timestamp
``(pts_i - pts_0) * time_base`` and a clip holds the frames whose timestamps fall in
``[start, start + 2)``. A clip in which no frame starts (a still stretch) takes the frame
on screen at its start. When the timestamps are missing or repeated, frames are placed
at the average rate, with a warning.
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from .sources import InputError

logger = logging.getLogger(__name__)

NUM_CLIPS = 5
CLIP_SECONDS = 2
FRAMES_PER_CLIP = 2


@dataclass
class Timeline:
    """A video's frame count and average rate; ``times`` (seconds from the first frame, in
    display order) only when the frames are not where the average rate puts them."""

    fps: float
    count: int
    times: list[Fraction] | None = None

    def clip(self, start: Fraction) -> list[int]:
        """The FRAMES_PER_CLIP frames kept of the clip starting at ``start`` seconds."""
        if self.times is None:
            return clip_indices(start, self.fps, self.count)
        end = start + CLIP_SECONDS
        first = bisect.bisect_left(self.times, start)  # first frame shown at or after start
        last = bisect.bisect_left(self.times, end) - 1  # last frame shown before the end
        if first > last:  # no frame starts in the clip: the one on screen at its start
            shown = max(bisect.bisect_right(self.times, start) - 1, 0)
            return [shown] * FRAMES_PER_CLIP
        picks = torch.linspace(0, last - first, FRAMES_PER_CLIP).long().tolist()
        return [first + p for p in picks]

    def clip_frames(self) -> list[int]:
        """Indices of the frames kept, clip by clip (NUM_CLIPS * FRAMES_PER_CLIP of them).

        As pytorchvideo with decord: the duration is the float ``count / fps``; clip k
        starts at ``k * max(duration - 2, 0) / 4`` (a Fraction).
        """
        if self.count <= 0:
            raise InputError("video holds no frames")
        duration = self.count / self.fps
        step = Fraction(max(duration - CLIP_SECONDS, 0)) / max(NUM_CLIPS - 1, 1)
        return [i for k in range(NUM_CLIPS) for i in self.clip(step * k)]


def clip_indices(start: Fraction, fps: float, num_frames: int) -> list[int]:
    """The FRAMES_PER_CLIP frames kept of the clip at ``start`` s, frames at ``i / fps``:
    ``ceil(fps * start)`` up to ``ceil(fps * end)`` (exclusive, capped at the end); of
    those, ``linspace(0, n - 1, 2)`` picks the first and the last."""
    first = math.ceil(fps * start)
    stop = min(math.ceil(fps * (start + CLIP_SECONDS)), num_frames)
    if stop <= first:
        raise InputError(
            f"frame rate {fps:g} is too low: the {CLIP_SECONDS} s clip at {float(start):g} s holds no frame"
        )
    picks = torch.linspace(0, stop - first - 1, FRAMES_PER_CLIP).long().tolist()
    return [first + p for p in picks]


def timeline_of(fps: float, pts: list[int] | None, time_base: Fraction | None, count: int) -> Timeline:
    """The timeline of a stream whose sorted packet timestamps are ``pts`` (None: unusable)."""
    if pts is None or not time_base:
        logger.warning(
            "video timestamps are missing or repeated: frames are placed at the average rate "
            "(%g fps), which misplaces them if the frame rate varies", fps
        )
        return Timeline(fps, count)
    times = [(p - pts[0]) * Fraction(time_base) for p in pts]
    frame = 1.0 / fps
    if all(abs(float(t) - i / fps) < frame for i, t in enumerate(times)):
        return Timeline(fps, count)  # a constant rate: the reference's own placement
    logger.info("variable frame rate: %d frames placed at their timestamps, not at %g fps", count, fps)
    return Timeline(fps, count, times)
