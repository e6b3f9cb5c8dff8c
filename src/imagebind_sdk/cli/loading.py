"""Which checkpoint a command uses, and loading it with the global options."""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections.abc import Sequence
from typing import Any

from .errors import CliError
from .printing import error_line, expected_errors

logger = logging.getLogger("imagebind_sdk.cli")

DEFAULT_CHECKPOINT = "imagebind-huge"
CHECKPOINT_ENV = "IMAGEBIND_CHECKPOINT"
ADAPTER_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def checkpoint_of(args: argparse.Namespace) -> str:
    """The checkpoint to use: --checkpoint, else $IMAGEBIND_CHECKPOINT, else imagebind-huge."""
    return args.checkpoint or os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINT


def local_files_only(args: argparse.Namespace) -> bool | None:
    """True with --offline; otherwise None (huggingface_hub's HF_HUB_OFFLINE decides)."""
    return True if args.offline else None


def check_device(name: str | None) -> None:
    """Fail in one line when --device names a device this machine does not have."""
    if name is None:
        return
    import torch

    device = torch.device(name)  # the syntax was checked by options.device_name
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            built = "" if torch.version.cuda else ", a build without CUDA"
            raise CliError(f"--device {name}: no CUDA device is available (torch {torch.__version__}{built}); "
                           "use --device cpu or leave --device out")
        if device.index is not None and device.index >= count:
            raise CliError(f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise CliError(f"--device {name}: MPS (Apple GPU) is not available here; use --device cpu")


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The global options that decide how a model is loaded (the keyword arguments of
    ``ImageBind.load`` and ``embed_dataset``): backend, device, dtype, quantize."""
    return {
        "backend": getattr(args, "backend", None) or "torch",
        "device": args.device,
        "dtype": args.dtype,
        "quantize": getattr(args, "quantize", None),
    }


def adapters_of(args: argparse.Namespace) -> list[tuple[str | None, str]] | None:
    """``--adapter [NAME=]SOURCE`` options as (name or None, source) pairs; None when none is given.
    ``NAME=`` is a name only when it looks like one and the whole value is not an existing path."""
    given = getattr(args, "adapter", None)
    if not given:
        return None
    pairs: list[tuple[str | None, str]] = []
    for value in given:
        name, sep, source = value.partition("=")
        if sep and ADAPTER_NAME.fullmatch(name) and source and not os.path.exists(value):
            pairs.append((name, source))
        else:
            pairs.append((None, value))
    return pairs


def load_model(args: argparse.Namespace, modalities: Sequence[str]) -> Any:
    """Load the checkpoint with only the encoders in ``modalities``."""
    from ..api import ImageBind

    check_device(args.device)
    wanted = list(dict.fromkeys(modalities))
    options = load_options(args)
    logger.info("loading %s (encoders: %s; backend: %s)", checkpoint_of(args), ", ".join(wanted), options["backend"])
    try:
        model = ImageBind.load(checkpoint_of(args), modalities=wanted, local_files_only=local_files_only(args),
                               adapters=adapters_of(args), **options)
    except Exception as exc:  # noqa: BLE001 - name the checkpoint when the library did not
        if isinstance(exc, expected_errors()):
            raise
        raise CliError(f"cannot load checkpoint {checkpoint_of(args)}: {error_line(exc)}") from exc
    logger.info("loaded %r", model)
    return model
