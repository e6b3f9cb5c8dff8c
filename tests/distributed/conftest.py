"""A real local Ray cluster for the distributed tests; tests signal only the processes they started."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

ray = pytest.importorskip("ray", reason='needs Ray: pip install "imagebind-sdk[distributed]"')

OBJECT_STORE_BYTES = 150 * 2**20  # the tests move a few MB; do not reserve GBs of /dev/shm
REPO = Path(__file__).resolve().parents[2]
# Nodes started by `ray start` otherwise require a shared auth token; these listen on localhost only.
NO_TOKEN = {"RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One `ray start --block` in a process group of its own: every process of the node descends from
    it, so stopping the node signals that group only (never Ray processes found by name, as `ray stop`
    does, which would stop other people's clusters on a shared machine)."""

    def __init__(self, temp_dir: str, *args: str, env: dict[str, str] | None = None) -> None:
        # Workers import this tree's package (not another installed copy) and use one thread each.
        env = dict(os.environ, OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO / "src"),
                   **NO_TOKEN, **(env or {}))
        self.log = Path(tempfile.mkstemp(prefix="node_", suffix=".log", dir=temp_dir)[1])
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["ray", "start", "--block", *args], stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)

    def wait_started(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"ray start failed (rc={self.proc.returncode}): {self.log.read_text()[-3000:]}")
            time.sleep(0.2)

    def signal(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)  # the group this node's own Popen created
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        stop([self])


def stop(nodes: list[Node], grace_s: float = 5) -> None:
    """SIGTERM to each node's process group (`ray start --block` stops its processes), then SIGKILL
    to whatever is left of those groups; all nodes at once, so the grace periods overlap."""
    for node in nodes:
        node.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for node in nodes:
        try:
            node.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for node in nodes:
        node.signal(signal.SIGKILL)
        node.proc.wait(timeout=30)


@dataclass
class Cluster:
    address: str  # the head's GCS address
    nodes: list[Node]
    temp_dir: str

    def logs_tail(self, chars: int = 3000) -> str:
        """The end of each node's log, for a failure message."""
        return "\n".join(f"--- {node.log.name}:\n{node.log.read_text(errors='replace')[-chars:]}" for node in self.nodes)


@contextlib.contextmanager
def node_pair(num_cpus: int, env: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A head and a worker node on this machine, each with ``num_cpus`` (``env``: more variables)."""
    temp_dir = tempfile.mkdtemp(prefix="ib2n_", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = free_port()
    common = ["--num-cpus", str(num_cpus), "--object-store-memory", str(100 * 2**20), "--temp-dir", temp_dir]
    nodes = [Node(temp_dir, "--head", "--port", str(port), "--include-dashboard=false", *common, env=env)]
    try:
        nodes[0].wait_started()
        nodes.append(Node(temp_dir, "--address", f"127.0.0.1:{port}", *common, env=env))
        nodes[1].wait_started()
        yield Cluster(f"127.0.0.1:{port}", nodes, temp_dir)
    finally:
        stop(nodes)


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
