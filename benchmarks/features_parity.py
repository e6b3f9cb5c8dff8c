"""``encode(output="tokens" | "pooled")`` against the reference model's intermediate outputs.

    PYTHONPATH=src:<deps> python benchmarks/features_parity.py --checkpoint /tmp/ib-huge \
        --reference CHECKOUT --out benchmarks/results/features_parity_huge.json

CHECKOUT is a checkout of facebookresearch/ImageBind (the golden's commit 53680b0); its
model code needs timm >= 0.9, einops and iopath on ``<deps>``. Its package ``__init__``
imports the data loaders (pytorchvideo ...), which are not needed here, so the package is
registered without running that file. The reference model is built by its own
constructor from ``config.json`` and given the checkpoint's ``model.pth``; the SDK loads
the same folder. For each modality the same seeded input goes through the reference's
preprocessor -> trunk -> head norm (tokens; the head's selected token for pooled) and
through ``ImageBind.encode``; reported: max |difference| and the minimum cosine per row.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch

from imagebind_sdk import ImageBind

BATCH = 2


def reference_model(reference: Path, checkpoint: Path) -> torch.nn.Module:
    package = types.ModuleType("imagebind")
    package.__path__ = [str(reference / "imagebind")]
    sys.modules["imagebind"] = package
    from imagebind.models.imagebind_model import ImageBindModel  # noqa: PLC0415

    model = ImageBindModel(**json.loads((checkpoint / "config.json").read_text())).eval()
    model.load_state_dict(torch.load(checkpoint / "model.pth", map_location="cpu", weights_only=True))
    return model


def reference_features(model: torch.nn.Module, modality: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens after the head's norm, pooled token), clips flattened."""
    if x.ndim >= 5 and modality != "vision":
        x = x.reshape(-1, *x.shape[2:])
    value = model.modality_preprocessors[modality](**{modality: x})
    tokens = model.modality_trunks[modality](**value["trunk"])
    head = model.modality_heads[modality]
    if modality == "text":
        normed = head.proj[0](tokens)
        return normed, normed[torch.arange(normed.shape[0]), value["head"]["seq_len"]]
    normed = head[0](tokens)
    return normed, normed[:, 0]


def inputs(sdk: ImageBind) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    config = sdk.config
    return {
        "vision": torch.randn(BATCH, 3, 224, 224, generator=g),
        "text": sdk.tokenizer(["a dog barking at the mailman", "rain on a tin roof"]),
        "audio": torch.randn(BATCH, 1, config.audio_num_mel_bins, config.audio_target_len, generator=g),
        "depth": torch.randn(BATCH, 1, 224, 224, generator=g),
        "thermal": torch.randn(BATCH, 1, 224, 224, generator=g),
        "imu": torch.randn(BATCH, 6, 2000, generator=g),
    }


def compare(a: torch.Tensor, b: torch.Tensor) -> dict[str, float]:
    a, b = a.reshape(len(b), -1).double(), b.reshape(len(b), -1).double()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    return {"max_abs_diff": float((a - b).abs().max()), "min_cosine": float(cos.min())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--reference", required=True, type=Path)
    parser.add_argument("--modalities", nargs="+", default=["vision", "text", "audio", "depth", "thermal", "imu"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    sdk = ImageBind.load(args.checkpoint, modalities=args.modalities, device="cpu")
    ref = reference_model(args.reference, args.checkpoint)
    data = inputs(sdk)
    results = {}
    with torch.no_grad():
        for m in args.modalities:
            ref_tokens, ref_pooled = reference_features(ref, m, data[m])
            results[m] = {"tokens": compare(sdk.encode(m, data[m], output="tokens"), ref_tokens),
                          "pooled": compare(sdk.encode(m, data[m], output="pooled"), ref_pooled)}
            print(m, results[m], flush=True)
    if args.out:
        args.out.write_text(json.dumps({"checkpoint": str(args.checkpoint), "batch": BATCH, "results": results}, indent=1))


if __name__ == "__main__":
    main()
