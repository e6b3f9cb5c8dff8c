"""Every script in examples/ runs end to end with the tiny golden checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def example_env(tiny_dir: Path, assets_dir: Path) -> dict[str, str]:
    return {**os.environ, "IMAGEBIND_CHECKPOINT": str(tiny_dir), "IMAGEBIND_ASSETS": str(assets_dir),
            "HF_HUB_OFFLINE": "1"}


def run_example(env: dict[str, str], name: str, *args: str) -> str:
    res = subprocess.run([sys.executable, str(EXAMPLES / name), *map(str, args)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, f"{name} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def test_quickstart(example_env):
    out = run_example(example_env, "quickstart.py")
    for title in ("Vision x Text:", "Audio x Text:", "Vision x Audio:"):
        assert title in out
    assert "dog_image.jpg" in out and "bird_audio.wav" in out and "A car" in out


def test_quickstart_assets_argument(example_env, assets_dir):
    env = {**example_env, "IMAGEBIND_ASSETS": "/nonexistent"}
    out = run_example(env, "quickstart.py", assets_dir)  # the argument wins over the env
    assert "Vision x Text:" in out


def test_zero_shot_audio(example_env, assets_dir):
    out = run_example(example_env, "zero_shot_audio.py", assets_dir / "dog_audio.wav", assets_dir / "car_audio.wav")
    assert "labels: dog, car, bird" in out
    assert out.count("dog_audio.wav:") == 2 and "With custom templates" in out


def test_cross_modal_search(example_env):
    out = run_example(example_env, "cross_modal_search.py")
    assert "indexed" in out and "audio query dog_audio.wav:" in out and "text query 'a bird':" in out
    assert "  1. " in out


def test_embedding_arithmetic(example_env):
    out = run_example(example_env, "embedding_arithmetic.py")
    assert "image car_image.jpg + audio bird_audio.wav:" in out
    assert "image car_image.jpg: car_image.jpg" in out  # an image retrieves itself first


def test_depth_thermal_imu(example_env):
    out = run_example(example_env, "depth_thermal_imu.py")
    for line in ("depth: (3, 32)", "thermal: (3, 32)", "imu: (3, 32)", "IMU x Text (cosine)", "010002.jpg"):
        assert line in out


def test_lora_adapter(example_env):
    out = run_example(example_env, "lora_adapter.py")
    assert "Before (adapter: None)" in out and "After (adapter: example)" in out
    assert "base restored exactly: True" in out
    change = float(out.split("largest change in a similarity: ")[1].split()[0])
    assert change > 0.01  # the adapter really changes the vectors
