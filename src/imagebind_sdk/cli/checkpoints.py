"""``imagebind-sdk convert``, ``info`` and ``download``: checkpoint housekeeping."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from .loading import checkpoint_of, local_files_only
from .printing import print_json

CONVERT_DESCRIPTION = """\
Convert a checkpoint (official .pth, .safetensors, a directory, an alias or a Hub
repo id) into a directory with config.json and model.safetensors, optionally cast
(--dtype) and split into one shard per modality (--shard, with
model.safetensors.index.json), so that loading a few modalities reads only their
shards.
"""

INFO_DESCRIPTION = """\
Describe a checkpoint: where its files are, its config, the parameter count of each
modality's encoder, its dtype and embedding size. Loads every encoder on the CPU.
"""

DOWNLOAD_DESCRIPTION = """\
Fetch a checkpoint into the Hugging Face cache ahead of time, so that later runs
work offline (--offline or HF_HUB_OFFLINE=1). With --offline it only checks that
the checkpoint is already cached. Honours HF_HOME / HF_HUB_CACHE and HF_TOKEN.
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``convert``, ``info`` and ``download``."""
    fmt = argparse.RawDescriptionHelpFormatter
    c = subparsers.add_parser("convert", parents=parents, help="convert a checkpoint to (sharded) safetensors",
                              description=CONVERT_DESCRIPTION, formatter_class=fmt,
                              epilog="example:\n  imagebind-sdk convert imagebind_huge.pth ./imagebind-huge-bf16 "
                              "--dtype bfloat16 --shard\n")
    c.add_argument("source", metavar="IN", help="checkpoint file, directory, alias or Hub repo id")
    c.add_argument("out_dir", metavar="OUT_DIR", help="directory to write")
    c.add_argument("--shard", action="store_true", help="one safetensors shard per modality")
    c.add_argument("--overwrite", action="store_true", help="replace files already in OUT_DIR")
    c.add_argument("--modalities", metavar="LIST",
                   help="comma-separated encoders to keep, e.g. vision,text (default: all)")
    c.add_argument("--config", metavar="CONFIG_JSON",
                   help="config.json for a pickled state dict that cannot say its head counts")
    c.set_defaults(func=run_convert)

    i = subparsers.add_parser("info", parents=parents, help="describe a checkpoint (files, config, parameters)",
                              description=INFO_DESCRIPTION, formatter_class=fmt)
    i.add_argument("source", nargs="?", metavar="CHECKPOINT", help="checkpoint (default: --checkpoint)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=run_info)

    d = subparsers.add_parser("download", parents=parents, help="fetch a checkpoint into the Hugging Face cache",
                              description=DOWNLOAD_DESCRIPTION, formatter_class=fmt,
                              epilog="example:\n  imagebind-sdk download imagebind-huge\n")
    d.add_argument("source", nargs="?", metavar="ALIAS_OR_REPO", help="alias or Hub repo id (default: --checkpoint)")
    d.add_argument("--revision", help="branch, tag or commit (default: the registry's pinned revision, else main)")
    d.add_argument("--cache-dir", metavar="DIR", help="cache directory (default: the Hugging Face cache)")
    d.set_defaults(func=run_download)


def run_convert(args: argparse.Namespace) -> int:
    """Call convert.convert_checkpoint and list the files written."""
    from ..weights.convert import convert_checkpoint

    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()] if args.modalities else None
    files = convert_checkpoint(args.source, args.out_dir, dtype=args.dtype, shard=args.shard,
                               overwrite=args.overwrite, modalities=modalities,
                               local_files_only=local_files_only(args), config=args.config)
    for path in files:
        print(path)
    return 0


def _size(paths: list[Path]) -> int:
    """Bytes of the weight files, shards of an index included."""
    total = 0
    for path in paths:
        if path.name.endswith(".index.json"):
            import json

            shards = set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values())
            total += sum((path.parent / s).stat().st_size for s in shards if (path.parent / s).exists())
        elif path.exists():
            total += path.stat().st_size
    return total


def _describe(args: argparse.Namespace, source: str) -> dict[str, Any]:
    """Everything `info` reports, as a JSON-ready dict."""
    from ..weights import hub
    from ..api import ImageBind

    resolved = hub.resolve(source, local_files_only=local_files_only(args))
    model = ImageBind.load(source, device="cpu", dtype=args.dtype,
                           local_files_only=local_files_only(args))
    params = {m: sum(p.numel() for p in model.model.encoders[m].parameters()) for m in model.modalities}
    return {
        "source": resolved.source,
        "files": [str(p) for p in resolved.weight_files],
        "size_bytes": _size(resolved.weight_files),
        **({"hub": resolved.details} if resolved.details else {}),
        "dtype": str(model.dtype).removeprefix("torch."),
        "embedding_dim": model.embedding_dim,
        "parameters": {**params, "total": sum(params.values())},
        "logit_scales": {m: model.logit_scale(m) for m in model.modalities},
        "config": model.config.to_dict(),
    }


def run_info(args: argparse.Namespace) -> int:
    """Print the checkpoint description."""
    info = _describe(args, args.source or checkpoint_of(args))
    if args.json:
        print_json(info)
        return 0
    print(f"source:         {info['source']}")
    for n, f in enumerate(info["files"]):
        print(f"{'files:' if n == 0 else '':<16}{f}")
    print(f"size:           {info['size_bytes'] / 1e6:,.1f} MB")
    for key, value in info.get("hub", {}).items():
        print(f"{key + ':':<16}{value}")
    print(f"dtype:          {info['dtype']}")
    print(f"embedding dim:  {info['embedding_dim']}")
    print("parameters:")
    for m, n in info["parameters"].items():
        scale = info["logit_scales"].get(m)
        print(f"  {m:<10}{n:>15,}" + (f"   logit scale {scale:g}" if scale is not None else ""))
    print("config:")
    for key, value in info["config"].items():
        print(f"  {key}: {value}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    """hub.resolve with downloads allowed (or cache-only with --offline)."""
    from ..weights import hub

    source = args.source or checkpoint_of(args)
    if Path(os.path.expanduser(source)).exists():
        print(f"{source} is a local checkpoint; nothing to download")
        return 0
    resolved = hub.resolve(source, revision=args.revision, cache_dir=args.cache_dir,
                           local_files_only=True if args.offline else False, suggest_download=False)
    print(f"{resolved.source} is in the cache ({_size(resolved.weight_files) / 1e6:,.1f} MB):")
    for path in resolved.weight_files:
        print(f"  {path}")
    return 0
