"""Depth, thermal and IMU: the modalities beyond images, text and sound.

    python examples/depth_thermal_imu.py [ASSETS_DIR]

Embeds ASSETS_DIR/depth/*.jpg, thermal/*.jpg and imu/*.csv (ASSETS_DIR defaults to
$IMAGEBIND_ASSETS, else ../shared/assets next to the repository), prints the shapes
and each input's cosine similarity to a few texts. See docs/preprocessing.md for how
these files are turned into model inputs. The checkpoint comes from
$IMAGEBIND_CHECKPOINT (default: imagebind-huge).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imagebind_sdk import ImageBind
from imagebind_sdk.vectors.ops import similarity

REPO = Path(__file__).resolve().parents[1]
TEXTS = ["an indoor room", "a street at night", "a person walking", "a person sitting"]
TITLES = {"depth": "Depth", "thermal": "Thermal", "imu": "IMU"}
PATTERNS = {"depth": "depth/*.jpg", "thermal": "thermal/*.jpg", "imu": "imu/*.csv"}


def inputs() -> dict[str, list[Path]]:
    """Modality -> sorted sample files."""
    assets = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("IMAGEBIND_ASSETS", REPO.parent / "shared" / "assets"))
    found = {kind: sorted(assets.glob(pattern)) for kind, pattern in PATTERNS.items()}
    missing = [f"{assets}/{PATTERNS[k]}" for k, files in found.items() if not files]
    if missing:
        sys.exit(f"no sample files at {', '.join(missing)}; pass ASSETS_DIR or set IMAGEBIND_ASSETS")
    return found


def main() -> None:
    files = inputs()
    model = ImageBind.load(os.environ.get("IMAGEBIND_CHECKPOINT", "imagebind-huge"),
                           modalities=["text", "depth", "thermal", "imu"])
    out = model.embed(text=TEXTS, **files)
    for kind in files:
        print(f"{kind}: {tuple(out[kind].shape)}, logit scale {model.logit_scale(kind):g}")

    width = max(len(t) for t in TEXTS)
    header = " " * 22 + "  ".join(f"{t[:width]:>{width}}" for t in TEXTS)
    for kind in files:
        print(f"\n{TITLES[kind]} x Text (cosine)\n{header}")
        scores = similarity(out[kind], out.text)
        for source, row in zip(out.sources[kind], scores.tolist()):
            print(f"{Path(source).name:<22}" + "  ".join(f"{v:>{width}.4f}" for v in row))


if __name__ == "__main__":
    main()
