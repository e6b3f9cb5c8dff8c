"""Audio file headers are checked like arrays, and a header that gives no length still decodes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

import hostile_media as media
from imagebind_sdk.preprocess import audio, preprocess_batch
from imagebind_sdk.preprocess.audio_decode import MAX_CHANNELS, open_audio
from imagebind_sdk.preprocess.sources import InputError


def test_streamed_flac_with_zero_samples_in_its_header_decodes(tmp_path: Path) -> None:
    """The STREAMINFO of a FLAC written to a pipe says 0 samples (unknown): libsndfile then
    failed with "Internal psf_fseek() failed"; the samples are all there."""
    streamed = media.flac_streamed(tmp_path / "streamed.flac")
    plain = tmp_path / "plain.flac"
    plain.write_bytes(streamed.read_bytes())
    data = bytearray(plain.read_bytes())  # the same file with its true length restored
    total = 3 * 16000
    data[21] = (data[21] & 0xF0) | (total >> 32)
    data[22:26] = struct.pack(">I", total & 0xFFFFFFFF)
    plain.write_bytes(bytes(data))
    assert soundfile.info(str(plain)).frames == total
    with open_audio(streamed) as reader:
        assert reader.frames == total
    torch.testing.assert_close(audio.preprocess(streamed), audio.preprocess(plain), rtol=0, atol=0)


def test_streamed_flac_without_samples_names_the_item(tmp_path: Path) -> None:
    header_only = media.flac_streamed(tmp_path / "streamed.flac").read_bytes()[:42]  # fLaC + STREAMINFO
    with pytest.raises(InputError, match=r"audio\[0\] \(<42 bytes>\): .*(no samples|could not decode)") as info:
        preprocess_batch("audio", [header_only])
    assert "psf_fseek" not in str(info.value)


def test_file_sample_rate_guard(tmp_path: Path) -> None:
    too_fast = media.wav_declaring_rate(tmp_path / "fast.wav", 2_000_000, 4000)
    with pytest.raises(InputError, match="sample rate in 1..1000000 Hz, the file declares 2000000"):
        audio.preprocess(too_fast)


def test_file_channel_guard(tmp_path: Path) -> None:
    """A 65-channel WAV: refused from its header like a 65-row array, before decoding."""
    many = media.wav_declaring_rate(tmp_path / "many.wav", 16000, 1600, channels=MAX_CHANNELS + 1)
    with pytest.raises(InputError, match=f"1..{MAX_CHANNELS} audio channels, the file declares {MAX_CHANNELS + 1}"):
        audio.preprocess(many)


def test_file_at_one_hertz_matches_the_array_path(tmp_path: Path) -> None:
    """32000 samples declared at 1 Hz: resampled around the clips only, as the same array is."""
    path = media.wav_declaring_rate(tmp_path / "slow.wav", 1, 32000)
    samples, rate = soundfile.read(str(path), dtype="float32")
    assert rate == 1
    torch.testing.assert_close(audio.preprocess(path), audio.preprocess((samples, 1)), rtol=0, atol=0)


def test_duration_less_container_matches_one_with_a_duration(tmp_path: Path) -> None:
    """Matroska FLAC without a duration (read in bounded blocks, then by spans) gives the
    numbers of the same samples in a WAV."""
    seconds, rate = 100, 48000  # 2 x 4.8M samples: over the whole-decode limit
    path = media.flac_in_matroska_without_duration(tmp_path / "live.mkv", seconds, channels=2, rate=rate, silent=False)
    wav = tmp_path / "same.wav"
    soundfile.write(str(wav), media.tone(0, seconds * rate, 2, rate), rate, subtype="PCM_16")
    torch.testing.assert_close(audio.preprocess(path), audio.preprocess(wav), rtol=0, atol=0)
