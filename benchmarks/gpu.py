#!/usr/bin/env python
"""GPU throughput of the SDK's encoders in bfloat16 against the compute bound.

    python benchmarks/gpu.py [--checkpoint DIR] [--modalities vision text audio] [--batch 128]
        [--dtype bfloat16] [--compile none default reduce-overhead] [--peak-tflops 790] [--out gpu.json]

Without ``--checkpoint`` the full-size ``imagebind_huge`` is built with random weights
directly on the device (speed does not depend on the values; nothing to download or
write). Each (modality, compile mode) is timed after warm-up with CUDA
synchronisation: items/s, achieved TFLOP/s from the analytic FLOP count of the
encoder, and the share of ``--peak-tflops`` (the issue's H100 figure: 790 dense
bf16 TFLOP/s, so vision at ~335 GFLOP/image is bound at ~2,350 images/s).

``--device cpu --dtype float32 --batch 2 --config tiny`` is a smoke run anywhere.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from imagebind_sdk import ImageBind, ImageBindConfig
from imagebind_sdk.model import ImageBindModel

CAPTION_TOKENS = 14  # a typical short caption, end-of-text included
TINY_CONFIG = Path(__file__).resolve().parents[1].parent / "shared" / "golden" / "tiny" / "config.json"


def tokens_per_item(config: ImageBindConfig, modality: str) -> tuple[int, int]:
    """(query tokens L, key tokens L') of one item's trunk."""
    if modality == "vision":
        kt, kh, kw = config.kernel_size
        n = (config.video_frames // kt) * (224 // kh) * (224 // kw) + 1
        return n, n
    if modality == "text":
        return CAPTION_TOKENS, CAPTION_TOKENS
    if modality == "audio":
        k, s = config.audio_kernel_size, config.audio_stride
        n = ((config.audio_num_mel_bins - k) // s + 1) * ((config.audio_target_len - k) // s + 1) + 1
        return n, n + 1  # + the learned bias key/value token
    raise ValueError(f"no FLOP model for {modality!r}")


def flops_per_item(config: ImageBindConfig, modality: str) -> float:
    """Multiply-adds x 2 of the trunk (QKV, projection, MLP, attention) and the head."""
    length, keys = tokens_per_item(config, modality)
    dim, blocks = config.embed_dim(modality), config.num_blocks(modality)
    linear = 24 * length * dim * dim  # qkv 6Ld², proj 2Ld², mlp 16Ld²
    attention = 4 * length * keys * dim  # QKᵀ and AV
    return blocks * (linear + attention) + 2 * dim * config.out_embed_dim


def make_input(config: ImageBindConfig, modality: str, batch: int, device: torch.device) -> torch.Tensor:
    if modality == "text":
        ids = torch.randint(1, 49406, (batch, CAPTION_TOKENS), device=device)
        ids[:, 0], ids[:, -1] = 49406, 49407  # start / end of text
        return ids
    shape = {"vision": (3, 224, 224), "audio": (1, config.audio_num_mel_bins, config.audio_target_len)}[modality]
    return torch.randn(batch, *shape, device=device)


def build(args: argparse.Namespace, compile_mode: str) -> ImageBind:
    kwargs: dict[str, Any] = {"compile": False if compile_mode == "none" else compile_mode}
    if args.checkpoint:
        return ImageBind.load(args.checkpoint, modalities=args.modalities, device=args.device, dtype=args.dtype, **kwargs)
    config = ImageBindConfig.from_json(TINY_CONFIG) if args.config == "tiny" else ImageBindConfig.preset("imagebind_huge")
    device = torch.device(args.device)
    with torch.device(device), torch.no_grad():
        model = ImageBindModel(config, args.modalities)
        for param in model.parameters():  # some are torch.empty: never time garbage (NaN/inf)
            param.normal_(0.0, 0.02)
        model = model.to(getattr(torch, args.dtype)).eval()
    for encoder in model.encoders.values():
        if compile_mode != "none":
            encoder.compile(mode=compile_mode)
    return ImageBind(model, device=device, source="random " + args.config)


def time_encoder(model: ImageBind, modality: str, x: torch.Tensor, warmup: int, runs: int) -> list[float]:
    encoder = model.encoder(modality)
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.inference_mode():
        if x.is_floating_point():
            x = x.to(model.dtype)
        for _ in range(warmup):
            encoder(x)
        sync()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            encoder(x)
            sync()
            times.append(time.perf_counter() - start)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="load this checkpoint instead of random full-size weights")
    p.add_argument("--config", choices=("huge", "tiny"), default="huge", help="random model size (no --checkpoint)")
    p.add_argument("--modalities", nargs="+", default=["vision", "text", "audio"], choices=("vision", "text", "audio"))
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float16", "float32"))
    p.add_argument("--compile", nargs="+", default=["none", "default"], help="none, default, reduce-overhead, ...")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--peak-tflops", type=float, default=790.0)
    p.add_argument("--out", default=None)
    args = p.parse_args()

    rows = []
    for compile_mode in args.compile:
        model = build(args, compile_mode)
        for modality in args.modalities:
            x = make_input(model.config, modality, args.batch, torch.device(args.device))
            times = time_encoder(model, modality, x, args.warmup, args.runs)
            per_s = args.batch / statistics.median(times)
            tflops = per_s * flops_per_item(model.config, modality) / 1e12
            rows.append({"modality": modality, "compile": compile_mode, "batch": args.batch, "items_per_s": per_s,
                         "tflops": tflops, "share_of_peak": tflops / args.peak_tflops, "times_s": times})
        del model
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    print(f"{name}  torch {torch.__version__}  {args.dtype}  batch {args.batch}  peak {args.peak_tflops:g} TFLOP/s")
    print(f"{'modality':<8} {'compile':<16} {'items/s':>10} {'TFLOP/s':>9} {'of peak':>8}")
    for r in rows:
        print(f"{r['modality']:<8} {r['compile']:<16} {r['items_per_s']:>10.1f} {r['tflops']:>9.1f} {r['share_of_peak']:>8.1%}")
    if args.out:
        Path(args.out).write_text(json.dumps({"device": name, "args": vars(args), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
