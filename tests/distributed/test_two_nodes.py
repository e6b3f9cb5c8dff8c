"""Two Ray nodes (separate raylets from `ray start`) on this machine both encode items."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from imagebind_sdk.bulk_store import load_bulk_output
from imagebind_sdk.distributed import embed_dataset

from .conftest import processes_matching

# Nodes started by `ray start` otherwise require a shared auth token; these listen on localhost only.
NO_TOKEN = {"RAY_AUTH_MODE": "disabled"}
NODE_CPUS = 3  # an actor takes 2: one actor fits per node, leaving a CPU for decoding tasks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0", **NO_TOKEN)
    subprocess.run(["ray", *args], check=True, env=env, capture_output=True, timeout=120)


def _stop(temp_dir: str) -> None:
    """Kill exactly the processes of these nodes (their command lines name our temp dir), not
    every Ray process on the machine as `ray stop` would; their workers exit with the raylets."""
    for _ in range(3):
        pids = processes_matching(temp_dir)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if not pids:
            return
        time.sleep(0.5)


@pytest.fixture
def two_nodes(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RAY_AUTH_MODE", NO_TOKEN["RAY_AUTH_MODE"])  # for this test's driver
    temp_dir = tempfile.mkdtemp(prefix="ib2n_", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = _free_port()
    common = ["--num-cpus", str(NODE_CPUS), "--object-store-memory", str(100 * 2**20), "--temp-dir", temp_dir]
    try:
        _ray("start", "--head", "--port", str(port), "--include-dashboard=false", *common)
        _ray("start", "--address", f"127.0.0.1:{port}", *common)
        yield f"127.0.0.1:{port}"
    finally:
        _stop(temp_dir)


def test_both_nodes_encode(two_nodes: str, tiny_dir: Path, assets_dir: Path, tmp_path: Path) -> None:
    import ray

    ray.init(address=two_nodes, logging_level="WARNING")
    try:
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 2 and all(n["Resources"]["CPU"] == NODE_CPUS for n in ray.nodes() if n["Alive"])
        summary = embed_dataset(assets_dir, checkpoint=tiny_dir, out=tmp_path / "out", batch_size=2,
                                concurrency=2, num_cpus_per_actor=2)
    finally:
        ray.shutdown()
    assert set(summary.nodes) == nodes and all(n > 0 for n in summary.nodes.values()), summary.nodes
    loaded = load_bulk_output(tmp_path / "out")
    assert summary.embedded == sum(summary.nodes.values()) == sum(len(v) for v in loaded.values()) == 30
