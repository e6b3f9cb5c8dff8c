"""A real local Ray cluster for the distributed tests; tests signal only the processes they started."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason='needs Ray: pip install "imagebind-sdk[distributed]"')

OBJECT_STORE_BYTES = 150 * 2**20  # the tests move a few MB; do not reserve GBs of /dev/shm


def parent_pid(pid: int) -> int:
    """The parent of ``pid`` (field 4 of /proc/PID/stat; the name in field 2 may hold spaces)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def started_by_this_test(pid: int) -> bool:
    """Whether ``pid`` descends from this process (our own ray.init's raylet starts the workers),
    checked before a test signals a PID it was told about: never someone else's process."""
    try:
        while pid > 1:
            if pid == os.getpid():
                return True
            pid = parent_pid(pid)
    except (OSError, ValueError, IndexError):
        return False
    return False


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
