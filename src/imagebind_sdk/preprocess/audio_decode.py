"""Encoded audio -> float32 waveforms: the whole file, or only the sample ranges asked for.

soundfile (libsndfile) reads WAV/FLAC/OGG/MP3 and is what the reference's numbers were
made with; it seeks, so a range costs only its own samples. Containers it cannot open
(m4a, aac, mp4, webm, ...) go to PyAV, which decodes sequentially (sample-exact, unlike
a seek into a lossy stream) and keeps only the requested ranges: memory is bounded by
the ranges, time by the file.

:class:`AudioReader` is the interface: ``sample_rate``, ``channels``, ``frames`` and
``read(ranges)``. :func:`open_audio` picks soundfile or PyAV for a path, bytes or
binary file object.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from typing import Any, BinaryIO, Iterator, Protocol

import numpy as np
import soundfile

from .containers import AUDIO_FORMATS, UnreadableContainer, open_container
from .sources import InputError, as_binary_stream

logger = logging.getLogger(__name__)

Range = tuple[int, int]
# libsndfile formats whose seek lands exactly on the requested sample.
EXACT_SEEK_FORMATS = ("WAV", "WAVEX", "W64", "RF64", "AIFF", "AU", "CAF", "FLAC", "RAW")
# libsndfile reports a length it does not know (a streamed FLAC's "0 samples") as 2**63 - 1.
UNKNOWN_FRAMES = 2**62
MAX_SAMPLE_RATE = 1_000_000
MAX_CHANNELS = 64  # more than this in dim 0 almost surely means (samples, channels)
# Frames per read when reading sequentially (bounded memory, few calls).
READ_BLOCK_FRAMES = 1 << 16

# Sample formats PyAV hands back and how to scale them to float in [-1, 1).
_AV_SCALES = {"u8": 128.0, "s16": 32768.0, "s32": 2.0**31, "s64": 2.0**63, "flt": None, "dbl": None}


class AudioReader(Protocol):
    """An opened audio source: its rate, channel count, length and ranged reads."""

    sample_rate: int
    channels: int
    estimated_frames: int  # from the header: cheap, exact for soundfile, a guess for PyAV

    @property
    def frames(self) -> int:
        """Samples per channel in the whole file."""

    def read(self, ranges: list[Range]) -> list[np.ndarray]:
        """float32 ``(channels, stop - start)`` arrays for each ``[start, stop)`` (clipped to the file)."""


class ArrayReader:
    """An in-memory (channels, samples) waveform as an :class:`AudioReader`."""

    def __init__(self, waveform: np.ndarray, sample_rate: int) -> None:
        self._waveform = waveform
        self.sample_rate = sample_rate
        self.channels = waveform.shape[0]
        self.estimated_frames = waveform.shape[1]

    @property
    def frames(self) -> int:
        return int(self._waveform.shape[1])

    def read(self, ranges: list[tuple[int, int]]) -> list[np.ndarray]:
        return [np.ascontiguousarray(self._waveform[:, a:b]) for a, b in ranges]

    def blocks(self) -> Iterator[np.ndarray]:
        return (self._waveform[:, i : i + READ_BLOCK_FRAMES] for i in range(0, self.frames, READ_BLOCK_FRAMES))


class SoundFileReader:
    """A soundfile-readable source: exact length from the header, seeks to each range.

    Only formats whose seek is sample-exact are seeked (PCM and FLAC); others (Ogg
    Vorbis/Opus, MP3: a seek lands near, not on, the sample) are read from the start
    in blocks, keeping only the ranges.
    """

    def __init__(self, handle: soundfile.SoundFile) -> None:
        self._handle = handle
        self.sample_rate = int(handle.samplerate)
        self.channels = int(handle.channels)
        self.estimated_frames = int(handle.frames)

    @property
    def frames(self) -> int:
        return int(self._handle.frames)

    def read(self, ranges: list[Range]) -> list[np.ndarray]:
        if self._handle.format not in EXACT_SEEK_FORMATS:
            return collect_ranges(self._blocks(0), ranges, self.channels)
        return [
            collect_ranges(self._blocks(start, stop), [(start, stop)], self.channels, start)[0]
            for start, stop in ranges
        ]

    def blocks(self) -> Iterator[np.ndarray]:
        """Every sample in order, as float32 ``(channels, n)`` blocks (sequential, bounded memory)."""
        return self._blocks(0)

    def _blocks(self, start: int, stop: int | None = None) -> Iterator[np.ndarray]:
        """float32 (channels, n) blocks from ``start`` (to ``stop`` or the end); InputError if corrupt."""
        try:
            self._handle.seek(start)
            position = start
            while stop is None or position < stop:
                count = READ_BLOCK_FRAMES if stop is None else min(READ_BLOCK_FRAMES, stop - position)
                data = self._handle.read(count, dtype="float32", always_2d=True)
                if not len(data):
                    return
                position += len(data)
                yield data.T
        except RuntimeError as exc:  # soundfile.LibsndfileError: corrupt data
            raise InputError(f"could not decode audio: {exc}") from exc


class PyAVReader:
    """An FFmpeg-readable container: decodes from the start for every request (exact)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._start = stream.tell()
        self._frames: int | None = None
        with self._container() as (container, audio):
            self.sample_rate = int(audio.codec_context.sample_rate or audio.rate or 0)
            self.channels = len(audio.codec_context.layout.channels)
            self.estimated_frames = _estimated_frames(container, audio, self.sample_rate)

    @contextlib.contextmanager
    def _container(self) -> Iterator[tuple[Any, Any]]:
        self._stream.seek(self._start)
        with open_container(self._stream, AUDIO_FORMATS, "audio") as container:
            if not container.streams.audio:
                raise InputError("expected a file with an audio stream, found none")
            yield container, container.streams.audio[0]

    def _chunks(self) -> Iterator[np.ndarray]:
        with self._container() as (container, audio):
            for frame in container.decode(audio):
                yield frame_to_float(frame)

    def blocks(self) -> Iterator[np.ndarray]:
        """Every sample in order, as float32 ``(channels, n)`` decoded frames."""
        return self._chunks()

    @property
    def frames(self) -> int:
        if self._frames is None:  # one decoding pass, keeping nothing
            self._frames = sum(chunk.shape[1] for chunk in self._chunks())
        return self._frames

    def read_all(self, limit: int | None = None) -> np.ndarray | None:
        """The whole stream; None once it holds more than ``limit`` samples (all channels)."""
        chunks, held = [], 0
        for chunk in self._chunks():
            chunks.append(chunk)
            held += chunk.size
            if limit is not None and held > limit:
                return None
        if not chunks:
            raise InputError("audio stream holds no samples")
        self._frames = sum(chunk.shape[1] for chunk in chunks)
        return np.ascontiguousarray(np.concatenate(chunks, axis=1))

    def read(self, ranges: list[Range]) -> list[np.ndarray]:
        return collect_ranges(self._chunks(), ranges, self.channels)


def collect_ranges(
    chunks: Iterator[np.ndarray], ranges: list[Range], channels: int, origin: int = 0
) -> list[np.ndarray]:
    """Consecutive (channels, n) chunks starting at sample ``origin`` -> the samples of each range.

    Stops consuming ``chunks`` after the last range; keeps nothing else.
    """
    parts: list[list[np.ndarray]] = [[] for _ in ranges]
    position = origin
    last = max((stop for _, stop in ranges), default=origin)
    for chunk in chunks:
        if position >= last:
            break
        end = position + chunk.shape[1]
        for part, (start, stop) in zip(parts, ranges):
            low, high = max(start, position), min(stop, end)
            if low < high:
                part.append(chunk[:, low - position : high - position])
        position = end
    empty = np.zeros((channels, 0), dtype=np.float32)
    return [np.ascontiguousarray(np.concatenate(p, axis=1)) if p else empty for p in parts]


def _estimated_frames(container: Any, audio: Any, rate: int) -> int:
    """Samples per channel the container's header claims (0 when it claims nothing)."""
    if audio.duration is not None and audio.time_base is not None:
        return int(audio.duration * audio.time_base * rate)
    if container.duration is not None:  # in microseconds
        return int(container.duration * rate // 1_000_000)
    return 0


@contextlib.contextmanager
def open_audio(item: Any) -> Iterator[SoundFileReader | PyAVReader]:
    """A reader over a path, bytes or binary file object: soundfile, else PyAV.

    Its header is checked first (:func:`check_header`): a hostile rate or channel count
    is refused before a sample is decoded.
    """
    stream = as_binary_stream(item)
    start = stream.tell()
    try:
        try:
            handle = soundfile.SoundFile(stream)
        except RuntimeError as sf_error:  # soundfile.LibsndfileError: not a format it reads
            logger.debug("soundfile could not read audio (%s); trying PyAV", sf_error)
            stream.seek(start)
            with _ffmpeg_errors(sf_error):
                reader = PyAVReader(stream)
            with _ffmpeg_errors(sf_error):
                yield check_header(reader)
            return
        if handle.frames >= UNKNOWN_FRAMES:  # a streamed FLAC's header says "0 samples": length unknown
            handle.close()
            logger.debug("audio header does not give its length; decoding it with PyAV")
            stream.seek(start)
            unknown = InputError(f"the {handle.format} header gives no length")
            with _ffmpeg_errors(unknown):
                reader = PyAVReader(stream)
            with _ffmpeg_errors(unknown):
                yield check_header(reader)
            return
        with handle:
            yield check_header(SoundFileReader(handle))
    finally:
        if stream is not item:
            stream.close()


def check_header(reader: Any) -> Any:
    """``reader`` if its sample rate and channel count are plausible, else InputError.

    The same guards as for waveform arrays: a file declaring 1e9 Hz, 0 Hz or 5000
    channels is refused before anything is decoded or resampled.
    """
    if not 0 < reader.sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(f"expected a sample rate in 1..{MAX_SAMPLE_RATE} Hz, the file declares {reader.sample_rate}")
    if not 0 < reader.channels <= MAX_CHANNELS:
        raise InputError(f"expected 1..{MAX_CHANNELS} audio channels, the file declares {reader.channels}")
    return reader


@contextlib.contextmanager
def _ffmpeg_errors(sf_error: Exception) -> Iterator[None]:
    try:
        yield
    except InputError as error:
        if not isinstance(error, UnreadableContainer):
            raise
        raise InputError(
            f"could not decode audio: not a format soundfile reads ({_no_address(sf_error)}), and FFmpeg {error}"
        ) from error
    except Exception as av_error:  # FFmpeg raises many kinds for bad data
        raise InputError(
            f"could not decode audio: not a format soundfile reads ({_no_address(sf_error)}) and "
            f"FFmpeg failed too ({type(av_error).__name__}: {av_error})"
        ) from av_error


def _no_address(error: Exception) -> str:
    """An error's text without Python object addresses (soundfile names ``<_io.BytesIO object at 0x..>``)."""
    return re.sub(r" object at 0x[0-9a-fA-F]+", " object", str(error))


def read_whole(reader: SoundFileReader | PyAVReader, limit: int | None = None) -> np.ndarray | None:
    """Every sample of the source as float32 ``(channels, frames)``.

    With ``limit``: None instead when the source holds more than ``limit`` samples (all
    channels), found from the header when it gives the length, else by decoding in
    blocks and giving up past the limit (nothing beyond it is kept).
    """
    if isinstance(reader, PyAVReader):
        if limit is not None and reader.channels * reader.estimated_frames > limit:
            return None
        return reader.read_all(limit)
    if limit is not None and reader.channels * reader.frames > limit:
        return None
    return reader.read([(0, reader.frames)])[0]


def decode_with_pyav(stream: io.IOBase) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any FFmpeg-readable container, whole."""
    reader = PyAVReader(stream)  # type: ignore[arg-type]
    return reader.read_all(), reader.sample_rate


def frame_to_float(frame: Any) -> np.ndarray:
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
