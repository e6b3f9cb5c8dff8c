"""Shared pieces of the command line: global options, input flags, model loading, tables.

Input flags (``--text``, ``--image``/``--vision``, ``--audio``, ...) are collected in
command-line order as ``(kind, value)`` pairs; :func:`expand_inputs` groups them by
kind (first-seen order) and expands directories and globs into sorted file lists.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from ..kinds import GLOB_CHARS, INPUT_KINDS, KIND_OF_EXTENSION
from ..dtypes import DTYPE_NAMES, as_dtype

logger = logging.getLogger("imagebind_sdk.cli")

PROG = "imagebind-sdk"
DEFAULT_CHECKPOINT = "imagebind-huge"
CHECKPOINT_ENV = "IMAGEBIND_CHECKPOINT"
# Flags of each input kind (the first one is the canonical spelling).
KIND_FLAGS = {
    "text": ("--text",),
    "vision": ("--image", "--vision"),
    "video": ("--video",),
    "audio": ("--audio",),
    "depth": ("--depth",),
    "thermal": ("--thermal",),
    "imu": ("--imu",),
}
LABEL_WIDTH = 24


class UsageError(Exception):
    """A command-line usage problem found after parsing (exit status 2)."""


def display_name(kinds: str) -> str:
    """"vision+audio" -> "Vision+Audio", "imu" -> "IMU" (table titles)."""
    return "+".join("IMU" if k == "imu" else k.title() for k in kinds.split("+"))


# -- global options ----------------------------------------------------------
def add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before the command (and, with ``suppress``, after it too).

    On subcommand parsers the defaults are ``SUPPRESS`` so that an option given
    before the command is not overwritten by the subcommand's default.
    """

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--checkpoint", metavar="SOURCE", default=default(None),
        help=f"alias (imagebind-huge), Hub repo id, directory or weights file "
        f"(default: ${CHECKPOINT_ENV}, else {DEFAULT_CHECKPOINT})",
    )
    group.add_argument("--offline", action="store_true", default=default(False),
                       help="use local files and the Hugging Face cache only (no downloads)")
    group.add_argument("--device", default=default(None), help="torch device, e.g. cpu, cuda, cuda:1, mps "
                       "(default: CUDA, else MPS, else CPU)")
    group.add_argument("--dtype", choices=sorted(DTYPE_NAMES), default=default(None), metavar="DTYPE",
                       help="weights dtype: float32 (default), bfloat16 or float16 (aliases fp32, bf16, fp16, half)")
    group.add_argument("--quantize", choices=["int8"], default=default(None),
                       help="int8: dynamic int8 Linear layers, ~1.5-2x faster on CPU (CPU and float32 only)")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="show full tracebacks and debug logging")
    group.add_argument("-v", "--verbose", action="store_true", default=default(False),
                       help="log progress information (INFO) on stderr")


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


@contextlib.contextmanager
def offline_env(enabled: bool) -> Iterator[None]:
    """Set HF_HUB_OFFLINE=1 for the duration of a command when --offline is given."""
    if not enabled:
        yield
        return
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old


# -- input flags ---------------------------------------------------------------
class InputAction(argparse.Action):
    """Append ``(kind, value)`` to a list attribute, keeping command-line order."""

    def __init__(self, option_strings: Sequence[str], dest: str, kind: str = "", **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items += [(self.kind, value) for value in values]
        setattr(namespace, self.dest, items)


def add_input_flags(
    parser: argparse.ArgumentParser,
    kinds: Sequence[str] = INPUT_KINDS,
    *,
    dest: str = "inputs",
    prefix: str = "",
    title: str = "inputs (each takes one or more values and is repeatable; a directory or glob expands "
    "to its files, sorted)",
) -> None:
    """Add ``--text``, ``--image``/``--vision``, ... flags collecting into ``dest``."""
    group = parser.add_argument_group(title)
    for kind in kinds:
        flags = [f"--{prefix}{flag[2:]}" for flag in KIND_FLAGS[kind]]
        what = "a text" if kind == "text" else f"{kind} file, directory or glob"
        group.add_argument(*flags, dest=dest, action=InputAction, kind=kind, nargs="+",
                           metavar="TEXT" if kind == "text" else "PATH", help=f"{what} to embed")
    parser.set_defaults(**{dest: []})


def _extensions(kind: str) -> tuple[str, ...]:
    """File extensions collected from a directory for an input kind."""
    file_kind = "vision" if kind in ("depth", "thermal") else kind
    return tuple(ext for ext, k in KIND_OF_EXTENSION.items() if k == file_kind)


def _walk(root: str, kind: str) -> list[str]:
    """Files of ``kind`` under ``root`` (recursive, hidden entries skipped), sorted."""
    from ..bulk import walk

    exts = _extensions(kind)
    found = [path for path in walk(root, recursive=True) if os.path.splitext(path)[1].lower() in exts]
    if not found:
        raise FileNotFoundError(f"no {kind} files ({', '.join(exts)}) in directory {root}")
    return sorted(found)


def expand_value(kind: str, value: str) -> list[str]:
    """One flag value -> items: text as is; a directory or glob -> sorted files; else the path."""
    if kind == "text":
        return [value]
    if os.path.isdir(value):
        return _walk(value, kind)
    if not os.path.exists(value) and GLOB_CHARS & set(value):
        matches = sorted(p for p in glob.glob(value, recursive=True) if os.path.isfile(p))
        if not matches:
            raise FileNotFoundError(f"no files match {value!r} (--{kind})")
        return matches
    if "://" not in value and not os.path.exists(value):
        raise FileNotFoundError(f"no such file: {value}")
    return [value]


def expand_inputs(pairs: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """``(kind, value)`` pairs -> kind -> items, kinds in first-seen order."""
    grouped: dict[str, list[str]] = {}
    for kind, value in pairs:
        grouped.setdefault(kind, []).extend(expand_value(kind, value))
    return grouped


def count_items(inputs: dict[str, list[str]]) -> int:
    return sum(len(v) for v in inputs.values())


def read_list(values: Sequence[str], *, split_commas: bool) -> list[str]:
    """Values of --labels/--templates: ``@file`` (one entry a line, ``#`` comments) or literals."""
    out: list[str] = []
    for value in values:
        if value.startswith("@"):
            with open(value[1:], encoding="utf-8") as f:
                lines = [line.strip() for line in f]
            out += [line for line in lines if line and not line.startswith("#")]
        elif split_commas:
            out += [part.strip() for part in value.split(",") if part.strip()]
        else:
            out.append(value)
    return out


# -- output --------------------------------------------------------------------
def short_label(kind: str, source: str, width: int = LABEL_WIDTH) -> str:
    """A table label: a text truncated to ``width``, or a file's basename."""
    text = source if kind == "text" else (os.path.basename(source.rstrip("/")) or source)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Sequence[str], cols: Sequence[str], matrix: Sequence[Sequence[float]],
                 fmt: str = "{:.4f}") -> str:
    """A plain-text matrix with row labels on the left and column labels on top."""
    cells = [[fmt.format(v) for v in row] for row in matrix]
    first = max([len(r) for r in rows] + [0])
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(cols)]
    lines = [" " * first + "  " + "  ".join(c.rjust(w) for c, w in zip(cols, widths))]
    for label, row in zip(rows, cells):
        lines.append(label.ljust(first) + "  " + "  ".join(v.rjust(w) for v, w in zip(row, widths)))
    return "\n".join(lines)


def print_json(obj: Any, stream: TextIO | None = None) -> None:
    """Pretty JSON on stdout."""
    print(json.dumps(obj, indent=2, ensure_ascii=False), file=stream or sys.stdout)


def add_embed_options(parser: argparse.ArgumentParser, *, on_error: bool = True) -> None:
    """--batch-size and (optionally) --on-error."""
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                        help="items per forward pass (default: 32)")
    if on_error:
        parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                            help="on an unreadable input: stop with an error (raise, default) "
                            "or leave it out and report it on stderr (skip)")


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an int >= 0."""
    if text.strip() == "0":
        return 0
    return positive_int(text)
