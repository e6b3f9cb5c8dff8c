"""A long video -> windows of 2-frame clips x 3 crops, decoded once, in order.

Each window's clip is selected and transformed exactly like one of the reference's
clips (:meth:`.video_timeline.Timeline.clip`, :func:`.video.scaled_frame`, :func:`.video.normalised_crops`): the frames
``ceil(fps * start)`` and ``min(ceil(fps * (start + 2)), n) - 1``, short side to 224,
CLIP normalisation, 3 crops along the long side. The stream is indexed by demuxing
(:func:`.video.probe_timeline`: frame count, rate and, for a variable frame rate, timestamps; nothing decoded), then decoded once from
the start; each wanted frame is scaled (short side 224) as soon as it is decoded, and
only the scaled frames of windows not yet emitted are kept.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any, Iterator

import numpy as np
import torch

from .sources import InputError, as_binary_stream, source_kind
from .video import CLIP_SECONDS, decode_in_order, normalised_crops, preprocess, probe_timeline, scaled_frame
from .windowing import WindowPlan, clip_offsets, window_starts

logger = logging.getLogger(__name__)

# Windows per batch at most: one window (one clip) is 3 crops x 3 x 2 x 224 x 224 float32
# = 3.6 MB. Memory in flight is a few batches (the encoder's, its activations, the queued
# ones, the one being filled), so this, not the recording's length, sets the peak.
MAX_CLIPS_PER_BATCH = 4  # 12 clips a forward pass: less than one whole video item (15)


def video_windows(item: Any, window: Fraction, hop: Fraction, batch_size: int) -> Iterator[WindowPlan | torch.Tensor]:
    """An encoded video -> its :class:`WindowPlan`, then batches ``(n, clips * 3, 3, 2, 224, 224)``."""
    if source_kind(item) is None:
        raise InputError(f"expected an encoded video (path, bytes or binary file), got {type(item).__name__}")
    offsets = clip_offsets(window, CLIP_SECONDS)
    stream = as_binary_stream(item)
    origin = stream.tell()
    try:
        timeline = probe_timeline(stream)  # frames at the average rate, or at their timestamps if it varies
        stream.seek(origin)
        duration = Fraction(timeline.count / timeline.fps)  # the float duration, as the reference's sampler
        starts = window_starts(duration, window, hop)
        yield WindowPlan.of(starts, window, duration)
        if not starts:  # shorter than a window: the reference's 5 clips of the whole video
            yield preprocess(stream)[None]
            return
        picks = [[timeline.clip(s + o) for o in offsets] for s in starts]
        size = max(1, min(batch_size, MAX_CLIPS_PER_BATCH // len(offsets)))
        yield from _batches(decode_in_order(stream, sorted({i for w in picks for c in w for i in c})), picks, size)
    finally:
        if stream is not item:
            stream.close()


def _batches(
    frames: Iterator[tuple[int, np.ndarray]], picks: list[list[list[int]]], size: int
) -> Iterator[torch.Tensor]:
    """Decoded (index, frame) pairs -> batches of windows, keeping only frames still needed.

    Each batch is allocated once and the crops are written into it (no list of rows
    stacked into a second copy), so a batch costs its own size and no more.
    """
    kept: dict[int, torch.Tensor] = {}
    batch: torch.Tensor | None = None
    done = 0
    for index, frame in frames:
        kept[index] = scaled_frame(frame)  # ~1 MB, whatever the frame's size
        while done < len(picks) and max(i for c in picks[done] for i in c) <= index:
            crops = [crop for clip in picks[done] for crop in normalised_crops(torch.stack([kept[i] for i in clip], 1))]
            if batch is None:
                batch = torch.empty(min(size, len(picks) - done), len(crops), *crops[0].shape)
            row = done % size
            for column, crop in enumerate(crops):
                batch[row, column] = crop
            done += 1
            if row + 1 == batch.shape[0]:
                yield batch
                batch = None
            if done < len(picks):
                needed = min(i for c in picks[done] for i in c)
                for old in [i for i in kept if i < needed]:
                    del kept[old]
