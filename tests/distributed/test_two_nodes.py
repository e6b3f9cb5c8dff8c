"""Two Ray nodes (separate raylets from `ray start`) on this machine both encode items."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagebind_sdk.bulk.store import load_bulk_output

from .conftest import NO_TOKEN, node_pair

NODE_CPUS = 3  # an actor takes 2: one actor fits per node, leaving a CPU for decoding tasks


@pytest.fixture
def two_nodes():
    with node_pair(NODE_CPUS) as cluster:
        yield cluster.address


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
