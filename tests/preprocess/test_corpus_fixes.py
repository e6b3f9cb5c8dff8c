"""Preprocessing fixes found by the bad-input corpus (tests/corpus)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from imagebind_sdk.preprocess import InputError, audio, imu, video, vision


@pytest.mark.parametrize("rate, atol", [(44100, 0.0), (8000, 2e-4)])
def test_long_resampled_array_uses_clip_spans_with_the_same_numbers(
    monkeypatch: pytest.MonkeyPatch, rate: int, atol: float
) -> None:
    # Same tolerance as for long files (audio.WHOLE_DECODE_MAX_SAMPLES): exact when
    # downsampling, about 1e-4 upsampled under MKL_CBWR (shorter convolution input).
    wave = np.random.default_rng(0).standard_normal(rate * 20).astype(np.float32) * 0.1
    whole = audio.preprocess((wave, rate))
    monkeypatch.setattr(audio, "WHOLE_RESAMPLE_MAX_SAMPLES", 1000)  # force the span path
    torch.testing.assert_close(audio.preprocess((wave, rate)), whole, atol=atol, rtol=0)


def test_one_hertz_pair_is_bounded() -> None:
    # 32000 samples declared at 1 Hz resample to 512M samples (2 GB) when done whole.
    out = audio.preprocess((np.sin(np.arange(32000, dtype=np.float32) / 7) * 0.3, 1))
    assert out.shape == audio.ITEM_SHAPE and bool(torch.isfinite(out).all())


def test_csv_with_a_million_columns_is_refused_quickly() -> None:
    text = ",".join(f"c{i}" for i in range(1_000_000)) + "\n" + "1," * 999_999 + "1\n"
    with pytest.raises(InputError, match="1000000 fields"):
        imu.preprocess(text.encode())


def test_missing_column_message_lists_a_few_header_cells() -> None:
    header = ",".join(f"c{i}" for i in range(500))
    with pytest.raises(InputError, match="and 488 more") as info:
        imu.preprocess(f"{header}\n" .encode() + b"1," * 499 + b"1\n")
    assert len(str(info.value)) < 1000


def test_absurd_video_fps_is_refused() -> None:
    with pytest.raises(ValueError, match="fps must be at most"):
        video.check_options(fps=1e300)


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_float_image_with_non_finite_pixels_is_refused(value: float) -> None:
    image = Image.fromarray(np.full((8, 8), value, np.float32), "F")
    with pytest.raises(InputError, match="non-finite"):
        vision.preprocess(image)
