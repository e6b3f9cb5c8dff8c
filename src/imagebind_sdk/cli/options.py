"""Command-line options: global options, input flags, shared embedding options, value types.

Input flags (``--text``, ``--image``/``--vision``, ``--audio``, ...) are collected in
command-line order as ``(kind, value)`` pairs; :mod:`.files` expands them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from ..weights.dtypes import DTYPE_NAMES
from ..kinds import INPUT_KINDS
from ..progress import CLI_HELP as PROGRESS_HELP
from .loading import CHECKPOINT_ENV, DEFAULT_CHECKPOINT
from .printing import PROG  # noqa: F401  (re-exported: the commands' prefix)

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


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors take two lines: its own short usage, then the error."""

    def error(self, message: str) -> Any:  # argparse's signature; never returns
        self.exit(2, f"{short_usage(self)}\n{self.prog}: error: {message}\n")


def _positional(action: argparse.Action) -> str:
    """How a positional argument reads in a usage line."""
    name = action.metavar or action.dest
    name = name[0] if isinstance(name, tuple) else name
    forms = {None: name, "?": f"[{name}]", "*": f"[{name} ...]", "+": f"{name} [{name} ...]",
             argparse.PARSER: f"{name} ..."}
    return forms.get(action.nargs, name)  # type: ignore[arg-type]


def short_usage(parser: argparse.ArgumentParser) -> str:
    """One usage line (argparse's full one spans many lines for commands with many options)."""
    words = [parser.prog, "[options]"]
    words += [_positional(a) for a in parser._actions if not a.option_strings]  # noqa: SLF001
    return f"usage: {' '.join(words)}  (`{parser.prog} --help` lists the options)"


def device_name(text: str) -> str:
    """argparse type: a torch device string (cpu, cuda, cuda:1, mps, ...); availability is checked at load."""
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a torch device; expected e.g. cpu, cuda, cuda:1 or mps") from None
    return text


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
    group.add_argument("--device", type=device_name, default=default(None), help="torch device, e.g. cpu, cuda, cuda:1, mps "
                       "(default: CUDA, else MPS, else CPU)")
    group.add_argument("--dtype", choices=sorted(DTYPE_NAMES), default=default(None), metavar="DTYPE",
                       help="weights dtype: float32 (default), bfloat16 or float16 (aliases fp32, bf16, fp16, half)")
    group.add_argument("--quantize", choices=["int8"], default=default(None),
                       help="int8: dynamic int8 Linear layers, ~1.5-2x faster on CPU (CPU and float32 only)")
    group.add_argument("--backend", choices=["torch", "onnxruntime"], default=default("torch"),
                       help="what runs the encoders: torch (default) or onnxruntime (CPU; a torch checkpoint is "
                       "exported to ONNX once, into $IMAGEBIND_CACHE or the Hugging Face cache; with --quantize "
                       "int8 ~3-5x faster than torch float32)")
    group.add_argument("--adapter", action="append", default=default(None), metavar="[NAME=]SOURCE",
                       help="a LoRA adapter in ImageBind-LoRA's format to load on the checkpoint: folder, file or "
                       "Hub repo, optionally named NAME= (repeatable; the first is active; serve answers each by "
                       "its name in a request's \"model\" field)")
    group.add_argument("--debug", action="store_true", default=default(False),
                       help="show full tracebacks and debug logging")
    group.add_argument("-v", "--verbose", action="store_true", default=default(False),
                       help="log progress information (INFO) on stderr")


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


def add_embed_options(parser: Any, *, on_error: bool = True) -> None:
    """--batch-size, --progress/--no-progress and (optionally) --on-error: every command that embeds."""
    parser.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                        help="items per forward pass (default: 32)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help=PROGRESS_HELP)
    if on_error:
        parser.add_argument("--on-error", choices=("raise", "skip"), default="raise",
                            help="on an unreadable input: stop with an error (raise, default) "
                            "or leave it out and report it on stderr (skip)")


def add_text_overflow(parser: Any) -> None:
    """--text-overflow: texts past the text encoder's 77 tokens (``embed(text_overflow=...)``)."""
    parser.add_argument("--text-overflow", choices=("truncate", "chunk_mean", "error"), default="truncate",
                        help="a text longer than 77 tokens: cut it (truncate, default; warned), embed it whole "
                        "as the mean of its 77-token windows (chunk_mean), or stop with an error (error)")


# The encodings of stored rows (imagebind_sdk.vectors.compact.ENCODINGS; not imported: --help stays light).
EMBEDDING_DTYPES = ("float32", "float16", "int8", "uint8", "binary", "ubinary")


def add_compact_options(parser: Any, what: str) -> None:
    """--embedding-dtype and --ranges: how ``what`` stores its rows (``embedding_dtype=``, ``ranges=``)."""
    parser.add_argument("--embedding-dtype", choices=EMBEDDING_DTYPES, default="float32",
                        help=f"how {what} stores vectors: float32 (default), float16, int8/uint8 (per-dimension "
                        "ranges calibrated once per model) or binary/ubinary (sign bits, 8 per byte)")
    parser.add_argument("--ranges", metavar="FILE",
                        help="with --embedding-dtype int8/uint8: ranges to use instead of the model's calibration "
                        "(a JSON file of Ranges.save, a (2, dim) .npy, or an int8 bulk output folder)")


def compact_options(args: argparse.Namespace) -> dict[str, Any]:
    """``embedding_dtype=`` and ``ranges=`` of --embedding-dtype/--ranges (a --ranges without int8/uint8 is
    a usage error: it would be ignored)."""
    from ..vectors.compact import needs_ranges, read_ranges
    from .errors import UsageError

    if args.ranges is not None and not needs_ranges(args.embedding_dtype):
        raise UsageError(f"--ranges applies to --embedding-dtype int8 or uint8, not {args.embedding_dtype}")
    if args.ranges is None:
        return {"embedding_dtype": args.embedding_dtype}
    try:
        return {"embedding_dtype": args.embedding_dtype, "ranges": read_ranges(args.ranges)}
    except ValueError as exc:
        raise UsageError(f"--ranges {exc}") from None


def calibration_encoder(compact: dict[str, Any]) -> list[str]:
    """``["text"]`` when int8/uint8 rows need the model's calibration (on text prompts), else none."""
    from ..vectors.compact import needs_ranges

    return ["text"] if needs_ranges(compact["embedding_dtype"]) and "ranges" not in compact else []


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
