"""Every ```python block of README.md and docs/*.md runs, so the docs cannot drift.

The blocks of one document run in order in one namespace (as a reader would type
them), in a temporary working directory that holds the sample files under the
names the docs use (``SAMPLE_FILES``: ``dog.jpg`` is ``assets/dog_image.jpg``, ...).
The one substitution: a checkpoint source the docs name for users
(``ImageBind.load()`` or ``"imagebind-huge"``, which cannot be downloaded here) is
the tiny golden checkpoint. Blocks meant as output or shell use other fences
(```text, ```bash).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

# Name used in the docs -> sample asset (relative to ../shared/assets).
SAMPLE_FILES = {
    "dog.jpg": "dog_image.jpg",
    "car.jpg": "car_image.jpg",
    "bird.jpg": "bird_image.jpg",
    "dog.png": "alpha_0.png",
    "dog.wav": "dog_audio.wav",
    "car.wav": "car_audio.wav",
    "bird.wav": "bird_audio.wav",
    "bark.wav": "dog_audio.wav",
    "engine.wav": "car_audio.wav",
    "talk.wav": "long_48k_mono_0.wav",
    "clip.mp4": "video/wind_noise.mp4",
    "scene_depth.png": "depth/010002.jpg",
    "frame_ir.jpg": "thermal/190001.jpg",
    "walk.csv": "imu/imu1_2k.csv",
    "photos/dog.jpg": "dog_image.jpg",
    "photos/car.jpg": "car_image.jpg",
    "photos/bird.jpg": "bird_image.jpg",
    "clips/dog.wav": "dog_audio.wav",
    "clips/car.wav": "car_audio.wav",
    "clips/bird.wav": "bird_audio.wav",
}

_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
_DEFAULT_LOAD = re.compile(r"ImageBind\.load\(\s*\)")
_HUGE = re.compile(r"""(["'])imagebind-huge\1""")


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, source) of each ```python block in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 2, m.group(1)) for m in _FENCE.finditer(text)]


def substitute(source: str, checkpoint: Path) -> str:
    """The documented substitution: the user-facing checkpoint -> the tiny one."""
    source = _DEFAULT_LOAD.sub(f"ImageBind.load({str(checkpoint)!r})", source)
    return _HUGE.sub(repr(str(checkpoint)), source)


def lay_out_samples(folder: Path, assets: Path) -> None:
    for name, asset in SAMPLE_FILES.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(assets / asset, target)


WITH_CODE = [p for p in DOCUMENTS if python_blocks(p)]


def test_every_document_is_found() -> None:
    assert REPO / "README.md" in WITH_CODE and all(p.exists() for p in DOCUMENTS)


@pytest.mark.parametrize("document", WITH_CODE, ids=lambda p: p.name)
def test_python_blocks_run(document: Path, tmp_path: Path, tiny_dir: Path, assets_dir: Path, monkeypatch) -> None:
    blocks = python_blocks(document)
    lay_out_samples(tmp_path, assets_dir)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("IMAGEBIND_CHECKPOINT", str(tiny_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict = {"__name__": f"doc_{document.stem}"}
    for line, source in blocks:
        # dont_inherit: this module's `from __future__ import annotations` must not turn the
        # docs' annotations into strings (LanceDB's pydantic models need evaluated ones).
        code = compile(substitute(source, tiny_dir), f"{document.name}:{line}", "exec", dont_inherit=True)
        try:
            exec(code, namespace)
        except Exception as exc:  # name the block: the traceback points into the doc
            raise AssertionError(f"{document.relative_to(REPO)} block at line {line} failed: {exc!r}") from exc
    assert os.getcwd() == str(tmp_path)
