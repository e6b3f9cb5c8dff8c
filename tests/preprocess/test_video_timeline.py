"""Variable-frame-rate video: frames are taken at the stream's own timestamps.

The test video runs 5 s at ~30 fps, then 7 s at 2 fps. Placing its frames at the
average rate (14.4 fps) takes clips from the wrong moments: the second clip, [2.38 s,
4.38 s), would end on frame 63 (shown at 2.08 s) instead of frame 132 (4.36 s).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from imagebind_sdk.preprocess import video
from imagebind_sdk.preprocess.video_timeline import timeline_of
from imagebind_sdk.preprocess.video_windows import video_windows
from imagebind_sdk.preprocess.windowing import WindowPlan

TIMES_MS = list(range(0, 5000, 33)) + list(range(5000, 12000, 500))


def _write_vfr(path: Path, times_ms: list[int], size: tuple[int, int] = (64, 48)) -> Path:
    """Frames at ``times_ms`` (time base 1/1000), each a different grey level."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        stream.codec_context.gop_size = 10
        for i, t in enumerate(times_ms):
            frame = av.VideoFrame.from_ndarray(np.full((size[1], size[0], 3), (i * 37) % 256, np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _decoded(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def _picks_by_time(start: Fraction) -> list[int]:
    """The first and last frame whose timestamp lies in [start, start + 2 s)."""
    inside = [i for i, t in enumerate(TIMES_MS) if start <= Fraction(t, 1000) < start + 2]
    return [inside[0], inside[-1]]


@pytest.fixture(scope="module")
def vfr(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_vfr(tmp_path_factory.mktemp("vfr") / "vfr.mp4", TIMES_MS)


def test_clips_are_taken_at_the_frames_timestamps(vfr: Path) -> None:
    fps, count = video.probe(vfr)
    assert count == len(TIMES_MS)
    step = Fraction(count / fps - 2) / 4  # the reference's clip spacing over the duration
    picks = [i for k in range(5) for i in _picks_by_time(step * k)]
    assert picks != video.clip_frame_indices(count, fps)  # the average rate would misplace them
    expected = video.frames_to_model_input(_decoded(vfr)[picks])
    torch.testing.assert_close(video.preprocess(vfr), expected, rtol=0, atol=0)


def test_windows_of_a_variable_rate_video_follow_the_timestamps(vfr: Path) -> None:
    out = list(video_windows(vfr, Fraction(2), Fraction(3), batch_size=8))
    plan, batches = out[0], out[1:]
    assert isinstance(plan, WindowPlan) and plan.starts[:4] == [0.0, 3.0, 6.0, 9.0]
    frames = _decoded(vfr)
    rows = torch.cat(batches)
    for row, start in zip(rows, plan.starts):
        expected = video.clip_crops(frames[_picks_by_time(Fraction(start).limit_denominator(10**6))])
        torch.testing.assert_close(row, torch.stack(expected), rtol=0, atol=0)


def test_constant_rate_keeps_the_reference_placement(tmp_path: Path) -> None:
    cfr = _write_vfr(tmp_path / "cfr.mp4", [i * 100 for i in range(40)])  # exactly 10 fps
    assert video.probe_timeline(cfr).times is None


def test_unusable_timestamps_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="imagebind_sdk.preprocess.video_timeline"):
        timeline = timeline_of(25.0, None, Fraction(1, 25), 100)
    assert timeline.times is None
    assert "placed at the average rate" in caplog.text
