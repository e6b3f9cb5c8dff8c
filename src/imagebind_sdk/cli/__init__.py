"""The ``imagebind-sdk`` command line (also ``python -m imagebind_sdk``).

One module per command group: :mod:`.embed`, :mod:`.compare` (similarity,
classify), :mod:`.index` (index build, search), :mod:`.checkpoints` (convert,
info, download); shared pieces by concern: :mod:`.options` (flags and types),
:mod:`.loading` (checkpoint choice, model loading), :mod:`.environment` (logging,
offline mode), :mod:`.files` (directory/glob expansion), :mod:`.printing` (tables,
JSON, error lines), :mod:`.errors`. Exit status: 0 on success, 2 on usage errors
(a short usage line and the error), 1 on any other failure: one line
``imagebind-sdk: error: ...`` on stderr, the traceback only with ``--debug``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .. import progress
from . import app, checkpoints, compare, embed, export, index, moments, serve
from .environment import logging_setup, offline_env
from .errors import UsageError
from .options import PROG, Parser, add_global_options, short_usage
from .printing import error_line

__all__ = ["build_parser", "main", "parse_args"]

# One line per command module; each has ``register(subparsers, parents)``.
COMMAND_MODULES = (
    embed,
    compare,
    index,
    checkpoints,
    serve,
    moments,
    export,
    app,
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
    from ..version import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every command."""
    parser = Parser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    add_global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands", required=True)
    for module in COMMAND_MODULES:
        module.register(sub, [common])
    _tag_command_parsers(parser)
    return parser


def _tag_command_parsers(parser: argparse.ArgumentParser) -> None:
    """Record in each (sub)command's defaults its own parser, to report stray options with its usage."""
    for action in parser._actions:  # noqa: SLF001
        if isinstance(action.choices, dict):  # a subparsers action: name -> parser
            for command_parser in action.choices.values():
                command_parser.set_defaults(_parser=command_parser)
                _tag_command_parsers(command_parser)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; a stray option is reported by the command it was given to."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (argparse exits 2 on bad usage)."""
    args = parse_args(argv)
    with logging_setup(args.verbose, args.debug), offline_env(args.offline), progress.asked(
        getattr(args, "progress", None)
    ):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Run the parsed command; every failure becomes one line on stderr (--debug: the traceback)."""
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout closed early, e.g. `| head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        progress.close_open_bars()
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place every failure is reported
        if args.debug:
            raise
        progress.close_open_bars()  # a bar an exception left open would share the error's line
        if isinstance(exc, UsageError):  # as argparse reports one: the command's usage, then the error
            command = args._parser  # noqa: SLF001 - set by _tag_command_parsers
            sys.stderr.write(f"{short_usage(command)}\n{command.prog}: error: {error_line(exc)}\n")
            return 2
        sys.stderr.write(f"{PROG}: error: {error_line(exc)}\n")
        return 1
