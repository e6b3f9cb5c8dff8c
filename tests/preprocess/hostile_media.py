"""Small hostile media files that decode to gigabytes, generated in bounded time and memory.

Each builder writes one file and returns its path; all are under 1 MB on disk.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np
from PIL import Image


def one_frame_video(path: Path, size: int, codec: str = "libx264", height: int | None = None) -> Path:
    """A single flat grey frame of size x size (or x height) pixels: a few hundred KB at 8192²."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=1)
        stream.width, stream.height = size, height or size
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast"}
        frame = av.VideoFrame(size, height or size, "yuv420p")
        for plane in frame.planes:  # flat mid-grey: nearly nothing to encode
            plane.update(np.full(plane.buffer_size, 128, dtype=np.uint8))
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def palette_png(path: Path, size: int) -> Path:
    """A size x size palette PNG of one colour: about 20 KB at 13000 x 13000."""
    Image.new("P", (size, size), 0).save(path, optimize=False)
    return path


def depth_png_16bit(path: Path, size: int) -> Path:
    """A size x size 16-bit depth PNG (1.5 m everywhere): 42 KB at 4096²."""
    Image.fromarray(np.full((size, size), 1500, dtype=np.uint16)).save(path)
    return path


def wav_declaring_rate(path: Path, rate: int, samples: int, channels: int = 1) -> Path:
    """A 16-bit PCM WAV whose header declares ``rate`` Hz (1 Hz: 32000 samples last 9 hours)."""
    data = (np.sin(np.arange(samples * channels) / 7.0) * 8000).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * channels * 2, channels * 2, 16)
    path.write_bytes(header + b"data" + struct.pack("<I", len(data)) + data)
    return path


def tone(start: int, count: int, channels: int, rate: int) -> np.ndarray:
    """int16 (count, channels): a different sweep per channel, samples ``start`` onwards."""
    t = np.arange(start, start + count)[:, None] / rate
    freq = 200.0 * np.arange(1, channels + 1)[None, :] * (1 + t / 50)
    return (3000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def flac_in_matroska_without_duration(
    path: Path, seconds: int, channels: int = 8, rate: int = 48000, silent: bool = True
) -> Path:
    """``seconds`` of FLAC in Matroska written as a live stream: no duration in the header.

    Silent (default): 77 KB for 3 minutes of 8 channels; else :func:`tone`.
    """
    layout = {1: "mono", 2: "stereo", 8: "7.1"}[channels]
    with av.open(str(path), "w", format="matroska", options={"live": "1"}) as out:
        stream = out.add_stream("flac", rate=rate, layout=layout)
        block = 4096
        for start in range(0, seconds * rate, block):
            count = min(block, seconds * rate - start)
            samples = np.zeros((count, channels), np.int16) if silent else tone(start, count, channels, rate)
            frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)  # interleaved
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def flac_streamed(path: Path, seconds: float = 3.0, rate: int = 16000) -> Path:
    """A FLAC whose STREAMINFO says 0 samples (as an encoder writing to a pipe leaves it)."""
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, format="FLAC")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0, "STREAMINFO must come first"
    data[21] &= 0xF0  # the 36-bit total-samples field: low nibble of byte 21, bytes 22-25
    data[22:26] = b"\0\0\0\0"
    path.write_bytes(bytes(data))
    return path
