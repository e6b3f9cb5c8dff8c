"""Adversarial file contents, generated at test time (no binaries are committed).

Each builder returns bytes (or writes a file) whose header lies about its size, whose
body is cut short, or which is otherwise malformed in a way real users and attackers
produce.
"""

from __future__ import annotations

import io
import struct
import wave
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RNG_SEED = 1234


def random_bytes(n: int = 4096, seed: int = RNG_SEED) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (64, 48), mode: str = "RGB") -> bytes:
    """A small valid image (a gradient, so resizing has something to do)."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    rgb = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb).convert(mode)
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return buf.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png_bomb(width: int = 60000, height: int = 60000, bit_depth: int = 8, color: int = 2) -> bytes:
    """A PNG whose IHDR claims width x height, with a tiny compressed body (a few rows)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color, 0, 0, 0)
    row = b"\x00" + b"\x00" * (width * 3 * bit_depth // 8 if color == 2 else width * bit_depth // 8)
    idat = zlib.compress(row * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def jpeg_bomb(width: int = 65000, height: int = 65000) -> bytes:
    """A valid small JPEG whose SOF0 marker is rewritten to claim width x height."""
    data = bytearray(image_bytes("JPEG", (16, 16)))
    pos = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, pos + 5, height, width)
    return bytes(data)


def gif_bomb(width: int = 65535, height: int = 65535) -> bytes:
    """A GIF whose screen and image descriptor claim width x height."""
    data = bytearray(image_bytes("GIF", (16, 16), mode="P"))
    struct.pack_into("<HH", data, 6, width, height)
    pos = data.index(b"\x2c")  # image descriptor
    struct.pack_into("<HH", data, pos + 5, width, height)
    return bytes(data)


def wav_bytes(samples: np.ndarray | None = None, rate: int = 16000, channels: int = 1) -> bytes:
    """A 16-bit PCM WAV (3 s of a 440 Hz tone by default)."""
    if samples is None:
        t = np.arange(rate * 3) / rate
        samples = (np.sin(2 * np.pi * 440 * t) * 0.3 * 32767).astype(np.int16)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()


def wav_lying(data_size: int = 0xFFFFFFF0, rate: int | None = None, channels: int | None = None) -> bytes:
    """A WAV whose data chunk claims ``data_size`` bytes (~2e9 samples) over 1000 real ones."""
    data = bytearray(wav_bytes(np.zeros(1000, np.int16)))
    if rate is not None:
        struct.pack_into("<I", data, 24, rate)
        struct.pack_into("<I", data, 28, (rate * 2) % 2**32)
    if channels is not None:
        struct.pack_into("<H", data, 22, channels)
    struct.pack_into("<I", data, data.index(b"data") + 4, data_size)
    struct.pack_into("<I", data, 4, min(data_size + 36, 0xFFFFFFFF))
    return bytes(data)


def csv_text(header: str = "accl_x,accl_y,accl_z,gyro_x,gyro_y,gyro_z", rows: int = 300, cols: int = 6) -> str:
    """An IMU CSV: a header and ``rows`` rows of smooth values."""
    t = np.arange(rows)[:, None] / 50.0
    values = np.sin(t + np.arange(cols)[None, :])
    lines = [header] + [",".join(f"{v:.6f}" for v in row) for row in values]
    return "\n".join(lines) + "\n"


def video_file(path: Path, width: int = 64, height: int = 48, frames: int = 20, fps: int = 10) -> Path:
    """An H.264 (or MPEG-4) mp4 of moving gradients written with PyAV."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            x = (np.arange(width)[None, :] + i * 3) % 256
            rgb = np.stack([x.repeat(height, 0)] * 3, axis=-1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]
