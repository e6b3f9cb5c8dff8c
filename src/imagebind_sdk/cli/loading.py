"""Which checkpoint a command uses, and loading it with the global options."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("imagebind_sdk.cli")

DEFAULT_CHECKPOINT = "imagebind-huge"
CHECKPOINT_ENV = "IMAGEBIND_CHECKPOINT"


def checkpoint_of(args: argparse.Namespace) -> str:
    """The checkpoint to use: --checkpoint, else $IMAGEBIND_CHECKPOINT, else imagebind-huge."""
    return args.checkpoint or os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINT


def local_files_only(args: argparse.Namespace) -> bool | None:
    """True with --offline; otherwise None (huggingface_hub's HF_HUB_OFFLINE decides)."""
    return True if args.offline else None


def load_model(args: argparse.Namespace, modalities: Sequence[str]) -> Any:
    """Load the checkpoint with only the encoders in ``modalities``."""
    from ..api import ImageBind

    wanted = list(dict.fromkeys(modalities))
    logger.info("loading %s (encoders: %s)", checkpoint_of(args), ", ".join(wanted))
    model = ImageBind.load(
        checkpoint_of(args), modalities=wanted, device=args.device,
        dtype=args.dtype, local_files_only=local_files_only(args),
        quantize=getattr(args, "quantize", None),
    )
    logger.info("loaded %r", model)
    return model
