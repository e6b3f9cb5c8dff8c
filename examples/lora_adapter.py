"""A LoRA adapter on a base checkpoint: similarities before and after, switched in place.

    python examples/lora_adapter.py [ADAPTER_DIR]

ImageBind-LoRA (github.com/fabawi/ImageBind-LoRA) saves adapters as
``imagebind-lora-{modality}{postfix}.safetensors`` (plus optional heads/logit scales).
Without ADAPTER_DIR this example writes a random rank-4 adapter for the vision and
text trunks of the loaded checkpoint (``imagebind_sdk.weights.adapters.save_adapter``), so it
runs anywhere; with a real fine-tune the "after" matrix is the fine-tuned one. The
checkpoint comes from $IMAGEBIND_CHECKPOINT (default: imagebind-huge), the images from
$IMAGEBIND_ASSETS (default: ../shared/assets next to the repository).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import torch

from imagebind_sdk import ImageBind
from imagebind_sdk.weights.adapters import save_adapter

REPO = Path(__file__).resolve().parents[1]
LABELS = ["a dog", "a car", "a bird"]
IMAGES = ["dog_image.jpg", "car_image.jpg", "bird_image.jpg"]
RANK = 4


def random_adapter(model: ImageBind, folder: Path) -> Path:
    """A rank-4 adapter for every block of the vision and text trunks (seeded)."""
    generator = torch.Generator().manual_seed(0)
    pairs = {}
    for modality in ("vision", "text"):
        width, depth = model.config.embed_dim(modality), model.config.num_blocks(modality)
        pairs[modality] = [(torch.randn(RANK, width, generator=generator) * 0.05,
                            torch.randn(width, RANK, generator=generator) * 0.05) for _ in range(depth)]
    save_adapter(folder, pairs, postfix="_example")
    return folder


def show(title: str, model: ImageBind, images: list[Path]) -> torch.Tensor:
    out = model.embed(text=LABELS, vision=[str(p) for p in images])
    sims = out.vision @ out.text.T
    print(f"{title} (adapter: {model.active_adapter})")
    for path, row in zip(images, sims):
        print(f"  {path.name:>16}: " + "  ".join(f"{label} {s:+.3f}" for label, s in zip(LABELS, row.tolist())))
    return sims


def main() -> None:
    assets = Path(os.environ.get("IMAGEBIND_ASSETS", REPO.parent / "shared" / "assets"))
    images = [assets / name for name in IMAGES]
    model = ImageBind.load(os.environ.get("IMAGEBIND_CHECKPOINT", "imagebind-huge"), modalities=["vision", "text"])
    before = show("Before", model, images)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(sys.argv[1]) if len(sys.argv) > 1 else random_adapter(model, Path(tmp))
        name = model.load_adapter(folder)  # becomes active; the base stays loaded
        after = show("After", model, images)
    print(f"largest change in a similarity: {float((after - before).abs().max()):.3f}")
    model.set_adapter(None)  # back to the base, nothing reloaded
    again = show("Base again", model, images)
    print(f"base restored exactly: {bool(torch.equal(again, before))}; loaded adapters: {model.adapters} ({name})")


if __name__ == "__main__":
    main()
