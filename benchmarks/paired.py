#!/usr/bin/env python
"""Interleaved SDK-vs-reference forward timing in ONE process (model only, float32).

    PYTHONPATH=src /tmp/refvenv/bin/python benchmarks/paired.py --checkpoint /tmp/ib-huge \
        [--modalities vision audio] [--batches 1,8] [--rounds 5] [--out paired.json]

Why: on a shared 2-core VM, run.py's separate child processes see the machine's
speed drift by up to 2x between one child and the next (CPU steal that the
child's own CPU-time counters cannot see), which swamps a 10% difference. Here
both models sit in the same process and their calls alternate (ref, SDK, ref,
SDK, ...) on the same inputs, so drift hits both sides alike; the reported ratio
is the median of the per-round ratios. Needs an interpreter where both
``imagebind`` (the reference) and ``imagebind_sdk`` import: the reference venv
with ``PYTHONPATH=src``. The SDK itself never imports the reference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from child_ref import _forward, load_reference, model_input  # noqa: E402
from common import MODALITIES, cpu_info  # noqa: E402


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(ref: Any, sdk: Any, modality: str, batch: int, rounds: int, int8: Any = None) -> dict[str, Any]:
    """Alternate reference and SDK calls; per-side medians and the median per-round ratio.

    With ``int8`` (an int8-quantised SDK model) it joins the rotation: its speed-up over
    the float32 SDK and its cosine to it are reported too.
    """
    import torch

    x = model_input(modality, batch)  # the reference's token ids / the same seeded tensors as run.py

    def ref_call() -> Any:
        return _forward(torch, ref, modality, x)

    def sdk_call() -> Any:
        return sdk.encode(modality, x)

    cos = torch.nn.functional.cosine_similarity(ref_call().float(), sdk_call(), dim=-1).min()  # + warm-up
    extra: dict[str, Any] = {}
    int8_t: list[float] = []
    if int8 is not None:
        extra["int8_cosine_to_fp32"] = float(
            torch.nn.functional.cosine_similarity(int8.encode(modality, x), sdk_call(), dim=-1).min()
        )
    ref_t, sdk_t = [], []
    for _ in range(rounds):
        ref_t.append(_time(ref_call))
        sdk_t.append(_time(sdk_call))
        if int8 is not None:
            int8_t.append(_time(lambda: int8.encode(modality, x)))
    ratios = [r / s for r, s in zip(ref_t, sdk_t)]
    if int8_t:
        extra["int8_items_per_s"] = batch / statistics.median(int8_t)
        extra["int8_over_fp32"] = statistics.median(s / q for s, q in zip(sdk_t, int8_t))
        extra["int8_s"] = int8_t
    return {
        **extra,
        "modality": modality,
        "batch": batch,
        "ref_items_per_s": batch / statistics.median(ref_t),
        "sdk_items_per_s": batch / statistics.median(sdk_t),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ref_s": ref_t,
        "sdk_s": sdk_t,
        "min_cosine": float(cos),
    }


def render(rows: list[dict[str, Any]]) -> str:
    head = f"{'modality':<8} {'batch':>5} | {'SDK items/s':>11} | {'ref items/s':>11} | {'SDK/ref (median of rounds)':>27} | {'range':>11} | cos"
    with_int8 = any("int8_items_per_s" in r for r in rows)
    if with_int8:
        head += " | int8 items/s | int8/fp32 | int8 cos"
    lines = [head, "-" * len(head)]
    for r in rows:
        line = (
            f"{r['modality']:<8} {r['batch']:>5} | {r['sdk_items_per_s']:>11.2f} | {r['ref_items_per_s']:>11.2f} | "
            f"{r['ratio_median']:>26.2f}x | {r['ratio_min']:.2f}-{r['ratio_max']:.2f} | {r['min_cosine']:.6f}"
        )
        if "int8_items_per_s" in r:
            line += f" | {r['int8_items_per_s']:>12.2f} | {r['int8_over_fp32']:>8.2f}x | {r['int8_cosine_to_fp32']:.5f}"
        lines.append(line)
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="directory with config.json, model.safetensors, model.pth")
    p.add_argument("--modalities", nargs="+", default=list(MODALITIES), choices=MODALITIES)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--rounds", type=int, default=5, help="alternating timed rounds after one warm-up")
    p.add_argument("--out", default=None, help="JSON results file")
    p.add_argument("--int8", action="store_true", help="add an int8-quantised SDK model to the rotation")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    from imagebind_sdk import ImageBind

    ref, _ = load_reference(args.checkpoint)
    sdk = ImageBind.load(args.checkpoint, modalities=args.modalities, device="cpu")
    int8 = ImageBind.load(args.checkpoint, modalities=args.modalities, device="cpu", quantize="int8") if args.int8 else None
    rows = [
        measure(ref, sdk, m, int(b), args.rounds, int8) for m in args.modalities for b in args.batches.split(",")
    ]
    meta = {**cpu_info(), "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
            "date": time.strftime("%Y-%m-%d"), "checkpoint": args.checkpoint, "rounds": args.rounds}
    print(f"{meta['date']}  torch {meta['torch_version']}  threads {meta['torch_threads']}  rounds {args.rounds}")
    print(render(rows))
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
