"""``imagebind-sdk export-onnx``: write ONNX graphs of the encoders (see :mod:`imagebind_sdk.export.onnx`)."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from ..model.config import MODALITIES
from .loading import load_model
from .errors import UsageError

logger = logging.getLogger(__name__)

DEFAULT_MODALITIES = "text,vision,audio"

DESCRIPTION = """\
Export encoders of the checkpoint (--checkpoint) to ONNX in OUT_DIR: one
<modality>.onnx per encoder (dynamic batch axis; text takes 1-77 token ids),
config.json and onnx.json (opset, logit scales). With the global --quantize int8
also <modality>.int8.onnx (onnxruntime dynamic int8). Load the folder with
ImageBind.load(OUT_DIR, backend="onnxruntime").
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``export-onnx``."""
    p = subparsers.add_parser(
        "export-onnx", parents=parents, help="export encoders to ONNX for onnxruntime",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  imagebind-sdk export-onnx --modalities text,vision,audio ib-onnx/\n",
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="directory to write")
    p.add_argument("--modalities", metavar="LIST", default=DEFAULT_MODALITIES,
                   help=f"comma-separated encoders to export (default: {DEFAULT_MODALITIES}; all: "
                   f"{','.join(MODALITIES)})")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Load the float32 encoders, export them, print the files written."""
    from ..export.onnx import export_onnx

    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    unknown = [m for m in modalities if m not in MODALITIES]
    if not modalities or unknown:
        raise UsageError(f"--modalities: unknown {unknown or 'empty list'}; choose from {','.join(MODALITIES)}")
    if args.device not in (None, "cpu") or args.dtype not in (None, "float32", "fp32"):
        raise UsageError("export-onnx exports float32 CPU graphs; leave --device and --dtype unset")
    if getattr(args, "adapter", None):
        raise UsageError("export-onnx exports the base checkpoint: LoRA adapters are not exported; drop --adapter")
    # --quantize int8 means "also write int8 graphs": the exported torch model stays float32.
    model = load_model(argparse.Namespace(**{**vars(args), "quantize": None, "device": "cpu", "backend": "torch"}),
                       modalities)
    out = export_onnx(model, args.out_dir, modalities, quantize=args.quantize)
    for path in sorted(out.iterdir()):
        print(path)
    return 0
