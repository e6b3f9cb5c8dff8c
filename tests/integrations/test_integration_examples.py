"""examples/lancedb_media_search.py runs end to end with the tiny checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("lancedb", reason="pip install 'imagebind-sdk[lancedb]'")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_lancedb_media_search(tiny_dir, assets_dir, tmp_path):
    env = {**os.environ, "IMAGEBIND_CHECKPOINT": str(tiny_dir), "IMAGEBIND_ASSETS": str(assets_dir),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, str(EXAMPLES / "lancedb_media_search.py"), str(tmp_path / "db")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "indexed 11 rows" in res.stdout
    # Each query is also a row (text "a dog"; the bird sound), so it comes first at distance 0.
    lines = res.stdout.splitlines()
    after_text = lines[lines.index("text query 'a dog':") + 1]
    after_audio = lines[lines.index("after reopening, audio query bird_audio.wav:") + 1]
    assert after_text.startswith("  1. a dog ") and after_text.endswith("distance 0.0000")
    assert after_audio.startswith("  1. bird_audio.wav ") and after_audio.endswith("distance 0.0000")
