#!/usr/bin/env python
"""onnxruntime vs torch encoder speed on the CPU, in ONE process with alternating calls.

    python benchmarks/onnx.py --checkpoint /tmp/ib-huge --onnx /tmp/ibh/text --modality text \
        [--batch 8] [--rounds 5] [--out onnx_text.json]

The ONNX folder comes from ``imagebind-sdk export-onnx --quantize int8`` (float32 and
int8 graphs). Four variants of one encoder sit in the same process: torch float32,
torch int8 (``quantize="int8"``), onnxruntime float32 and onnxruntime int8 (dynamic).
Each round calls each once on the same preprocessed batch (sample files from
../shared/assets, captions for text), so the shared VM's speed drift hits all alike;
items/s are medians over rounds and speed-ups are medians of per-round ratios to
torch float32. Also reported: max |difference| and minimum cosine to torch float32.
Threads: torch's and onnxruntime's intra-op threads are both ``torch.get_num_threads()``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import files_for, texts_for  # noqa: E402

from imagebind_sdk import ImageBind  # noqa: E402
from imagebind_sdk.preprocess import preprocess_batch  # noqa: E402

logger = logging.getLogger("bench.onnx")

VARIANTS = ("torch fp32", "torch int8", "ort fp32", "ort int8")
DEFAULT_BATCH = {"text": 8, "vision": 2, "audio": 2}


def model_input(model: ImageBind, modality: str, batch: int) -> torch.Tensor:
    """The encoder input for ``batch`` items, preprocessed once (not timed)."""
    if modality == "text":
        return model.tokenizer(texts_for(batch))
    return preprocess_batch(modality, files_for(modality, batch)).tensor


def load_variants(checkpoint: str, onnx_dir: str, modality: str) -> dict[str, ImageBind]:
    load = dict(modalities=[modality], device="cpu")
    return {
        "torch fp32": ImageBind.load(checkpoint, **load),
        "torch int8": ImageBind.load(checkpoint, quantize="int8", **load),
        "ort fp32": ImageBind.load(onnx_dir, backend="onnxruntime", **load),
        "ort int8": ImageBind.load(onnx_dir, backend="onnxruntime", quantize="int8", **load),
    }


def measure(models: dict[str, ImageBind], modality: str, batch: int, rounds: int) -> dict[str, Any]:
    x = model_input(models["torch fp32"], modality, batch)
    items = x.shape[0]
    ref = models["torch fp32"].encode(modality, x)  # also the warm-up of torch fp32
    out: dict[str, Any] = {"modality": modality, "batch": items, "input_shape": list(x.shape), "variants": {}}
    for name, model in models.items():
        got = model.encode(modality, x)  # warm-up (onnxruntime's first run allocates)
        cos = torch.nn.functional.cosine_similarity(got, ref, dim=-1)
        out["variants"][name] = {"max_abs_diff": float((got - ref).abs().max()), "min_cosine": float(cos.min())}
    times: dict[str, list[float]] = {name: [] for name in models}
    for r in range(rounds):
        for name, model in models.items():
            start = time.perf_counter()
            model.encode(modality, x)
            times[name].append(time.perf_counter() - start)
        logger.info("round %d: %s", r, {k: round(v[-1], 3) for k, v in times.items()})
    for name in models:
        ratios = [t0 / t for t0, t in zip(times["torch fp32"], times[name])]
        out["variants"][name].update(
            items_per_s=items / statistics.median(times[name]),
            speedup_vs_torch_fp32=statistics.median(ratios),
            seconds=times[name],
        )
    return out


def text_length_check(models: dict[str, ImageBind]) -> dict[str, float]:
    """Full-size text: the ONNX graph at 77 tokens (untrimmed) vs trimmed vs torch."""
    ids = models["torch fp32"].tokenizer(texts_for(4))
    ref = models["torch fp32"].encode("text", ids)
    encoder = models["ort fp32"].encoder("text")
    encoder.trim_text = False
    full = models["ort fp32"].encode("text", ids)
    encoder.trim_text = True
    return {"untrimmed_77_max_abs_diff": float((full - ref).abs().max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--onnx", required=True, help="export folder with float32 and int8 graphs")
    parser.add_argument("--modality", required=True, choices=sorted(DEFAULT_BATCH))
    parser.add_argument("--batch", type=int)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    models = load_variants(args.checkpoint, args.onnx, args.modality)
    result = measure(models, args.modality, args.batch or DEFAULT_BATCH[args.modality], args.rounds)
    result["threads"] = torch.get_num_threads()
    if args.modality == "text":
        result.update(text_length_check(models))
    for name, v in result["variants"].items():
        logger.info("%-10s %8.2f items/s  x%.2f  max|d| %.2e  min cos %.5f", name, v["items_per_s"],
                    v["speedup_vs_torch_fp32"], v["max_abs_diff"], v["min_cosine"])
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
