"""Streaming windows keep memory bounded: a 30-minute WAV costs no more than a 10-minute one.

A fresh process loads the tiny model (audio only), embeds a 2-minute then a 20-minute
16 kHz WAV generated in tmp, and reports ``ru_maxrss`` (the peak) after each. The peak
is monotonic, so the second minus the first is what the 3x longer recording added on
top of the short one's peak: it must stay under a quarter of the extra 20 minutes as a
float32 waveform (what decoding whole would add), and the peak above the warmed-up
model under a fixed bound. (The allocator settles within the first ~10 minutes: a 2-
then 20-minute run adds ~30 MB once, a further hour adds nothing.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

RATE = 16000
SHORT_S, LONG_S = 600, 1800
# A short hop (windows overlap) and a long one (a batch of 32 windows would span the whole
# file if read at once): fewer windows to encode either way; the whole file is still decoded.
HOPS_S = (4, 120)
CHILD = r"""
import json, resource, sys
from imagebind_sdk import ImageBind

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

model = ImageBind.load(sys.argv[1], modalities=["audio"], device="cpu")
model.embed_windows(audio=sys.argv[2], hop_s=int(sys.argv[4]))  # warm-up: lazy imports, first-call buffers
base = peak_mb()
short = model.embed_windows(audio=sys.argv[2], hop_s=int(sys.argv[4]))
after_short = peak_mb()
long = model.embed_windows(audio=sys.argv[3], hop_s=int(sys.argv[4]))
print(json.dumps({"base": base, "short": after_short, "long": peak_mb(), "windows": [len(short[0]), len(long[0])]}))
"""


def _write_wav(path: Path, seconds: int) -> None:
    import soundfile

    rng = np.random.default_rng(0)
    with soundfile.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as f:
        for _ in range(0, seconds, 60):  # written a minute at a time
            f.write((0.1 * rng.standard_normal(60 * RATE)).astype(np.float32))


@pytest.mark.parametrize("hop_s", HOPS_S)
def test_peak_memory_does_not_grow_with_duration(tiny_dir, tmp_path, hop_s):
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    _write_wav(short, SHORT_S)
    _write_wav(long, LONG_S)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-c", CHILD, str(tiny_dir), str(short), str(long), str(hop_s)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["windows"] == [(SHORT_S - 2) // hop_s + 1 + 1, (LONG_S - 2) // hop_s + 1 + 1]  # + the tail window
    extra_mb = (LONG_S - SHORT_S) * RATE * 4 / 2**20  # the extra 20 minutes as float32: 73 MB
    assert got["long"] - got["short"] < extra_mb / 4, got
    assert got["long"] - got["base"] < 100, got  # MB above the warmed-up model
