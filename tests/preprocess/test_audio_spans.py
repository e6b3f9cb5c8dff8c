"""Long audio: only the three clips' spans are decoded, with the numbers of decoding it whole."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import torch

from imagebind_sdk.preprocess import audio
from imagebind_sdk.preprocess.audio_decode import open_audio, read_whole


def _encoded(rate: int, channels: int, fmt: str, seconds: float = 9.0) -> bytes:
    wave = np.random.default_rng(rate + channels).normal(0, 0.2, (int(rate * seconds) + 137, channels))
    buffer = io.BytesIO()
    soundfile.write(buffer, wave.astype(np.float32), rate, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "rate, channels, fmt",
    [(44100, 2, "WAV"), (48000, 1, "FLAC"), (16000, 1, "OGG"), (22050, 2, "OGG"), (8000, 1, "WAV")],
)
def test_span_decoding_equals_whole_decoding(rate: int, channels: int, fmt: str, monkeypatch) -> None:
    data = _encoded(rate, channels, fmt)
    whole = audio.preprocess(data)  # 9 s: under the threshold, decoded whole
    monkeypatch.setattr(audio, "WHOLE_DECODE_MAX_SAMPLES", 0)  # now: only the clips' spans
    spans = audio.preprocess(data)
    if rate >= audio.SAMPLE_RATE:
        assert torch.equal(spans, whole)
    else:  # upsampling: MKL's convolution (CBWR mode) rounds differently on a shorter input
        assert (spans - whole).abs().max() <= 2e-4


def test_decode_span_is_a_slice_of_the_resampled_file() -> None:
    data = _encoded(44100, 2, "FLAC", seconds=4.0)
    with open_audio(data) as reader:
        resampled = audio.resample_to_16k(torch.from_numpy(read_whole(reader)), reader.sample_rate)
    for start, stop in [(0, 100), (12345, 23456), (resampled.shape[1] - 50, resampled.shape[1])]:
        assert torch.equal(audio.decode_span(data, start, stop), resampled[:, start:stop])


def test_pyav_container_spans_equal_whole(tmp_path: Path, monkeypatch) -> None:
    rate = 48000
    wave = np.random.default_rng(0).normal(0, 0.1, (1, rate * 8)).astype(np.float32)
    path = tmp_path / "long.webm"
    with av.open(str(path), "w", format="webm") as out:
        stream = out.add_stream("libopus", rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(wave, format="fltp", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    whole = audio.preprocess(path)
    monkeypatch.setattr(audio, "WHOLE_DECODE_MAX_SAMPLES", 0)
    assert torch.equal(audio.preprocess(path), whole)


_MEASURE = textwrap.dedent(
    """
    import json, resource, sys
    from imagebind_sdk.preprocess import audio
    audio.preprocess(sys.argv[2])  # warm up: imports, kernels, allocator pools
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = audio.preprocess(sys.argv[1])
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": (after - before) / 1024, "shape": list(out.shape)}))
    """
)


def test_two_hour_wav_peaks_under_150_mb(tmp_path: Path, assets_dir: Path) -> None:
    rate, seconds, block = 16000, 2 * 3600, 16000 * 600
    path = tmp_path / "two_hours.wav"
    rng = np.random.default_rng(0)
    with soundfile.SoundFile(path, "w", samplerate=rate, channels=1, subtype="PCM_16") as out:
        for _ in range(seconds * rate // block):  # written in blocks: the test holds no 2 h array
            out.write((rng.random(block, dtype=np.float32) - 0.5) * 0.5)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(assets_dir / "exact2s_16k_0.wav")],
        capture_output=True, text=True, timeout=120, env=env, check=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["shape"] == list(audio.ITEM_SHAPE)
    assert measured["peak_mb"] < 150, measured
