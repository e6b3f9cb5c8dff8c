"""Audio -> the audio encoder's input: three 2-second log-mel clips, as the reference.

The reference (ImageBind's ``load_and_transform_audio_data``) loads the file as
float32 in [-1, 1], resamples to 16 kHz, cuts three evenly spaced 2 s clips with
pytorchvideo's ``ConstantClipsPerVideoSampler``, and turns each into a Kaldi
filterbank of 128 mel bins x 204 frames, normalised with the AudioSet statistics.
Each step below reproduces it exactly, including two quirks the reference numbers
depend on: the clip times are computed from a *float* duration, and each clip's
mean is subtracted in place on the shared waveform, so overlapping clips (files
shorter than 6 s) see the earlier clips' subtraction.
"""

from __future__ import annotations

import io
import logging
import math
from fractions import Fraction
from typing import Any, Mapping

import numpy as np
import soundfile
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional

from .options import is_real_number
from .sources import InputError, as_binary_stream, check_finite, source_kind, tensor_to_numpy

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
NUM_CLIPS = 3
CLIP_SECONDS = 2
NUM_MEL_BINS = 128
TARGET_LEN = 204  # frames per clip: 2 s at a 10 ms shift gives 198; the model takes 204
FRAME_LENGTH_MS = 25
FRAME_SHIFT_MS = 10
MEAN = -4.268  # AudioSet log-mel statistics used by the reference
STD = 9.138
ITEM_SHAPE = (NUM_CLIPS, 1, NUM_MEL_BINS, TARGET_LEN)

MIN_SAMPLES = SAMPLE_RATE * FRAME_LENGTH_MS // 1000  # one analysis frame (400)
MAX_SAMPLE_RATE = 1_000_000
MAX_CHANNELS = 64  # more than this in dim 0 almost surely means (samples, channels)

# Integer PCM is scaled to [-1, 1) the way soundfile reads it: divide by 2**(bits-1);
# unsigned 8-bit is offset by 128 first. int64 and other integer types are refused.
_INT_SCALE = {np.dtype(np.int8): 128.0, np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2.0**31}


def preprocess(item: Any) -> torch.Tensor:
    """One audio item -> float32 tensor (3, 1, 128, 204).

    ``item`` is a path, bytes, a binary file object, a ``(waveform, sample_rate)``
    pair, or a dict ``{"array": waveform, "sampling_rate": rate}`` (Hugging Face
    datasets) / ``{"path": ...}`` / ``{"bytes": ...}``. A waveform is numpy or
    torch, 1-D mono or ``(channels, samples)``, float in [-1, 1] or integer PCM.
    """
    waveform, sample_rate = load_waveform(item)
    waveform = resample(waveform, sample_rate)
    return clips_to_fbanks(waveform)


def load_waveform(item: Any) -> tuple[torch.Tensor, int]:
    """Any accepted audio input -> (float32 (channels, samples) tensor, sample rate).

    The tensor is contiguous and owned by the caller (never a view of the input).
    """
    if isinstance(item, Mapping):
        waveform, sample_rate = _from_mapping(item)
    elif isinstance(item, tuple) and len(item) == 2:
        waveform, sample_rate = as_waveform(item[0]), _integer_sample_rate(item[1])
    elif isinstance(item, (np.ndarray, torch.Tensor)):
        raise InputError(
            f"got a bare waveform of shape {tuple(item.shape)} without its sample rate; "
            "pass (waveform, sample_rate) or {'array': waveform, 'sampling_rate': rate}"
        )
    elif source_kind(item) is not None:
        waveform, sample_rate = decode_file(item)
    else:
        raise InputError(
            "expected an audio path, bytes, file object, (waveform, sample_rate) pair or "
            f"{{'array', 'sampling_rate'}} dict, got {type(item).__name__}"
        )
    return _check_waveform(waveform), sample_rate


def _from_mapping(item: Mapping) -> tuple[torch.Tensor, int]:
    """Hugging Face ``datasets`` audio dicts: decoded array + rate, or path / bytes."""
    if item.get("array") is not None:
        if "sampling_rate" not in item:
            raise InputError("audio dict has 'array' but no 'sampling_rate'")
        return as_waveform(item["array"]), _integer_sample_rate(item["sampling_rate"])
    for key in ("bytes", "path"):
        if item.get(key) is not None:
            return decode_file(item[key])
    raise InputError(
        "expected an audio dict with 'array' and 'sampling_rate', or 'path'/'bytes'; "
        f"found keys {sorted(item)}"
    )


def as_waveform(data: Any) -> torch.Tensor:
    """numpy / torch / list waveform -> a fresh float32 (channels, samples) tensor."""
    array = tensor_to_numpy(data) if isinstance(data, torch.Tensor) else np.asarray(data)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2:
        raise InputError(
            f"expected a waveform of shape (samples,) or (channels, samples), found shape {array.shape}"
        )
    if array.shape[0] > MAX_CHANNELS:
        raise InputError(
            f"expected (channels, samples), found shape {array.shape}: {array.shape[0]} channels is "
            "implausible; if it is (samples, channels), transpose it"
        )
    return torch.from_numpy(_to_float32(array))


def _to_float32(array: np.ndarray) -> np.ndarray:
    """Float arrays cast to float32; integer PCM scaled to [-1, 1) by its bit depth."""
    if np.issubdtype(array.dtype, np.floating):
        return np.array(array, dtype=np.float32, order="C", copy=True)
    if array.dtype == np.uint8:
        return ((array.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    if array.dtype in _INT_SCALE:
        return (array.astype(np.float32) / np.float32(_INT_SCALE[array.dtype])).astype(np.float32)
    raise InputError(
        f"expected a float waveform in [-1, 1] or int8/uint8/int16/int32 PCM, found dtype {array.dtype}"
    )


def _integer_sample_rate(rate: Any) -> int:
    """A positive integral sample rate not over MAX_SAMPLE_RATE."""
    if not (is_real_number(rate) and math.isfinite(rate) and rate == int(rate)):
        raise InputError(f"expected an integer sample rate in Hz, got {rate!r}")
    rate = int(rate)
    if not 0 < rate <= MAX_SAMPLE_RATE:
        raise InputError(f"expected a sample rate in 1..{MAX_SAMPLE_RATE} Hz, got {rate}")
    return rate


def _check_waveform(waveform: torch.Tensor) -> torch.Tensor:
    channels, samples = waveform.shape
    if channels == 0 or samples == 0:
        raise InputError(f"audio is empty: {channels} channels x {samples} samples")
    return check_finite(waveform, "waveform")


def decode_file(item: Any) -> tuple[torch.Tensor, int]:
    """Encoded audio -> (float32 (channels, samples), rate): soundfile, else PyAV.

    soundfile (libsndfile) reads WAV/FLAC/OGG/MP3 and is what the reference's numbers
    were made with; containers it cannot open (m4a, aac, mp4, webm, ...) go to PyAV.
    """
    stream = as_binary_stream(item)
    start = stream.tell()
    try:
        try:
            data, rate = soundfile.read(stream, dtype="float32", always_2d=True)
            return torch.from_numpy(np.ascontiguousarray(data.T)), _integer_sample_rate(rate)
        except RuntimeError as sf_error:  # soundfile.LibsndfileError: not a format it reads
            logger.debug("soundfile could not read audio (%s); trying PyAV", sf_error)
            stream.seek(start)
            try:
                return _decode_with_pyav(stream)
            except InputError:
                raise
            except Exception as av_error:  # FFmpeg raises many kinds for bad data
                raise InputError(
                    f"could not decode audio: not a format soundfile reads ({sf_error}) and "
                    f"FFmpeg failed too ({type(av_error).__name__}: {av_error})"
                ) from av_error
    finally:
        if stream is not item:
            stream.close()


# Sample formats PyAV hands back and how to scale them to float in [-1, 1).
_AV_SCALES = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63, "flt": None, "dbl": None}


def _decode_with_pyav(stream: io.IOBase) -> tuple[torch.Tensor, int]:
    """Decode the first audio stream of any FFmpeg-readable container."""
    import av  # imported lazily: only needed for containers soundfile cannot read

    with av.open(stream, mode="r") as container:
        if not container.streams.audio:
            raise InputError("expected a file with an audio stream, found none")
        audio = container.streams.audio[0]
        chunks = [_frame_to_float(frame) for frame in container.decode(audio)]
        rate = audio.codec_context.sample_rate or audio.rate
    if not chunks:
        raise InputError("audio stream holds no samples")
    return torch.from_numpy(np.ascontiguousarray(np.concatenate(chunks, axis=1))), _integer_sample_rate(rate)


def _frame_to_float(frame: Any) -> np.ndarray:
    """One PyAV AudioFrame -> float32 (channels, samples), exactly rescaled."""
    name = frame.format.name
    base = name[:-1] if frame.format.is_planar else name
    if base not in _AV_SCALES:
        raise InputError(f"unsupported decoded audio sample format {name!r}")
    array = frame.to_ndarray()
    if not frame.format.is_planar:  # packed: (1, samples * channels), interleaved
        array = array.reshape(-1, len(frame.layout.channels)).T
    scale = _AV_SCALES[base]
    if scale is None:
        return array.astype(np.float32)
    offset = 128.0 if base == "u8" else 0.0
    return ((array.astype(np.float64) - offset) / scale).astype(np.float32)


def resample(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Resample to 16 kHz with torchaudio's defaults (as the reference), then check length."""
    if sample_rate != SAMPLE_RATE:
        waveform = torchaudio.functional.resample(waveform, orig_freq=sample_rate, new_freq=SAMPLE_RATE)
    if waveform.shape[1] < MIN_SAMPLES:
        raise InputError(
            f"audio is too short: {waveform.shape[1]} samples at {SAMPLE_RATE} Hz, fewer than one "
            f"{FRAME_LENGTH_MS} ms frame ({MIN_SAMPLES} samples)"
        )
    return waveform


def clip_bounds(num_samples: int) -> list[tuple[int, int]]:
    """Sample ranges [start, end) of the NUM_CLIPS clips, as pytorchvideo places them.

    ``ConstantClipsPerVideoSampler`` spaces clip starts evenly over
    ``[0, duration - CLIP_SECONDS]``; the duration is the float ``samples / rate``
    (converted exactly to a Fraction), and the sample index is truncated.
    """
    duration = num_samples / SAMPLE_RATE
    step = Fraction(max(duration - CLIP_SECONDS, 0)) / max(NUM_CLIPS - 1, 1)
    bounds = []
    for k in range(NUM_CLIPS):
        start = step * k
        bounds.append((int(start * SAMPLE_RATE), int((start + CLIP_SECONDS) * SAMPLE_RATE)))
    return bounds


def clips_to_fbanks(waveform: torch.Tensor) -> torch.Tensor:
    """16 kHz (channels, samples) -> (NUM_CLIPS, 1, 128, 204). Mutates ``waveform``."""
    clips = []
    for start, end in clip_bounds(waveform.shape[1]):
        clip = waveform[:, start:end]
        clip -= clip.mean()  # in place on the shared waveform, as the reference
        clips.append(log_mel(clip))
    return torch.stack(clips)


def log_mel(clip: torch.Tensor) -> torch.Tensor:
    """One clip -> normalised (1, 128, 204) Kaldi filterbank of its first channel."""
    fbank = kaldi.fbank(
        clip,
        htk_compat=True,
        sample_frequency=SAMPLE_RATE,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=NUM_MEL_BINS,
        dither=0.0,
        frame_length=FRAME_LENGTH_MS,
        frame_shift=FRAME_SHIFT_MS,
    ).transpose(0, 1)
    frames = fbank.shape[1]
    if frames < TARGET_LEN:
        fbank = torch.nn.functional.pad(fbank, (0, TARGET_LEN - frames))
    elif frames > TARGET_LEN:
        fbank = fbank[:, :TARGET_LEN]
    return ((fbank - MEAN) / STD).unsqueeze(0)
