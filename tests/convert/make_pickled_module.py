"""Pickle a whole reference ImageBindModel (tiny golden weights) as fine-tunes ship them.

    PYTHONPATH=<deps> python tests/convert/make_pickled_module.py --reference CHECKOUT [--golden ../shared/golden]

CHECKOUT is a checkout of facebookresearch/ImageBind (commit 53680b0, the golden's);
its model code needs timm >= 0.9, einops and iopath. Its package ``__init__`` also
imports the data loaders (pytorchvideo ...), which a model pickle does not need, so the
package is registered without running that file. Nothing of its code is copied: the
model is built by its own constructor, given the tiny golden weights, and written with
``torch.save(model)`` (whole module, classes named ``imagebind.models...``), as
VideoBind-style fine-tunes are distributed. Output: ``tests/convert/data/tiny_module.pt``.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import torch
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference", required=True, type=Path)
    parser.add_argument("--golden", type=Path, default=HERE.parents[2] / "shared" / "golden")
    args = parser.parse_args()
    package = types.ModuleType("imagebind")
    package.__path__ = [str(args.reference / "imagebind")]
    sys.modules["imagebind"] = package
    from imagebind.models.imagebind_model import ImageBindModel  # noqa: PLC0415

    config = json.loads((args.golden / "tiny" / "config.json").read_text())
    model = ImageBindModel(**config).eval()
    model.load_state_dict(load_file(str(args.golden / "tiny" / "model.safetensors")), strict=True)
    (HERE / "data").mkdir(exist_ok=True)
    torch.save(model, HERE / "data" / "tiny_module.pt")
    print("wrote", HERE / "data" / "tiny_module.pt")


if __name__ == "__main__":
    main()
