"""Video preprocessing: PyAV frames against the reference (decord), inputs, seeking, errors."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from imagebind_sdk.preprocess import image, video
from imagebind_sdk.preprocess.sources import InputError

GOLDEN_KEY = "video/wind_noise.mp4"


def _write_video(
    path: Path, frames: int, fps: int = 10, gop: int = 10, codec: str = "mpeg4", size: tuple[int, int] = (64, 48)
) -> Path:
    """A small synthetic video whose frames all differ (so an off-by-one shows)."""
    container = "webm" if path.suffix == ".webm" else None
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.codec_context.gop_size = gop
        rows, cols = np.mgrid[0 : size[1], 0 : size[0]]
        for i in range(frames):
            image = np.stack([np.full_like(rows, (i * 7) % 256), cols * 3, (rows * 5 + i) % 256], -1)
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def _all_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


@pytest.fixture(scope="module")
def wind(assets_dir: Path) -> Path:
    return assets_dir / "video" / "wind_noise.mp4"


@pytest.fixture(scope="module")
def wind_out(wind: Path) -> torch.Tensor:
    return video.preprocess(wind)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """15 s at 10 fps with a keyframe every 10 frames: long enough for seeking to pay."""
    return _write_video(tmp_path_factory.mktemp("video") / "synthetic.mp4", frames=150)


# --- reference numbers -------------------------------------------------------------


def test_matches_reference(wind_out: torch.Tensor, golden_preprocess: dict) -> None:
    expected = golden_preprocess[GOLDEN_KEY]
    assert wind_out.dtype == torch.float32 and tuple(wind_out.shape) == video.ITEM_SHAPE
    assert (wind_out - expected).abs().max() <= 1e-4  # measured: 0 (PyAV rgb24 == decord)
    cosine = torch.nn.functional.cosine_similarity(wind_out.double().flatten(1), expected.double().flatten(1))
    assert cosine.min() >= 0.99999


def test_frame_choice_and_order(wind_out: torch.Tensor, golden_preprocess: dict) -> None:
    """Clip-major, crop-minor order; the frames are the first and last of each 2 s clip."""
    assert video.clip_frame_indices(301, 30.0) == [0, 59, 61, 120, 121, 180, 181, 240, 241, 300]
    expected = golden_preprocess[GOLDEN_KEY]
    for clip in range(video.NUM_CLIPS):
        for crop in range(video.NUM_CROPS):
            item = clip * video.NUM_CROPS + crop
            assert torch.equal(wind_out[item], expected[item]), (clip, crop)


def test_clip_indices_short_video() -> None:
    # 1.5 s at 10 fps: every clip is the whole video
    assert video.clip_frame_indices(15, 10.0) == [0, 14] * 5
    assert video.clip_frame_indices(1, 25.0) == [0, 0] * 5


def test_three_crops_geometry() -> None:
    wide = torch.arange(224 * 300.0).reshape(1, 1, 224, 300)
    starts = [c[0, 0, 0, 0].item() for c in video.three_crops(wide, 224)]
    assert starts == [0, 38, 76]  # x offsets 0, ceil(76 / 2), 76
    tall = torch.arange(301 * 224.0).reshape(1, 1, 301, 224)
    starts = [c[0, 0, 0, 0].item() / 224 for c in video.three_crops(tall, 224)]
    assert starts == [0, 39, 77]  # y offsets 0, ceil(77 / 2), 77


# --- input kinds -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: str(p), id="str"),
        pytest.param(lambda p: p.read_bytes(), id="bytes"),
        pytest.param(lambda p: open(p, "rb"), id="file"),
    ],
)
def test_input_kinds_agree(make, wind: Path, wind_out: torch.Tensor) -> None:
    item = make(wind)
    try:
        assert torch.equal(video.preprocess(item), wind_out)
    finally:
        if hasattr(item, "close"):
            item.close()


def test_decoded_frames_with_fps(synthetic: Path) -> None:
    frames = _all_frames(synthetic)
    expected = video.preprocess(synthetic)
    assert torch.equal(video.preprocess(frames, fps=10), expected)
    assert torch.equal(video.preprocess(torch.from_numpy(frames), fps=10.0), expected)
    assert not torch.equal(video.preprocess(frames, fps=12), expected)


def test_seeking_gives_the_same_frames(
    synthetic: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sequential = video.preprocess(synthetic)
    monkeypatch.setattr(video, "SEEK_MIN_FRAMES", 0)
    with caplog.at_level(logging.DEBUG, logger=video.__name__):
        seeking = video.preprocess(synthetic)
    assert any("seeking to keyframe" in r.getMessage() for r in caplog.records)
    assert torch.equal(seeking, sequential)


def test_counting_fallback(synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When decoded timestamps do not match the packet index, frames are counted instead."""
    expected = video.preprocess(synthetic)
    monkeypatch.setattr(video, "_decode_by_pts", lambda *args: None)
    assert torch.equal(video.preprocess(synthetic), expected)


def test_webm(tmp_path: Path) -> None:
    path = _write_video(tmp_path / "clip.webm", frames=40, codec="libvpx")
    assert torch.equal(video.preprocess(path), video.preprocess(_all_frames(path), fps=10))


# --- errors ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        video.preprocess(tmp_path / "nope.mp4")


def test_corrupt_and_truncated(wind: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video" * 40)
    with pytest.raises(InputError, match="could not open video"):
        video.preprocess(garbage)
    with pytest.raises(InputError, match="could not open video"):  # index (moov) is at the end
        video.preprocess(wind.read_bytes()[:500_000])


def test_no_video_stream(assets_dir: Path) -> None:
    # WAV is no video container: FFmpeg's wav demuxer is not on the video allow-list
    with pytest.raises(InputError, match="could not open video: corrupt, or not one of the accepted"):
        video.preprocess(assets_dir / "car_audio.wav")


@pytest.mark.parametrize(
    "suffix, container, words", [("avi", "avi", "no frames"), ("mp4", None, "video stream")]
)
def test_zero_frames(suffix: str, container: str | None, words: str, tmp_path: Path) -> None:
    """A container with a video track but no packets (mp4 then reports no usable stream)."""
    path = tmp_path / f"empty.{suffix}"
    out = av.open(str(path), "w", format=container)
    stream = out.add_stream("mpeg4", rate=10)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    out.start_encoding()
    out.close()
    with pytest.raises(InputError, match=words):
        video.preprocess(path)


@pytest.mark.parametrize("fps", [0, -1.0, float("nan"), "fast", True])
def test_bad_fps_option(fps) -> None:
    with pytest.raises(ValueError, match="fps must be a finite number of frames per second > 0"):
        video.preprocess(np.zeros((4, 8, 8, 3), np.uint8), fps=fps)


@pytest.mark.parametrize(
    "frames, fps, words",
    [
        (np.zeros((4, 8, 8, 3), np.uint8), None, "fps="),
        (np.zeros((4, 8, 8, 3), np.uint8), 0.1, "too low"),
        (np.zeros((8, 8, 3), np.uint8), 10, r"shape \(T, H, W, 3\)"),
        (np.zeros((4, 3, 8, 8), np.uint8), 10, r"shape \(T, H, W, 3\)"),
        (np.zeros((4, 8, 8, 3), np.float32), 10, "dtype uint8"),
        (np.zeros((0, 8, 8, 3), np.uint8), 10, "empty"),
        (torch.zeros(4, 8, 8, 3), 10, "dtype uint8"),
    ],
)
def test_bad_frames(frames, fps, words: str) -> None:
    with pytest.raises(InputError, match=words):
        video.preprocess(frames, fps=fps)


def test_unsupported_types(wind: Path) -> None:
    with pytest.raises(InputError, match="expected a video path"):
        video.preprocess(3.5)
    with open(wind, encoding="latin-1") as text_file, pytest.raises(InputError, match="text mode"):
        video.preprocess(text_file)
    with pytest.raises(InputError, match="could not open video"):
        video.preprocess(io.BytesIO(b""))


# --- size guards and frame access ---------------------------------------------------


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    convert = video._to_rgb
    monkeypatch.setattr(video, "_to_rgb", lambda *args: calls.append(1) or convert(*args))
    return calls


def test_elongated_video_is_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _write_video(tmp_path / "wide.mp4", frames=20, size=(3200, 16))  # 200:1, a few KB
    decoded = _count_decodes(monkeypatch)
    with pytest.raises(InputError, match=r"aspect ratio of at most 100:1, found a 3200x16 video frame"):
        video.preprocess(path)
    assert decoded == []


def test_frame_pixel_limit_is_checked_from_the_header(wind: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image, "MAX_PIXELS", 10_000)
    decoded = _count_decodes(monkeypatch)
    with pytest.raises(InputError, match="video frame is .*pixel limit"):
        video.preprocess(wind)
    with pytest.raises(InputError, match="video frame is .*pixel limit"):
        video.preprocess(np.zeros((20, 120, 100, 3), dtype=np.uint8), fps=10)
    assert decoded == []


def test_elongated_frame_array_is_refused() -> None:
    with pytest.raises(InputError, match="found a 400x2 video frame"):
        video.preprocess(np.zeros((20, 2, 400, 3), dtype=np.uint8), fps=10)


def test_decode_frames_and_probe(synthetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert video.probe(synthetic) == (10.0, 150)
    decoded = _count_decodes(monkeypatch)
    frames = video.decode_frames(synthetic, [3, 140, 141])
    assert np.array_equal(frames, _all_frames(synthetic)[[3, 140, 141]])
    assert len(decoded) < 150 // 2  # seeks over the middle instead of decoding it
    with pytest.raises(InputError, match=r"frame indices in 0..149"):
        video.decode_frames(synthetic, [150])
