"""A window is one reference clip: its vector equals the SDK's encoding of that clip alone (<= 1e-5).

The clip alone comes from the proven whole-file path (``preprocess.audio.preprocess``,
``preprocess.video.preprocess``, golden-tested): clip k of the reference at [a, a + 2)
must equal the window starting at a. Window counts follow
``floor((D - window) / hop) + 1`` plus one end-aligned tail window when the grid
leaves the end uncovered.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import soundfile
import torch

from .window_media import REFERENCE_VIDEO_STEP, write_video
from imagebind_sdk.preprocess import audio, video
from imagebind_sdk.preprocess.audio import clip_bounds, decode_span, log_mel

TOL = 1e-5


def clip_vector(model, fbank: torch.Tensor) -> torch.Tensor:
    return model.encode("audio", fbank[None, None])[0]


@pytest.mark.parametrize(("name", "starts"), [("long_48k_mono_0.wav", (0, 5, 10)), ("exact2s_16k_0.wav", (0,))])
def test_audio_asset_windows_are_reference_clips(tiny_model, assets_dir, name, starts):
    path = assets_dir / name
    fbanks = audio.preprocess(path)
    out = tiny_model.embed_windows(audio=str(path))[0]
    length = audio.resampled_length(soundfile.info(str(path)).frames, soundfile.info(str(path)).samplerate)
    assert [b / 16000 for b, _ in clip_bounds(length)][: len(starts)] == list(starts)
    for k, a in enumerate(starts):
        row = out.start_s.tolist().index(a)
        assert (out.vectors[row] - clip_vector(tiny_model, fbanks[k])).abs().max() <= TOL
    assert out.vectors.dtype == torch.float32
    assert torch.allclose(out.vectors.norm(dim=1), torch.ones(len(out)), atol=1e-5)


def test_long_resampled_stereo_audio(tiny_model, long_audio):
    """182 s at 44.1 kHz stereo (decoded in blocks, resampled per batch): clips at 0, 90, 180."""
    fbanks = audio.preprocess(long_audio)
    out = tiny_model.embed_windows(audio=long_audio, batch_size=16)[0]
    assert len(out) == math.floor((182 - 2) / 1) + 1  # the grid ends at the end: no tail window
    assert out.start_s.tolist() == list(range(181)) and out.end_s.tolist() == list(range(2, 183))
    for k, a in enumerate((0, 90, 180)):
        assert (out.vectors[a] - clip_vector(tiny_model, fbanks[k])).abs().max() <= TOL


def test_off_grid_window_and_tail_equal_decoded_spans(tiny_model, long_audio):
    """hop 0.75 s: any window, and the end-aligned tail, equal the clip decoded alone."""
    out = tiny_model.embed_windows(audio=long_audio, hop_s=0.75)[0]
    assert len(out) == math.floor((182 - 2) / 0.75) + 1  # 180 / 0.75 = 240 exactly: no tail
    tail = tiny_model.embed_windows(audio=long_audio, hop_s=0.7)[0]
    grid = math.floor(Fraction(180) / Fraction(7, 10)) + 1
    assert len(tail) == grid + 1 and tail.start_s[-1] == 180.0 and tail.end_s[-1] == 182.0
    for windows, row, start in ((out, 101, Fraction(3, 4) * 101), (tail, grid - 1, Fraction(7, 10) * (grid - 1)),
                                (tail, grid, Fraction(180))):
        assert windows.start_s[row].item() == float(start)
        clip = decode_span(long_audio, int(start * 16000), int(start * 16000) + 32000)
        expected = clip_vector(tiny_model, log_mel(clip - clip.mean()))
        assert (windows.vectors[row] - expected).abs().max() <= TOL


def test_waveform_input_and_short_input(tiny_model, assets_dir):
    """A (waveform, rate) pair streams like its file; an input shorter than a window is the reference's 3 clips."""
    data, rate = soundfile.read(str(assets_dir / "long_48k_mono_0.wav"), dtype="float32")
    from_file = tiny_model.embed_windows(audio=str(assets_dir / "long_48k_mono_0.wav"))[0]
    from_array = tiny_model.embed_windows(audio=(data, rate))[0]
    assert torch.equal(from_file.start_s, from_array.start_s)
    assert (from_file.vectors - from_array.vectors).abs().max() <= TOL
    short = assets_dir / "short_8k_mono_0.wav"
    out = tiny_model.embed_windows(audio=[str(short)], window_s=4)[0]
    assert len(out) == 1 and out.start_s.tolist() == [0.0]
    assert out.end_s.item() == pytest.approx(soundfile.info(str(short)).duration, abs=1e-3)
    assert (out.vectors[0] - tiny_model.embed(audio=str(short)).audio[0]).abs().max() <= TOL


def test_longer_window_averages_reference_placed_clips(tiny_model, assets_dir):
    """window_s=5: clips at +0, +1.5, +3 s (as the reference spreads 3 clips over 5 s), averaged."""
    path = assets_dir / "long_48k_mono_0.wav"
    out = tiny_model.embed_windows(audio=str(path), window_s=5, hop_s=7)[0]
    assert out.start_s.tolist() == [0.0, 7.0] and out.end_s.tolist() == [5.0, 12.0]
    clips = [decode_span(path, int(a * 16000), int(a * 16000) + 32000) for a in (7, 8.5, 10)]
    fbanks = torch.stack([log_mel(c - c.mean()) for c in clips])
    expected = tiny_model.encode("audio", fbanks[None])[0]
    assert (out.vectors[1] - expected).abs().max() <= TOL


def test_video_asset_windows_are_reference_clips(tiny_model, assets_dir):
    path = assets_dir / "video" / "wind_noise.mp4"
    fps, count = video.probe(path)
    step = Fraction(count / fps - 2) / 4
    x = video.preprocess(path)
    out = tiny_model.embed_windows(video=path, hop_s=step)[0]
    assert len(out) == 5
    for k in range(5):
        assert (out.vectors[k] - tiny_model.encode("vision", x[3 * k : 3 * k + 3][None])[0]).abs().max() <= TOL


def test_long_video_windows_and_tail(tiny_model, long_video):
    """42.5 s at 10 fps: hop 1 s gives 41 grid windows + a tail at 40.5 s (= reference clip 4)."""
    x = video.preprocess(long_video)
    out = tiny_model.embed_windows(video=long_video, batch_size=4)[0]
    assert len(out) == math.floor((42.5 - 2) / 1) + 1 + 1
    assert out.start_s[-1].item() == 40.5 and out.end_s[-1].item() == 42.5
    assert (out.vectors[-1] - tiny_model.encode("vision", x[12:15][None])[0]).abs().max() <= TOL
    assert (out.vectors[0] - tiny_model.encode("vision", x[0:3][None])[0]).abs().max() <= TOL
    on_clips = tiny_model.embed_windows(video=long_video, hop_s=REFERENCE_VIDEO_STEP)[0]
    assert len(on_clips) == 5
    for k in range(5):
        assert (on_clips.vectors[k] - tiny_model.encode("vision", x[3 * k : 3 * k + 3][None])[0]).abs().max() <= TOL


def test_short_video_is_the_reference_embedding(tiny_model, tmp_path):
    path = write_video(tmp_path / "short.mp4", 15, 10)  # 1.5 s
    out = tiny_model.embed_windows(video=str(path))[0]
    assert len(out) == 1 and out.end_s.item() == 1.5
    assert (out.vectors[0] - tiny_model.embed(video=str(path)).video[0]).abs().max() <= TOL


def test_imu_windows(tiny_model, assets_dir):
    """IMU: 2000-step windows every 1000 steps equal imu.preprocess of the slice; tail end-aligned."""
    from imagebind_sdk.preprocess import imu

    signal = imu.load_imu(np.random.default_rng(0).standard_normal((6, 5500)).astype(np.float32))
    out = tiny_model.embed_windows(imu=signal.numpy())[0]
    assert out.start_s.tolist() == [0.0, 5.0, 10.0, 15.0, 17.5]
    assert out.end_s.tolist() == [10.0, 15.0, 20.0, 25.0, 27.5]
    expected = tiny_model.encode("imu", torch.stack([signal[:, s : s + 2000] for s in (0, 1000, 2000, 3000, 3500)]))
    assert (out.vectors - expected).abs().max() <= TOL
    short = tiny_model.embed_windows(imu=str(assets_dir / "imu" / "imu1_2k.csv"), preprocess={"imu": {"sample_rate": 400}})
    assert len(short[0]) == 1
    assert (short[0].vectors[0] - tiny_model.embed(imu=str(assets_dir / "imu" / "imu1_2k.csv"),
            preprocess={"imu": {"sample_rate": 400}}).imu[0]).abs().max() <= TOL
