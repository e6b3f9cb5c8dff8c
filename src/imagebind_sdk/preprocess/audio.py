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

import logging
import math
from fractions import Fraction
from typing import Any, Mapping

import numpy as np
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional

from ..model.config import AUDIO_FRAMES, AUDIO_MEL_BINS
from .audio_decode import MAX_CHANNELS, MAX_SAMPLE_RATE, ArrayReader, AudioReader, open_audio, read_whole
from .options import is_real_number
from .sources import InputError, check_finite, source_kind, tensor_to_numpy

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
NUM_CLIPS = 3
CLIP_SECONDS = 2
NUM_MEL_BINS = AUDIO_MEL_BINS
TARGET_LEN = AUDIO_FRAMES  # frames per clip: 2 s at a 10 ms shift gives 198; the model takes 204
FRAME_LENGTH_MS = 25
FRAME_SHIFT_MS = 10
MEAN = -4.268  # AudioSet log-mel statistics used by the reference
STD = 9.138
ITEM_SHAPE = (NUM_CLIPS, 1, NUM_MEL_BINS, TARGET_LEN)

# torchaudio.functional.resample's defaults, which the reference uses.
RESAMPLE_FILTER_WIDTH = 6
RESAMPLE_ROLLOFF = 0.99
# Files holding more samples than this (all channels at their own rate: 32 MB as float32,
# ~95 s of 44.1 kHz stereo) are not decoded whole: only the three clips' spans are read
# (bounded memory). The numbers are bit-identical for rates >= 16 kHz; upsampled ones
# (8 kHz) differ by up to 1e-4 under MKL_CBWR, whose convolution rounds differently on a
# shorter input. Counted from what is decoded, not from the header (which may lie or be absent).
WHOLE_DECODE_MAX_SAMPLES = 2**23
# A decoded waveform is resampled whole only up to this many output samples (all channels;
# ~35 min mono, ~270 MB with torchaudio's intermediate). Longer ones (e.g. 32000 samples
# declared at 1 Hz: 512M output samples, 2 GB) are resampled only around the clips' spans.
WHOLE_RESAMPLE_MAX_SAMPLES = 2**25

MIN_SAMPLES = SAMPLE_RATE * FRAME_LENGTH_MS // 1000  # one analysis frame (400)

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
    source = _encoded_source(item)
    if source is not None:
        with open_audio(source) as reader:
            return _reader_to_fbanks(reader)
    waveform, sample_rate = load_waveform(item)
    return _waveform_to_fbanks(waveform, sample_rate)


def check_options() -> None:
    """Audio takes no options: the reference's transform has no free parameter."""


def _encoded_source(item: Any) -> Any:
    """The path, bytes or file object holding encoded audio in ``item``, or None."""
    if source_kind(item) is not None:
        return item
    if isinstance(item, Mapping) and item.get("array") is None:
        return next((item[k] for k in ("bytes", "path") if item.get(k) is not None), None)
    return None


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
    """Encoded audio (path, bytes, file object) -> (float32 (channels, samples), rate), whole."""
    with open_audio(item) as reader:
        rate = _integer_sample_rate(reader.sample_rate)
        return torch.from_numpy(read_whole(reader)), rate


def decode_span(item: Any, start: int, stop: int) -> torch.Tensor:
    """Samples ``[start, stop)`` of the 16 kHz waveform of an encoded source, ``(channels, n)``.

    Equal to resampling the whole file and slicing, but reads only about that span
    (soundfile seeks; PyAV decodes up to it keeping nothing else).
    """
    with open_audio(item) as reader:
        return read_16k(reader, [(start, stop)])[0]


def resampled_length(frames: int, sample_rate: int) -> int:
    """Samples after resampling ``frames`` to 16 kHz, computed as torchaudio does."""
    if sample_rate == SAMPLE_RATE:
        return frames
    gcd = math.gcd(sample_rate, SAMPLE_RATE)
    orig, new = sample_rate // gcd, SAMPLE_RATE // gcd
    return int(torch.ceil(torch.as_tensor(new * frames / orig)))  # float32 ceil, as torchaudio


def read_16k(reader: AudioReader, spans: list[tuple[int, int]]) -> list[torch.Tensor]:
    """Spans ``[start, stop)`` of the 16 kHz waveform: each resampled from a window around it.

    torchaudio's resampler is a strided convolution: output block ``t`` (``new`` samples)
    reads input ``[t*orig - width, t*orig + width + orig)``. A window starting at a
    multiple of ``orig``, with a margin of whole blocks, therefore gives the very numbers
    of resampling the whole file (its zero padding only touches the discarded margin).
    """
    rate = _integer_sample_rate(reader.sample_rate)
    if rate == SAMPLE_RATE:
        return [_check_waveform(torch.from_numpy(a)) for a in reader.read(spans)]
    gcd = math.gcd(rate, SAMPLE_RATE)
    orig, new = rate // gcd, SAMPLE_RATE // gcd
    width = math.ceil(RESAMPLE_FILTER_WIDTH * orig / (min(orig, new) * RESAMPLE_ROLLOFF))
    margin = -(-width // orig) + 2  # whole blocks on each side
    frames = reader.frames
    windows, offsets = [], []
    for start, stop in spans:
        first = max(start // new - margin, 0)
        windows.append((first * orig, min((-(-stop // new) + margin) * orig + width + orig, frames)))
        offsets.append(first * new)
    out = []
    for (start, stop), offset, data in zip(spans, offsets, reader.read(windows)):
        resampled = resample_to_16k(torch.from_numpy(data), rate)
        out.append(_check_waveform(resampled[:, start - offset : stop - offset].contiguous()))
    return out


def _reader_to_fbanks(reader: AudioReader) -> torch.Tensor:
    """An opened source -> fbanks, decoding only the clips' spans when the file is long.

    Memory follows what the file really holds, never what its header claims: at most
    ``WHOLE_DECODE_MAX_SAMPLES`` are decoded at once (a container without a duration is
    read in blocks and given up past that), longer files are read span by span.
    """
    rate = _integer_sample_rate(reader.sample_rate)
    waveform = read_whole(reader, WHOLE_DECODE_MAX_SAMPLES)
    if waveform is None:  # longer than the whole-decode limit
        if resampled_length(reader.frames, rate) >= NUM_CLIPS * CLIP_SECONDS * SAMPLE_RATE:
            return _span_fbanks(reader)  # the clips do not overlap
        if reader.channels * reader.frames > WHOLE_RESAMPLE_MAX_SAMPLES:
            raise InputError(
                f"audio holds {reader.channels} channels x {reader.frames} samples at {rate} Hz: under "
                f"{NUM_CLIPS * CLIP_SECONDS} s, yet over the {WHOLE_RESAMPLE_MAX_SAMPLES}-sample limit"
            )
        waveform = read_whole(reader)
    return _waveform_to_fbanks(_check_waveform(torch.from_numpy(waveform)), rate)


def _waveform_to_fbanks(waveform: torch.Tensor, rate: int) -> torch.Tensor:
    """A whole (channels, samples) waveform -> fbanks; resampled around the clips only when
    resampling it whole would be huge (e.g. 32000 samples declared at 1 Hz: 2 GB at 16 kHz)."""
    channels, samples = waveform.shape
    if channels * resampled_length(samples, rate) > WHOLE_RESAMPLE_MAX_SAMPLES:
        return _span_fbanks(ArrayReader(waveform.numpy(), rate))
    return clips_to_fbanks(resample(waveform, rate))


def _span_fbanks(reader: AudioReader) -> torch.Tensor:
    """fbanks from the clips' spans alone (the clips must not overlap: >= 6 s at 16 kHz)."""
    length = resampled_length(reader.frames, _integer_sample_rate(reader.sample_rate))
    clips = [_strided_like_a_slice(clip) for clip in read_16k(reader, clip_bounds(length))]
    return torch.stack([log_mel(clip - clip.mean()) for clip in clips])


def resample(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Resample to 16 kHz with torchaudio's defaults (as the reference), then check length."""
    waveform = resample_to_16k(waveform, sample_rate)
    if waveform.shape[1] < MIN_SAMPLES:
        raise InputError(
            f"audio is too short: {waveform.shape[1]} samples at {SAMPLE_RATE} Hz, fewer than one "
            f"{FRAME_LENGTH_MS} ms frame ({MIN_SAMPLES} samples)"
        )
    return waveform


def _strided_like_a_slice(clip: torch.Tensor) -> torch.Tensor:
    """``clip`` as a row-strided view, like ``waveform[:, a:b]`` of a whole multi-channel file.

    torch sums a strided view in another order than a contiguous tensor; the clip's
    mean must be the one of the reference's slice, to the last bit.
    """
    channels, samples = clip.shape
    buffer = torch.empty(channels, samples + 1, dtype=clip.dtype)
    buffer[:, :samples] = clip
    return buffer[:, :samples]


def resample_to_16k(waveform: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """torchaudio's resampling with its defaults, as the reference calls it."""
    if sample_rate == SAMPLE_RATE:
        return waveform
    return torchaudio.functional.resample(
        waveform,
        orig_freq=sample_rate,
        new_freq=SAMPLE_RATE,
        lowpass_filter_width=RESAMPLE_FILTER_WIDTH,
        rolloff=RESAMPLE_ROLLOFF,
    )


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
