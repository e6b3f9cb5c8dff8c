"""A real local Ray cluster for the distributed tests, and helpers to find and stop Ray processes."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='needs Ray: pip install "imagebind-sdk[distributed]"')

OBJECT_STORE_BYTES = 150 * 2**20  # the tests move a few MB; do not reserve GBs of /dev/shm


def processes_matching(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (Linux /proc; Ray rewrites worker titles)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


@pytest.fixture(scope="module")
def ray_cluster():
    """``ray.init(num_cpus=2)`` once per module; its GCS address lets subprocess drivers join."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES,
             logging_level="WARNING", runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory: pytest.TempPathFactory, assets_dir: Path) -> Path:
    """24 small distinct images made from the sample photos."""
    from PIL import Image

    root = tmp_path_factory.mktemp("images")
    photos = [Image.open(assets_dir / f"{n}_image.jpg").convert("RGB") for n in ("dog", "car", "bird")]
    for i in range(24):
        w, h = photos[i % 3].size
        photos[i % 3].crop((i * 5, i * 3, w - i * 4, h - i * 2)).resize((64 + i, 48 + i)).save(root / f"img_{i:03d}.jpg")
    return root


@pytest.fixture
def with_bad_files(tmp_path: Path, assets_dir: Path) -> list[str]:
    """Every sample asset, a corrupt image and a file of unknown kind, as a list of paths."""
    from imagebind_sdk.bulk.files import list_files

    (tmp_path / "corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg" * 50)
    (tmp_path / "notes.txt").write_text("no kind")
    shutil.copy(assets_dir / "dog_image.jpg", tmp_path / "dog_copy.jpg")
    return list_files(assets_dir) + [str(tmp_path / n) for n in ("corrupt.jpg", "notes.txt", "dog_copy.jpg")]
