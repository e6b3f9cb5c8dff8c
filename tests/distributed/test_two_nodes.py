"""Two Ray nodes (separate raylets from `ray start`) on this machine both encode items."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from imagebind_sdk.bulk.store import load_bulk_output

# Nodes started by `ray start` otherwise require a shared auth token; these listen on localhost only.
NO_TOKEN = {"RAY_AUTH_MODE": "disabled"}
NODE_CPUS = 3  # an actor takes 2: one actor fits per node, leaving a CPU for decoding tasks


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    """One `ray start --block` in a process group of its own: every process of the node descends from
    it, so stopping the node signals that group only (never Ray processes found by name, as `ray stop`
    does, which would stop other people's clusters on a shared machine)."""

    def __init__(self, temp_dir: str, *args: str) -> None:
        env = dict(os.environ, OMP_NUM_THREADS="1", RAY_USAGE_STATS_ENABLED="0", **NO_TOKEN)
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


@pytest.fixture
def two_nodes():
    temp_dir = tempfile.mkdtemp(prefix="ib2n_", dir="/tmp")  # short: Ray's socket paths have a length limit
    port = _free_port()
    common = ["--num-cpus", str(NODE_CPUS), "--object-store-memory", str(100 * 2**20), "--temp-dir", temp_dir]
    nodes = [Node(temp_dir, "--head", "--port", str(port), "--include-dashboard=false", *common)]
    try:
        nodes[0].wait_started()
        nodes.append(Node(temp_dir, "--address", f"127.0.0.1:{port}", *common))
        nodes[1].wait_started()
        yield f"127.0.0.1:{port}"
    finally:
        stop(nodes)


# The driver runs in a fresh process: Ray keeps per-process state (auth mode, job config)
# from the test module that ran before in this interpreter.
DRIVER = """
import json, sys, ray
from imagebind_sdk.distributed import embed_dataset
ray.init(address=sys.argv[1], logging_level="WARNING")
alive = [n for n in ray.nodes() if n["Alive"]]
summary = embed_dataset(sys.argv[2], checkpoint=sys.argv[3], out=sys.argv[4], batch_size=2,
                        concurrency=2, num_cpus_per_actor=2)
print(json.dumps({"nodes": {n["NodeID"]: n["Resources"]["CPU"] for n in alive}, "summary": summary.as_dict()}))
ray.shutdown()
"""


def test_both_nodes_encode(two_nodes: str, tiny_dir: Path, assets_dir: Path, tmp_path: Path) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", **NO_TOKEN)
    cmd = [sys.executable, "-c", DRIVER, two_nodes, str(assets_dir), str(tiny_dir), str(tmp_path / "out")]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    nodes, summary = report["nodes"], report["summary"]
    assert len(nodes) == 2 and set(nodes.values()) == {NODE_CPUS}
    assert set(summary["nodes"]) == set(nodes) and all(n > 0 for n in summary["nodes"].values()), summary
    loaded = load_bulk_output(tmp_path / "out")
    assert summary["embedded"] == sum(summary["nodes"].values()) == sum(len(v) for v in loaded.values()) == 30
