"""Cost of the weight check (float dtype, no NaN/inf) on a text-only load.

Each run is a fresh process that times ``ImageBind.load(ckpt, modalities=["text"])``,
then the first ``embed(text=["a dog"])``, then ``check_weights()`` (the NaN/inf scan of
every weight, if not yet done). Modes: "lazy" (shipped: the scan runs at an encoder's
first use), "without" (``checkpoint.start_weight_check`` replaced by a no-op: no value
scan at all), "background" (the scan starts on a thread as the load ends), "eager"
(the previous design: load scans every weight before returning).
Weights are memory-mapped: a load without the scan reads no weight data, the first
embed does. Each round runs every mode once, in a shuffled order (seeded), so a shared
CPU's drift and the previous process's teardown hit all modes alike; medians are
reported. The first round only warms the page cache and is dropped.

    OMP_NUM_THREADS=1 python benchmarks/load_check.py --checkpoint /work/ib-huge --runs 8 --out /tmp/load_check.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

logger = logging.getLogger("load_check")

MODES = ("lazy", "without", "background", "eager")
MEASURES = ("load", "load + first embed", "load + first embed + check_weights()")

CHILD = """
import sys, time
import imagebind_sdk.weights.checkpoint as checkpoint
from imagebind_sdk import ImageBind
mode = sys.argv[2]
def start(tensors, index, modalities):
    check = checkpoint.WeightCheck(tensors, index, modalities, background=mode == "background")
    if mode == "eager":
        check.wait()
    return None if mode == "without" else check
checkpoint.start_weight_check = start
begin = time.perf_counter()
model = ImageBind.load(sys.argv[1], modalities=["text"], device="cpu")
loaded = time.perf_counter()
model.embed(text=["a dog"])  # the first embed reads every weight page the scan did not
embedded = time.perf_counter()
model.check_weights()
print(loaded - begin, embedded - begin, time.perf_counter() - begin)
"""


def one_run(checkpoint: str, mode: str) -> tuple[float, ...]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    out = subprocess.run([sys.executable, "-c", CHILD, checkpoint, mode], capture_output=True, text=True,
                         env=env, check=True, timeout=600)
    return tuple(float(t) for t in out.stdout.strip().splitlines()[-1].split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--runs", type=int, default=7, help="measured runs per mode (after one warm-up round)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    times: dict[str, list[tuple[float, ...]]] = {mode: [] for mode in MODES}
    rng = random.Random(0)
    for i in range(args.runs + 1):
        for mode in rng.sample(MODES, len(MODES)):  # no mode always follows the same one
            run = one_run(args.checkpoint, mode)
            logger.info("run %d %-7s %s%s", i, mode, "  ".join(f"{t:.3f}" for t in run),
                        " (warm-up, dropped)" if i == 0 else "")
            if i:
                times[mode].append(run)
    result: dict[str, object] = {"runs": times}
    for j, what in enumerate(MEASURES):
        medians = {mode: statistics.median(run[j] for run in runs) for mode, runs in times.items()}
        change = {mode: medians[mode] / medians["without"] - 1 for mode in MODES}
        logger.info("%s: median %s", what, ", ".join(
            f"{mode} {medians[mode]:.3f} s ({100 * change[mode]:+.1f}%)" for mode in MODES))
        result[what] = {"medians": medians, "change_vs_without": change}
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
