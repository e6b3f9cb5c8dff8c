"""examples/find_moments.py runs on the sample assets with the tiny checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "find_moments.py"


def test_find_moments_example(tiny_dir, assets_dir):
    env = {**os.environ, "IMAGEBIND_CHECKPOINT": str(tiny_dir), "IMAGEBIND_ASSETS": str(assets_dir),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "long_48k_mono_0.wav: 11 windows of audio, 0.0-12.0 s" in out
    assert "wind_noise.mp4: 10 windows of video" in out
    assert "'wind blowing':" in out and "sounds like dog_audio.wav:" in out and "model.find_moments" in out
    assert "00:00:" in out and "–" in out
