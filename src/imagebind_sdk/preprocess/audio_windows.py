"""A long audio recording -> log-mel windows, decoded incrementally in bounded memory.

Each window's clip is preprocessed exactly like one of the reference's clips
(:mod:`.audio`): samples ``[int(start * 16000), int((start + 2) * 16000))`` of the
16 kHz waveform, its mean subtracted, the Kaldi filterbank normalised. The file is
read once, in order (soundfile blocks, or PyAV's decoded frames); only the native
samples still needed by the next batch of windows are kept. Resampling is done per
batch on a stretch of native samples with whole resampler blocks of margin
(:func:`.audio.read_16k`), which gives the numbers of resampling the whole file.
PyAV sources need one extra decoding pass first, to count their samples.
"""

from __future__ import annotations

import collections
import logging
from fractions import Fraction
from typing import Any, Iterator

import numpy as np
import torch

from .audio import (
    CLIP_SECONDS,
    SAMPLE_RATE,
    _encoded_source,
    _reader_to_fbanks,
    load_waveform,
    log_mel,
    read_16k,
    resampled_length,
)
from .audio_decode import ArrayReader, AudioReader, collect_ranges, open_audio
from .windowing import WindowPlan, clip_offsets, window_starts

logger = logging.getLogger(__name__)

# Resampler blocks of native samples kept before a batch's first sample: read_16k's margin is
# at most ceil(6 / 0.99) + 2 = 9 blocks; one more for safety.
KEEP_BLOCKS = 10


class BlockBuffer:
    """Native samples read in order from a reader's blocks; serves ranges like an AudioReader.

    ``release(before)`` forgets blocks that end before native sample ``before``.
    """

    def __init__(self, reader: Any) -> None:
        self.sample_rate, self.channels = reader.sample_rate, reader.channels
        self._frames = reader.frames
        self.estimated_frames = self._frames
        self._source = reader.blocks()
        self._kept: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._end = 0

    @property
    def frames(self) -> int:
        return self._frames

    def read(self, ranges: list[tuple[int, int]]) -> list[np.ndarray]:
        stop = min(max(b for _, b in ranges), self._frames)
        need = min(a for a, _ in ranges)
        while self._end < stop:
            block = next(self._source, None)
            if block is None:
                break
            self._kept.append((self._end, block))
            self._end += block.shape[1]
            self.release(need)  # a long hop skips samples: never hold the gap
        origin = self._kept[0][0] if self._kept else self._end
        if min(a for a, _ in ranges) < origin:  # a bug in the caller's release(), never user input
            raise RuntimeError(f"native samples before {origin} were released, range {ranges} asked")
        return collect_ranges(iter([b for _, b in self._kept]), ranges, self.channels, origin)

    def release(self, before: int) -> None:
        while self._kept and self._kept[0][0] + self._kept[0][1].shape[1] <= before:
            self._kept.popleft()


def audio_windows(item: Any, window: Fraction, hop: Fraction, batch_size: int) -> Iterator[WindowPlan | torch.Tensor]:
    """An audio input -> its :class:`WindowPlan`, then batches ``(n, clips, 1, 128, 204)``."""
    offsets = clip_offsets(window, CLIP_SECONDS)
    source = _encoded_source(item)
    if source is None:
        waveform, rate = load_waveform(item)
        yield from _reader_windows(ArrayReader(waveform.numpy(), rate), window, hop, offsets, batch_size)
        return
    with open_audio(source) as reader:
        yield from _reader_windows(reader, window, hop, offsets, batch_size)


def _reader_windows(
    reader: AudioReader, window: Fraction, hop: Fraction, offsets: list[Fraction], batch_size: int
) -> Iterator[WindowPlan | torch.Tensor]:
    length = resampled_length(reader.frames, int(reader.sample_rate))
    duration = Fraction(length, SAMPLE_RATE)
    starts = window_starts(duration, window, hop)
    yield WindowPlan.of(starts, window, duration)
    if not starts:  # shorter than a window: the reference's 3 clips of the whole input
        yield _reader_to_fbanks(reader)[None]
        return
    buffer = BlockBuffer(reader)
    for first in range(0, len(starts), batch_size):
        clips = [_clip_bounds(s + o) for s in starts[first : first + batch_size] for o in offsets]
        fbanks = []
        for low, high, members in _stretches(clips):
            buffer.release(_native_floor(low, buffer.sample_rate))
            span = read_16k(buffer, [(low, high)])[0]
            fbanks += [log_mel(_centred(span[:, a - low : b - low])) for a, b in members]
        yield torch.stack(fbanks).view(-1, len(offsets), *fbanks[0].shape)


def _stretches(clips: list[tuple[int, int]]) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Consecutive overlapping or touching clips merged into stretches read at once.

    With hop <= window a batch is one stretch (each sample resampled once); a longer hop
    reads window by window, so memory follows the window, not batch_size x hop.
    """
    out: list[tuple[int, int, list[tuple[int, int]]]] = []
    for a, b in clips:
        if out and out[-1][0] <= a <= out[-1][1]:
            low, high, members = out[-1]
            out[-1] = (low, max(high, b), members + [(a, b)])
        else:
            out.append((a, b, [(a, b)]))
    return out


def _clip_bounds(start: Fraction) -> tuple[int, int]:
    """Samples of a clip starting at ``start`` seconds, truncated as :func:`.audio.clip_bounds`."""
    return int(start * SAMPLE_RATE), int((start + CLIP_SECONDS) * SAMPLE_RATE)


def _centred(clip: torch.Tensor) -> torch.Tensor:
    """The clip minus its mean (a slice of a (channels, n) span, summed as the reference's slice)."""
    return clip - clip.mean()


def _native_floor(sample_16k: int, rate: int) -> int:
    """A native sample index safely before everything resampling ``sample_16k`` onwards reads."""
    if rate == SAMPLE_RATE:
        return sample_16k
    gcd = np.gcd(rate, SAMPLE_RATE)
    orig, new = rate // gcd, SAMPLE_RATE // gcd
    return max((sample_16k // new - KEEP_BLOCKS) * orig, 0)
