"""Fixtures: the tiny model and generated long recordings (in tmp dirs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .window_media import BURST_S, BURSTS, NOISE_MINUTES, write_video


@pytest.fixture(scope="session")
def tiny_model(tiny_dir):
    from imagebind_sdk import ImageBind

    return ImageBind.load(tiny_dir, device="cpu")


@pytest.fixture(scope="session")
def long_audio(tmp_path_factory) -> Path:
    """182 s of 44.1 kHz stereo noise with a slow tone: reference clips at 0, 90 and 180 s."""
    import soundfile

    rate, seconds = 44100, 182
    rng = np.random.default_rng(0)
    t = np.arange(rate * seconds) / rate
    left = 0.1 * rng.standard_normal(t.size) + 0.3 * np.sin(2 * np.pi * (200 + t) * t)
    right = 0.1 * rng.standard_normal(t.size)
    path = tmp_path_factory.mktemp("windows") / "long_44k_stereo.wav"
    soundfile.write(path, np.stack([left, right], 1).astype(np.float32), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def long_video(tmp_path_factory) -> Path:
    """42.5 s at 10 fps (425 frames): reference clips at 0, 10.125, ..., 40.5 s."""
    return write_video(tmp_path_factory.mktemp("windows") / "long_10fps.mp4", 425, 10)



@pytest.fixture(scope="session")
def bursts_recording(tmp_path_factory) -> Path:
    """NOISE_MINUTES of 16 kHz noise with three BURST_S tone bursts (BURSTS) replacing it."""
    import soundfile

    rate = 16000
    rng = np.random.default_rng(1)
    signal = 0.05 * rng.standard_normal(NOISE_MINUTES * 60 * rate)
    for start, freq in BURSTS:
        a, b = int(start * rate), int((start + BURST_S) * rate)
        signal[a:b] = 0.5 * np.sin(2 * np.pi * freq * np.arange(b - a) / rate)
    path = tmp_path_factory.mktemp("moments") / "bursts.wav"
    soundfile.write(path, signal.astype(np.float32), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="session")
def tone_query(tmp_path_factory) -> Path:
    """2 s of the second burst's tone alone (a query file)."""
    import soundfile

    rate, freq = 16000, BURSTS[1][1]
    tone = 0.5 * np.sin(2 * np.pi * freq * np.arange(2 * rate) / rate)
    path = tmp_path_factory.mktemp("moments") / "tone.wav"
    soundfile.write(path, tone.astype(np.float32), rate, subtype="PCM_16")
    return path
