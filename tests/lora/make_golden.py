"""Make the LoRA golden with ImageBind-LoRA's own code (github.com/fabawi/ImageBind-LoRA).

    PYTHONPATH=<deps> python tests/lora/make_golden.py --lora-repo CHECKOUT [--golden ../shared/golden]

CHECKOUT is a checkout of ImageBind-LoRA (commit 232da92 was used); its imports (timm
0.6.7, einops, iopath) must be importable. Nothing of its code is copied here: this
script imports it, builds the reference model with the tiny golden config and weights,
wraps all six trunks with its ``apply_lora_modality_trunks`` (rank 4, the random
initialisation of its ``nn.Linear`` layers under a fixed seed), perturbs the heads and
logit scales, saves everything with its own ``save_lora_modality_trunks`` /
``save_module``, and records what its model returns. Output: ``tests/lora/data/``.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

HERE = Path(__file__).resolve().parent
MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")
POSTFIX = "_golden"
RANK = 4


def reference_features(model, modality: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens after the head's norm, pooled token) from the reference modules, clips flattened."""
    if x.ndim >= 5:
        x = x.reshape(-1, *x.shape[2:])
    value = model.modality_preprocessors[modality](**{modality: x})
    tokens = model.modality_trunks[modality](**value["trunk"])
    head = model.modality_heads[modality]
    if modality == "text":
        norm = head.proj[0]
        normed = norm(tokens)
        return normed, normed[torch.arange(normed.shape[0]), value["head"]["seq_len"]]
    normed = head[0](tokens)
    return normed, normed[:, 0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lora-repo", required=True, type=Path)
    parser.add_argument("--golden", type=Path, default=HERE.parents[2] / "shared" / "golden")
    args = parser.parse_args()
    sys.path.insert(0, str(args.lora_repo))
    from models import imagebind_model  # noqa: PLC0415 - ImageBind-LoRA's package
    from models import lora as LoRA  # noqa: N812, PLC0415

    torch.manual_seed(0)
    config = json.loads((args.golden / "tiny" / "config.json").read_text())
    model = imagebind_model.ImageBindModel(**config).eval()
    model.load_state_dict(load_file(str(args.golden / "tiny" / "model.safetensors")), strict=True)
    inputs = {m: load_file(str(args.golden / "embeddings.safetensors"))[f"input/{m}"] for m in MODALITIES}
    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for m in MODALITIES:
            out[f"base/tokens/{m}"], out[f"base/pooled/{m}"] = reference_features(model, m, inputs[m])

    data = HERE / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / "adapter").mkdir(parents=True)
    (data / "zero_text").mkdir(parents=True)

    # A text-only adapter whose w_b are zero: the low-rank path adds nothing, but the
    # wrapped trunk still drops the causal mask.
    zero = LoRA.apply_lora_modality_trunks(model.modality_trunks, rank=RANK, modality_names=["text"])
    for w_b in zero["text"].w_Bs:
        torch.nn.init.zeros_(w_b.weight)
    model.modality_trunks.update(zero)
    LoRA.save_lora_modality_trunks(model.modality_trunks, checkpoint_dir=str(data / "zero_text"), postfix=POSTFIX)
    with torch.no_grad():
        out["zero_text/output/text"] = model({"text": inputs["text"]})["text"]
    model.modality_trunks["text"] = zero["text"].lora_model
    for block in model.modality_trunks["text"].blocks:  # undo the surgery: the base text trunk again
        block.attn = block.prev_attn

    # The full adapter: all six trunks, random pairs, perturbed heads and logit scales.
    model.modality_trunks.update(LoRA.apply_lora_modality_trunks(model.modality_trunks, rank=RANK))
    with torch.no_grad():
        for name, param in model.modality_heads.named_parameters():
            param.add_(0.05 * torch.randn_like(param))
        for name, tensor in model.modality_postprocessors.state_dict(keep_vars=True).items():
            if name.endswith("log_logit_scale"):
                tensor.fill_(math.log(float(torch.empty(()).uniform_(4.0, 30.0))))
    LoRA.save_lora_modality_trunks(model.modality_trunks, checkpoint_dir=str(data / "adapter"), postfix=POSTFIX)
    imagebind_model.save_module(model.modality_heads, "heads", str(data / "adapter"), postfix=POSTFIX)
    imagebind_model.save_module(model.modality_postprocessors, "postprocessors", str(data / "adapter"), postfix=POSTFIX)
    with torch.no_grad():
        outputs = model(inputs)
    for m in MODALITIES:
        out[f"adapter/output/{m}"] = outputs[m]
    save_file({k: v.contiguous() for k, v in out.items()}, str(data / "expected.safetensors"))
    print("wrote", sorted(p.name for p in data.rglob("*") if p.is_file()))


if __name__ == "__main__":
    main()
