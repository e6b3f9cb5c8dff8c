"""Checks of model-input tensors (what ``ImageBind.encode`` accepts): shapes, dtypes, finiteness."""

from __future__ import annotations

import torch

from ..model.config import IMAGE_SIZE, IMU_CHANNELS, IMU_LENGTH, TEXT_CONTEXT_LENGTH, TEXT_VOCAB_SIZE, ImageBindConfig
from ..vectors.ops import all_finite

__all__ = ["all_finite", "check_model_input", "expected_shapes", "nonfinite_message", "nonfinite_rows", "rows_per_item"]


def expected_shapes(modality: str, config: ImageBindConfig) -> list[tuple]:
    """Accepted shapes, ``"B"`` = batch, ``"S"`` = clips per item, ``"T"`` = frames."""
    image = (IMAGE_SIZE, IMAGE_SIZE)
    mel = (1, config.audio_num_mel_bins, config.audio_target_len)
    return {
        "vision": [("B", 3, *image), ("B", 3, "T", *image), ("B", "S", 3, "T", *image)],
        "audio": [("B", *mel), ("B", "S", *mel)],
        "depth": [("B", 1, *image)],
        "thermal": [("B", 1, *image)],
        "imu": [("B", IMU_CHANNELS, IMU_LENGTH)],
        "text": [("B", f"L<={TEXT_CONTEXT_LENGTH}")],
    }[modality]


def _fits(shape: tuple[int, ...], pattern: tuple, frames: int) -> bool:
    if len(shape) != len(pattern):
        return False
    for size, want in zip(shape, pattern):
        if want == "T" and size not in (1, frames):
            return False
        if isinstance(want, int) and size != want:
            return False
    return True


def _fmt(pattern: tuple) -> str:
    return "(" + ", ".join(str(p) for p in pattern) + ")"


def rows_per_item(modality: str, item: torch.Tensor, config: ImageBindConfig) -> int:
    """Encoder input rows one item (no batch dimension) holds: its clips/views (``"S"``: a
    video's 15 views, audio's 3 clips), whose outputs the encoder averages; else 1."""
    if modality == "text":
        return 1
    shape = (1, *item.shape)
    clips = [p for p in expected_shapes(modality, config) if "S" in p and _fits(shape, p, config.video_frames)]
    return int(item.shape[0]) if clips else 1


def nonfinite_rows(rows: torch.Tensor) -> list[int]:
    """Indices of the rows of ``rows`` (N, D) that hold NaN or infinity (one pass when none do)."""
    if all_finite(rows):
        return []
    return torch.nonzero(~torch.isfinite(rows).all(dim=-1)).flatten().tolist()


def nonfinite_message(dtype: torch.dtype) -> str:
    """Why an embedding came out NaN/inf: finite inputs can still overflow inside the encoder."""
    return (
        f"the embedding is not finite (NaN or infinity): the input's values are too large "
        f"for the encoder in {str(dtype).replace('torch.', '')} (preprocessed inputs are of order 1-10)"
    )


def check_model_input(modality: str, x: torch.Tensor, config: ImageBindConfig) -> bool:
    """Validate a preprocessed batch; return True if it holds several clips per item.

    Raises ValueError naming the modality, the expected shapes and the actual one.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{modality}: expected a torch.Tensor, got {type(x).__name__}")
    if modality == "text":
        _check_text(x)
        return False
    patterns = expected_shapes(modality, config)
    match = [p for p in patterns if _fits(tuple(x.shape), p, config.video_frames)]
    if not match:
        wanted = " or ".join(_fmt(p) for p in patterns)
        raise ValueError(f"{modality}: expected input of shape {wanted}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{modality}: expected a floating-point tensor, got dtype {x.dtype}")
    if not all_finite(x):
        raise ValueError(f"{modality}: input contains NaN or infinity")
    return "S" in match[0]


def _check_text(ids: torch.Tensor) -> None:
    if ids.ndim != 2 or not 1 <= ids.shape[1] <= TEXT_CONTEXT_LENGTH:
        raise ValueError(f"text: expected token ids of shape (B, L<={TEXT_CONTEXT_LENGTH}), got {tuple(ids.shape)}")
    if ids.is_floating_point() or ids.dtype == torch.bool:
        raise ValueError(f"text: expected integer token ids, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= TEXT_VOCAB_SIZE):
        raise ValueError(f"text: token ids must lie in [0, {TEXT_VOCAB_SIZE}), got [{int(ids.min())}, {int(ids.max())}]")
