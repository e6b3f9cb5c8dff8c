"""Long recordings generated for the window tests (numpy + soundfile / PyAV), and their constants."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# Tone bursts of the moments recording: (start s, frequency Hz), each BURST_S long.
BURSTS = ((65.0, 440.0), (150.0, 1500.0), (231.0, 3200.0))
BURST_S = 4.0
NOISE_MINUTES = 5
REFERENCE_VIDEO_STEP = Fraction(81, 8)  # the 42.5 s video's reference clip step: (42.5 - 2) / 4

def write_video(path: Path, frames: int, fps: int, size: tuple[int, int] = (320, 180)) -> Path:
    """A video whose frames differ (moving gradients), encoded with PyAV (H.264)."""
    import av

    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for t in range(frames):
            rgb = np.stack([(x + 7 * t) % 256, (y + 3 * t) % 256, (x + y + 11 * t) % 256], -1).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
