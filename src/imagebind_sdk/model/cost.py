"""Estimated compute of encoder calls, from the config alone (no torch).

The server cuts its batches by this estimate rather than by item count (a video's 15
views cost ~80 one-caption texts' worth), so it lives next to the geometry it reads.
Only the transformer trunk counts: it is over 99% of every encoder's work (the stems
are one patch projection, the head one projection of one token).

Per block and token: the q, k, v and output projections (4 w^2 multiply-adds) and the
4x MLP (8 w^2), and attention's scores and weighted sum (2 L w): 2 FLOPs each. So a
call over ``rows`` sequences of ``L`` tokens costs ``rows * blocks * L * (24 w^2 + 4 L w)``.
"""

from __future__ import annotations

from .config import IMAGE_SIZE, IMU_LENGTH, TEXT_CONTEXT_LENGTH, EncoderConfig

GIGA = 1e9


def sequence_length(encoder: EncoderConfig, text_tokens: int | None = None) -> int:
    """Tokens the trunk runs for one input row (image, video view, audio clip, ...), CLS
    included; text: ``text_tokens`` (its length up to end-of-text), else the full context."""
    if encoder.stem == "tokens":
        return text_tokens if text_tokens else TEXT_CONTEXT_LENGTH
    if encoder.stem == "video_patches":  # images repeat to `frames` frames: same as a clip
        kt, kh, kw = encoder.kernel
        return (encoder.frames // kt) * (IMAGE_SIZE // kh) * (IMAGE_SIZE // kw) + 1
    if encoder.stem == "patches":
        grid = [(size - k) // s + 1 for size, k, s in zip(encoder.input_size, encoder.kernel, encoder.stride)]
        return grid[0] * grid[1] + 1
    return IMU_LENGTH // encoder.kernel[0] + 1  # imu_windows


def call_gflops(encoder: EncoderConfig, rows: int, tokens: int) -> float:
    """Estimated GFLOPs of one encoder call over ``rows`` sequences of ``tokens`` tokens."""
    width = encoder.width
    return rows * encoder.depth * tokens * (24 * width * width + 4 * tokens * width) / GIGA


def row_gflops(encoder: EncoderConfig, text_tokens: int | None = None) -> float:
    """Estimated GFLOPs of one input row: an image, a video view, an audio clip, a text."""
    return call_gflops(encoder, 1, sequence_length(encoder, text_tokens))
