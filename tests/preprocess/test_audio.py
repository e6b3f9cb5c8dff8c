"""Audio preprocessing: exact against the reference, every input kind, every error."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile
import torch

from imagebind_sdk.preprocess import audio, audio_decode, preprocess_one
from imagebind_sdk.preprocess.sources import InputError

GOLDEN_AUDIO = [
    "bird_audio.wav",
    "car_audio.wav",
    "dog_audio.wav",
    "exact2s_16k_0.wav",
    "long_48k_mono_0.wav",
    "mid_22k_stereo_0.flac",
    "short_8k_mono_0.wav",
    "silence_16k_0.wav",
    "u8_11k_0.wav",
]


def _encode(path: Path, wave: np.ndarray, rate: int, codec: str, container: str | None = None) -> Path:
    """Write (channels, samples) float audio with PyAV (for formats soundfile cannot read)."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono" if wave.shape[0] == 1 else "stereo")
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(wave, dtype=np.float32), format="fltp", layout=stream.layout.name
        )
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def _read(path: Path, dtype: str = "float32") -> tuple[np.ndarray, int]:
    data, rate = soundfile.read(str(path), dtype=dtype, always_2d=True)
    return np.ascontiguousarray(data.T), rate


@pytest.fixture(scope="module")
def bird(assets_dir: Path) -> Path:
    return assets_dir / "bird_audio.wav"  # stereo, 44.1 kHz, 5 s


@pytest.fixture(scope="module")
def bird_expected(bird: Path) -> torch.Tensor:
    return audio.preprocess(bird)


# --- reference numbers -------------------------------------------------------------


def test_golden_list_is_complete(golden_preprocess: dict) -> None:
    keys = sorted(k.split("/", 1)[1] for k in golden_preprocess if k.startswith("audio/"))
    assert keys == GOLDEN_AUDIO


@pytest.mark.parametrize("name", GOLDEN_AUDIO)
def test_matches_reference(name: str, assets_dir: Path, golden_preprocess: dict) -> None:
    out = audio.preprocess(assets_dir / name)
    expected = golden_preprocess[f"audio/{name}"]
    assert out.dtype == torch.float32 and tuple(out.shape) == audio.ITEM_SHAPE
    assert (out - expected).abs().max() <= 1e-6


def test_clip_bounds() -> None:
    assert audio.clip_bounds(32000) == [(0, 32000)] * 3  # exactly 2 s: one clip, three times
    assert audio.clip_bounds(1000) == [(0, 32000)] * 3  # short: the whole file (slicing stops at the end)
    assert audio.clip_bounds(192000) == [(0, 32000), (80000, 112000), (160000, 192000)]
    # 3 s: clips overlap (the in-place mean subtraction then compounds, as in the reference)
    assert audio.clip_bounds(48000) == [(0, 32000), (8000, 40000), (16000, 48000)]


def test_float_duration_quirk() -> None:
    """Clip starts come from the float duration samples/16000, as in the reference.

    mid_22k_stereo_0.flac resamples to 52800 samples; the exact ratio would put the
    later clips one sample further on and miss the reference numbers.
    """
    assert audio.clip_bounds(52800) == [(0, 32000), (10399, 42399), (20799, 52799)]


# --- input kinds -------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: str(p), id="str"),
        pytest.param(lambda p: p, id="Path"),
        pytest.param(lambda p: p.read_bytes(), id="bytes"),
        pytest.param(lambda p: io.BytesIO(p.read_bytes()), id="BytesIO"),
        pytest.param(lambda p: open(p, "rb"), id="file"),
        pytest.param(lambda p: _read(p), id="tuple-numpy"),
        pytest.param(lambda p: (torch.from_numpy(_read(p)[0]), _read(p)[1]), id="tuple-torch"),
        pytest.param(lambda p: (_read(p, "int16")[0], 44100), id="tuple-int16"),
        pytest.param(lambda p: (_read(p)[0].astype(np.float64), 44100.0), id="tuple-float64"),
        pytest.param(lambda p: {"array": _read(p)[0], "sampling_rate": 44100}, id="dict-numpy"),
        pytest.param(
            lambda p: {"array": torch.from_numpy(_read(p)[0]), "sampling_rate": 44100}, id="dict-torch"
        ),
        pytest.param(lambda p: {"path": str(p), "array": None}, id="dict-path"),
        pytest.param(lambda p: {"bytes": p.read_bytes(), "path": "x.wav"}, id="dict-bytes"),
    ],
)
def test_input_kinds_agree(make, bird: Path, bird_expected: torch.Tensor) -> None:
    item = make(bird)
    try:
        assert torch.equal(audio.preprocess(item), bird_expected)
    finally:
        if hasattr(item, "close"):
            item.close()


def test_mono_1d_waveforms(assets_dir: Path, golden_preprocess: dict) -> None:
    path = assets_dir / "car_audio.wav"  # mono 44.1 kHz: exercises the resampling path
    wave, rate = _read(path)
    expected = audio.preprocess(path)
    assert (expected - golden_preprocess["audio/car_audio.wav"]).abs().max() <= 1e-6
    assert torch.equal(audio.preprocess((wave[0], rate)), expected)
    assert torch.equal(audio.preprocess((torch.from_numpy(wave[0]), rate)), expected)
    assert torch.equal(audio.preprocess({"array": wave[0], "sampling_rate": rate}), expected)


def test_int32_pcm_is_scaled(assets_dir: Path, golden_preprocess: dict) -> None:
    path = assets_dir / "long_48k_mono_0.wav"  # 24-bit file
    wave, rate = _read(path, "int32")
    out = audio.preprocess((wave, rate))
    assert torch.equal(out, audio.preprocess(path))
    assert (out - golden_preprocess["audio/long_48k_mono_0.wav"]).abs().max() <= 1e-6


def test_integer_scaling_rules() -> None:
    assert audio.as_waveform(np.array([0, 128, 255], dtype=np.uint8)).tolist() == [[-1.0, 0.0, 127 / 128]]
    assert audio.as_waveform(np.array([-32768, 16384], dtype=np.int16)).tolist() == [[-1.0, 0.5]]
    assert audio.as_waveform(np.array([-128, 64], dtype=np.int8)).tolist() == [[-1.0, 0.5]]


def test_caller_waveform_is_not_modified(bird: Path) -> None:
    wave = torch.from_numpy(_read(bird)[0])
    before = wave.clone()
    audio.preprocess((wave, 44100))
    at16k = torch.rand(2, 40000) - 0.5
    kept = at16k.clone()
    audio.preprocess((at16k, 16000))  # no resampling: clips are cut from a copy
    assert torch.equal(wave, before) and torch.equal(at16k, kept)


def test_load_waveform(bird: Path) -> None:
    wave, rate = audio.load_waveform(bird)
    assert rate == 44100 and wave.dtype == torch.float32 and tuple(wave.shape) == (2, 220500)
    assert wave.is_contiguous()


def test_pyav_decoding_equals_soundfile(assets_dir: Path) -> None:
    for name in ("bird_audio.wav", "long_48k_mono_0.wav", "u8_11k_0.wav", "exact2s_16k_0.wav"):
        with open(assets_dir / name, "rb") as f:
            wave, rate = audio_decode.decode_with_pyav(f)
        expected, expected_rate = audio.load_waveform(assets_dir / name)
        assert rate == expected_rate and torch.equal(torch.from_numpy(wave), expected), name


@pytest.mark.parametrize("codec, suffix, container", [("aac", "m4a", "ipod"), ("libopus", "webm", "webm")])
def test_containers_soundfile_cannot_read(codec, suffix, container, tmp_path: Path) -> None:
    rate = 48000
    t = np.arange(3 * rate) / rate
    wave = (0.3 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32)
    path = _encode(tmp_path / f"tone.{suffix}", wave, rate, codec, container)
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.info(str(path))
    decoded, decoded_rate = audio.load_waveform(path)
    assert decoded_rate == rate and decoded.shape[0] == 1
    assert abs(decoded.shape[1] - wave.shape[1]) < 0.1 * rate  # codec priming/padding only
    out = audio.preprocess(path.read_bytes())
    reference = audio.preprocess((wave, rate))
    assert tuple(out.shape) == audio.ITEM_SHAPE
    # a lossy 440 Hz tone: the strongest mel bin is the same, spectra are close
    assert torch.equal(out.mean(-1).argmax(-2), reference.mean(-1).argmax(-2))


def test_dispatcher_takes_a_pair_as_one_item(bird: Path, bird_expected: torch.Tensor) -> None:
    assert torch.equal(preprocess_one("audio", _read(bird)), bird_expected)


# --- errors ------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        audio.preprocess(tmp_path / "nope.wav")


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00garbage" * 20, b"\x00" * 1000])
def test_corrupt_file(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(InputError, match="could not decode audio"):
        audio.preprocess(path)


def test_truncated_files(bird: Path, tmp_path: Path) -> None:
    data = bird.read_bytes()
    (tmp_path / "header.wav").write_bytes(data[:30])
    with pytest.raises(InputError, match="could not decode audio.*soundfile.*FFmpeg"):
        audio.preprocess(tmp_path / "header.wav")
    (tmp_path / "short.wav").write_bytes(data[:2000])  # libsndfile reads what is there
    with pytest.raises(InputError, match="too short"):
        audio.preprocess(tmp_path / "short.wav")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    soundfile.write(str(path), np.zeros((0, 2), np.float32), 16000)
    with pytest.raises(InputError, match="empty: 2 channels x 0 samples"):
        audio.preprocess(path)


def test_no_audio_stream(tmp_path: Path) -> None:
    path = tmp_path / "silent_video.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    with pytest.raises(InputError, match="audio stream"):
        audio.preprocess(path)


def test_too_short() -> None:
    with pytest.raises(InputError, match="too short.*399 samples"):
        audio.preprocess((np.zeros(399, np.float32), 16000))
    with pytest.raises(InputError, match="too short"):
        audio.preprocess((np.zeros(100, np.float32), 8000))  # 200 samples after resampling
    assert tuple(audio.preprocess((np.zeros(400, np.float32), 16000)).shape) == audio.ITEM_SHAPE


@pytest.mark.parametrize(
    "item, words",
    [
        ((np.zeros((0, 1000), np.float32), 16000), "empty: 0 channels"),
        ((np.zeros((1, 0), np.float32), 16000), "empty"),
        ((np.full(16000, np.nan, np.float32), 16000), "non-finite"),
        ((torch.full((16000,), float("inf")), 16000), "non-finite"),
        ((np.zeros(16000, np.float32), 0), "sample rate"),
        ((np.zeros(16000, np.float32), -8000), "sample rate"),
        ((np.zeros(16000, np.float32), 2_000_000), "sample rate"),
        ((np.zeros(16000, np.float32), 44100.5), "integer sample rate"),
        ((np.zeros(16000, np.float32), True), "integer sample rate"),
        ((np.zeros(16000, np.float32), float("nan")), "integer sample rate"),
        ((np.zeros(16000, np.float32), "16000"), "integer sample rate"),
        (np.zeros(16000, np.float32), r"without its sample rate.*\(waveform, sample_rate\)"),
        (torch.zeros(2, 16000), "without its sample rate"),
        ({"array": np.zeros(16000)}, "sampling_rate"),
        ({"audio": 1}, "expected an audio dict"),
        ((np.zeros((48000, 2), np.float32), 16000), "transpose"),
        ((np.zeros((1, 2, 16000), np.float32), 16000), "shape"),
        ((np.zeros(16000, np.int64), 16000), "dtype int64"),
        (12345, "expected an audio path"),
    ],
)
def test_bad_inputs(item, words: str) -> None:
    with pytest.raises(InputError, match=words):
        audio.preprocess(item)


def test_non_finite_float_file(tmp_path: Path) -> None:
    path = tmp_path / "nan.wav"
    wave = np.zeros(16000, np.float32)
    wave[100] = np.nan
    soundfile.write(str(path), wave, 16000, subtype="FLOAT")
    with pytest.raises(InputError, match="non-finite"):
        audio.preprocess(path)


def test_text_mode_file(bird: Path) -> None:
    with open(bird, encoding="latin-1") as text_file, pytest.raises(InputError, match="text mode"):
        audio.preprocess(text_file)
