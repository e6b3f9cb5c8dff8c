"""The ``imagebind-sdk`` command line (also ``python -m imagebind_sdk``).

One module per command group: :mod:`.embed`, :mod:`.compare` (similarity,
classify), :mod:`.index` (index build, search), :mod:`.checkpoints` (convert,
info, download); shared pieces by concern: :mod:`.options` (flags and types),
:mod:`.loading` (checkpoint choice, model loading), :mod:`.environment` (logging,
offline mode), :mod:`.files` (directory/glob expansion), :mod:`.printing` (tables, JSON). Exit status: 0 on success, 2 on usage errors, 1 when an input or
a checkpoint cannot be used (one line ``imagebind-sdk: error: ...`` on stderr; the
traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import checkpoints, compare, embed, index, serve
from .environment import logging_setup, offline_env
from .options import PROG, UsageError, add_global_options

__all__ = ["build_parser", "main"]

# One line per command module; each has ``register(subparsers, parents)``.
COMMAND_MODULES = (
    embed,
    compare,
    index,
    checkpoints,
    serve,
)

DESCRIPTION = """\
ImageBind from the command line: embed texts, images, video, audio, depth,
thermal and IMU files into one embedding space; compare, classify and search them.
"""

EPILOG = """\
The checkpoint comes from --checkpoint, else $IMAGEBIND_CHECKPOINT, else
imagebind-huge (downloaded once into the Hugging Face cache; see `download`).
Global options may be given before or after the command.
Run `imagebind-sdk COMMAND --help` for a command's options.

examples:
  imagebind-sdk embed --text "a dog" --image dog.jpg --out dog.safetensors
  imagebind-sdk similarity --image dog.jpg --image car.jpg --text "a dog" --text "a car"
  imagebind-sdk classify --audio bark.wav --labels dog,car,bird
  imagebind-sdk index build photos/ --out photos.index
  imagebind-sdk search photos.index --audio bark.wav --top-k 5

exit status: 0 success, 1 unusable input or checkpoint, 2 usage error
"""


def _version() -> str:
    from .. import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)
    for module in COMMAND_MODULES:
        module.register(sub, [common])
    return parser


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (multi-line hints joined with '; ')."""
    lines = [line.strip().lstrip("-").strip() for line in str(exc).splitlines()]
    text = ""
    for line in (line for line in lines if line):
        text += ("" if not text else " " if text[-1] in ".:;," else "; ") + line
    return text or type(exc).__name__


def _input_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean unusable input or checkpoint: exit status 1, no traceback."""
    from safetensors import SafetensorError

    from ..checkpoint import CheckpointError
    from ..hub import WeightsNotFoundError
    from ..preprocess import InputError

    return (InputError, WeightsNotFoundError, CheckpointError, FileNotFoundError, ValueError,
            OSError, SafetensorError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse exits 2 on bad usage)."""
    args = build_parser().parse_args(argv)
    with logging_setup(args.verbose, args.debug), offline_env(args.offline):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; map expected failures to exit statuses."""
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout closed early, e.g. `| head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except UsageError as exc:
        if args.debug:
            raise
        sys.stderr.write(f"{PROG} {args.command}: error: {exc}\n")
        return 2
    except _input_errors() as exc:
        if args.debug:
            raise
        sys.stderr.write(f"{PROG}: error: {_one_line(exc)}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
