"""Cost of the per-tensor weight check (float dtype, no NaN/inf) on a text-only load.

Each run is a fresh process that times ``ImageBind.load(ckpt, modalities=["text"])``
and load + the first ``embed(text=["a dog"])`` (weights are memory-mapped: a load
without the check reads no weight data, the first embed does);
"without" runs replace ``checkpoint.check_tensor`` with a no-op. Runs alternate
(with, without, with, ...) so a shared CPU's drift hits both; medians are reported.
The first pair only warms the page cache and is dropped.

    python benchmarks/load_check.py --checkpoint /work/ib-huge --runs 7 --out /tmp/load_check.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger("load_check")

CHILD = """
import sys, time
import imagebind_sdk.checkpoint as checkpoint
from imagebind_sdk import ImageBind
if sys.argv[2] == "without":
    checkpoint.check_tensor = lambda key, tensor, path: None
start = time.perf_counter()
model = ImageBind.load(sys.argv[1], modalities=["text"], device="cpu")
loaded = time.perf_counter()
model.embed(text=["a dog"])  # the first embed reads every weight page the check did not
print(loaded - start, time.perf_counter() - start)
"""


def one_run(checkpoint: str, mode: str) -> tuple[float, float]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", CHILD, checkpoint, mode], capture_output=True, text=True,
                         env=env, check=True, timeout=600)
    load, first_embed = out.stdout.strip().splitlines()[-1].split()
    return float(load), float(first_embed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--runs", type=int, default=7, help="measured runs per mode (after one warm-up pair)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    times: dict[str, list[tuple[float, float]]] = {"with": [], "without": []}
    for i in range(args.runs + 1):
        modes = ("with", "without") if i % 2 else ("without", "with")  # alternate who goes first
        for mode in modes:
            load, first = one_run(args.checkpoint, mode)
            logger.info("run %d %-7s load %.2f s, load + first embed %.2f s%s", i, mode, load, first,
                        " (warm-up, dropped)" if i == 0 else "")
            if i:
                times[mode].append((load, first))
    result: dict[str, object] = {"runs": times}
    for j, what in enumerate(("load", "load + first embed")):
        medians = {mode: statistics.median(run[j] for run in runs) for mode, runs in times.items()}
        overhead = medians["with"] / medians["without"] - 1
        logger.info("%s: median with check %.2f s, without %.2f s: %+.1f%%", what, medians["with"],
                    medians["without"], 100 * overhead)
        result[what] = {"medians": medians, "overhead": overhead}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
