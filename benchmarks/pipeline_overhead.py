"""``embed()`` speed on the tiny checkpoint for two source trees (e.g. before/after a refactor).

The tiny model computes little, so this measures the SDK's own per-call and per-batch
work (tokenising, batching, outcome checks) rather than the encoders. Each tree runs in
its own child process (one torch thread), alternating, ``--rounds`` times; the report is
the median over rounds of each child's best time per call, and the ratio new/old within
this one run.

    python benchmarks/pipeline_overhead.py --old /path/to/old/src --new src --checkpoint ../shared/golden/tiny
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import time

logger = logging.getLogger("pipeline_overhead")

CASES = ("text x256", "vision x64", "imu x64", "text x1")


def _child(checkpoint: str, repeats: int) -> dict[str, float]:
    import torch

    from imagebind_sdk import ImageBind

    torch.set_num_threads(1)
    model = ImageBind.load(checkpoint, device="cpu")
    gen = torch.Generator().manual_seed(0)
    texts = [f"a photo of thing number {i} " + "word " * (i % 20) for i in range(256)]
    images = list(torch.rand(64, 3, 224, 224, generator=gen))
    imu = list(torch.randn(64, 6, 2000, generator=gen))
    calls = {
        "text x256": lambda: model.embed(text=texts),
        "vision x64": lambda: model.embed(vision=images),
        "imu x64": lambda: model.embed(imu=imu),
        "text x1": lambda: model.embed(text="a dog"),
    }
    out = {}
    for name, call in calls.items():
        call()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        out[name] = min(times)  # best of: the machine may be shared, other work only adds time
    return out


def _run(src: str, checkpoint: str, repeats: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(src), OMP_NUM_THREADS="1")
    cmd = [sys.executable, __file__, "--child", "--checkpoint", checkpoint, "--repeats", str(repeats)]
    return json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old")
    parser.add_argument("--new")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        sys.stdout.write(json.dumps(_child(args.checkpoint, args.repeats)))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        for label, src in (("old", args.old), ("new", args.new)):
            runs[label].append(_run(src, args.checkpoint, args.repeats))
    for case in CASES:
        old = statistics.median(r[case] for r in runs["old"])
        new = statistics.median(r[case] for r in runs["new"])
        logger.info("%-11s old %8.2f ms  new %8.2f ms  new/old %.3f", case, old * 1e3, new * 1e3, new / old)


if __name__ == "__main__":
    main()
