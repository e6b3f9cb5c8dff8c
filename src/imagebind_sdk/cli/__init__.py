"""The ``imagebind-sdk`` command line (also ``python -m imagebind_sdk``).

One module per command group: :mod:`.embed`, :mod:`.compare` (similarity,
classify), :mod:`.index` (index build, search), :mod:`.checkpoints` (convert,
info, download). Exit status: 0 on success, 2 on usage errors, 1 when an input or
a checkpoint cannot be used (one line ``imagebind-sdk: error: ...`` on stderr; the
traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from typing import Iterator, Sequence

from . import checkpoints, compare, embed, export, index
from ._common import PROG, UsageError, add_global_options, offline_env

__all__ = ["build_parser", "main"]

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
    embed.add_parser(sub, [common])
    compare.add_parsers(sub, [common])
    index.add_parsers(sub, [common])
    checkpoints.add_parsers(sub, [common])
    export.add_parser(sub, [common])
    return parser


class _StderrHandler(logging.StreamHandler):
    """A handler writing to whatever ``sys.stderr`` is when a record is emitted."""

    @property  # type: ignore[override]
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


@contextlib.contextmanager
def _logging(verbose: bool, debug: bool) -> Iterator[None]:
    """WARNING by default; INFO with -v; DEBUG for imagebind_sdk with --debug.

    Restores the previous set-up afterwards, so that ``main()`` called in-process
    leaves the caller's logging as it was.
    """
    root = logging.getLogger()
    handler = None
    if not root.handlers:  # leave an application's (or pytest's) logging set-up alone
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    ours, hub = logging.getLogger("imagebind_sdk"), logging.getLogger("huggingface_hub")
    saved = ours.level, hub.level
    ours.setLevel(logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING)
    # huggingface_hub logs every retry of an unreachable Hub; the final error says enough.
    hub.setLevel(logging.INFO if verbose or debug else logging.ERROR)
    try:
        yield
    finally:
        ours.setLevel(saved[0])
        hub.setLevel(saved[1])
        if handler is not None:
            root.removeHandler(handler)


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
    with _logging(args.verbose, args.debug), offline_env(args.offline):
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
