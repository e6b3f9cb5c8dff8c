"""Quickstart: the official ImageBind README scenario with imagebind-sdk.

Embeds three texts, three images and three sounds, then prints the Vision x Text,
Audio x Text and Vision x Audio softmax matrices exactly as the official README
computes them.

    python examples/quickstart.py [ASSETS_DIR]

The checkpoint comes from $IMAGEBIND_CHECKPOINT (default: imagebind-huge, downloaded
once into the Hugging Face cache); sample files from ASSETS_DIR, else
$IMAGEBIND_ASSETS, else ../shared/assets next to the repository. With the real
weights the matrices match the official README (see docs/cli.md); with a tiny test
checkpoint the numbers are meaningless but the script runs the same way.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from imagebind_sdk import ImageBind

REPO = Path(__file__).resolve().parents[1]
NAMES = ("dog", "car", "bird")


def assets_dir() -> Path:
    """ASSETS_DIR argument, else $IMAGEBIND_ASSETS, else ../shared/assets."""
    path = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("IMAGEBIND_ASSETS", REPO.parent / "shared" / "assets"))
    if not path.is_dir():
        sys.exit(f"sample assets not found at {path}; pass a directory or set IMAGEBIND_ASSETS")
    return path


def print_matrix(title: str, matrix: torch.Tensor, rows: list[str], cols: list[str], fmt: str = ".4e") -> None:
    """A labelled matrix; by default values as torch prints them (9.9761e-01)."""
    first = max(len(r) for r in rows)
    widths = [max(len(c), 11) for c in cols]
    print(f"\n{title}")
    print(" " * first + "  " + "  ".join(f"{c:>{w}}" for c, w in zip(cols, widths)))
    for label, row in zip(rows, matrix.tolist()):
        print(f"{label:<{first}}  " + "  ".join(f"{v:>{w}{fmt}}" for v, w in zip(row, widths)))


def main() -> None:
    assets = assets_dir()
    checkpoint = os.environ.get("IMAGEBIND_CHECKPOINT", "imagebind-huge")
    model = ImageBind.load(checkpoint, modalities=["vision", "text", "audio"])
    print(model)

    texts = ["A dog.", "A car", "A bird"]
    images = [assets / f"{name}_image.jpg" for name in NAMES]
    sounds = [assets / f"{name}_audio.wav" for name in NAMES]
    out = model.embed(text=texts, vision=images, audio=sounds)

    # The reference model returns normalize(x) * logit_scale per modality (vision 1,
    # text ~100, audio 20), and the official README applies the softmax to products
    # of those outputs. This SDK returns unit vectors, so multiply each by its
    # modality's logit scale to get the reference outputs and the README's numbers.
    ref = {m: out[m] * model.logit_scale(m) for m in ("vision", "text", "audio")}
    image_names = [p.name for p in images]
    sound_names = [p.name for p in sounds]

    print_matrix("Vision x Text:", torch.softmax(ref["vision"] @ ref["text"].T, dim=-1), image_names, texts)
    print_matrix("Audio x Text:", torch.softmax(ref["audio"] @ ref["text"].T, dim=-1), sound_names, texts)
    print_matrix("Vision x Audio:", torch.softmax(ref["vision"] @ ref["audio"].T, dim=-1), image_names, sound_names)

    # Plain cosine similarities need no scale: the rows are unit vectors.
    print_matrix("Cosine, Vision x Text:", out.vision @ out.text.T, image_names, texts, fmt=".4f")


if __name__ == "__main__":
    main()
