"""What commands print: table labels, plain-text matrices, JSON, error and report lines."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from typing import Any, TextIO

PROG = "imagebind-sdk"
LABEL_WIDTH = 24


def display_name(kinds: str) -> str:
    """"vision+audio" -> "Vision+Audio", "imu" -> "IMU" (table titles)."""
    return "+".join("IMU" if k == "imu" else k.title() for k in kinds.split("+"))


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


# Python spellings in library messages -> the command line's (name -> flag; a value follows).
CLI_FLAGS = {
    "out": "--out", "kind": "--kind", "modality": "--kind", "batch_size": "--batch-size", "num_workers": "--num-workers",
    "on_error": "--on-error", "top_k": "--top-k", "device": "--device", "dtype": "--dtype",
    "quantize": "--quantize", "progress": "--progress", "hop_s": "--hop", "window_s": "--window",
    "merge_gap_s": "--merge-gap", "min_score": "--min-score", "ray_address": "--ray-address",
    "concurrency": "--concurrency", "num_gpus_per_actor": "--gpus-per-actor", "backend": "--backend",
}
# Whole spellings replaced as they are; parameter names with an underscore are Python's
# alone, so they are replaced on their own too ("hop_s must be positive" -> "--hop ...").
CLI_WORDS = {
    "resume=True": "--resume", "resume=False": "--no-resume", "local_files_only=True": "--offline",
    "embed_files": "imagebind-sdk embed", "to ImageBind.load()": "to --checkpoint",
    "leave dtype unset": "leave --dtype out",
    **{name: flag for name, flag in CLI_FLAGS.items() if "_" in name},
}
_FLAG = re.compile(r"\b(" + "|".join(CLI_FLAGS) + r")=(?:(['\"])(.*?)\2|([^\s,;)]*))")
_BULLET = re.compile(r"^[-*]\s+")  # "- hint" lines of multi-line messages (not "--flag")
_WORD = re.compile("|".join(rf"(?<![\w.-]){re.escape(w)}(?![\w=])" for w in sorted(CLI_WORDS, key=len, reverse=True)))


def _flag(match: re.Match[str]) -> str:
    value = match.group(3) if match.group(2) else match.group(4)
    if match.group(1) == "dtype":
        value = value.removeprefix("torch.")  # torch.bfloat16 -> bfloat16, as --dtype takes it
    return CLI_FLAGS[match.group(1)] + (f" {value}" if value else "")


def cli_spelling(message: str) -> str:
    """A library message as the command line says it: ``resume=True`` -> ``--resume``, ``kind=`` -> ``--kind``."""
    return _FLAG.sub(_flag, _WORD.sub(lambda m: CLI_WORDS[m.group(0)], message))


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (multi-line hints joined with '; ')."""
    lines = [_BULLET.sub("", line.strip()) for line in str(exc).splitlines()]
    text = ""
    for line in (line for line in lines if line):
        text += ("" if not text else " " if text[-1] in ".:;," else "; ") + line
    return text


def expected_errors() -> tuple[type[BaseException], ...]:
    """Exceptions whose message says it all; others are prefixed with their type."""
    from ..weights.checkpoint import CheckpointError
    from ..weights.hub import WeightsNotFoundError
    from ..preprocess import InputError
    from .errors import CliError, UsageError

    return (InputError, WeightsNotFoundError, CheckpointError, OSError, ValueError, CliError, UsageError)


def error_line(exc: BaseException) -> str:
    """What ``imagebind-sdk: error:`` is followed by: one line, in the command line's spelling."""
    text = cli_spelling(_one_line(exc))
    if isinstance(exc, expected_errors()):
        return text or type(exc).__name__
    # Not an input problem we know: the type helps, and --debug gives the traceback for a report.
    return f"{type(exc).__name__}: {text or '(no message)'} (--debug shows the traceback)"


def report(line: str) -> None:
    """One ``imagebind-sdk: ...`` line on stderr, above any progress bar."""
    from ..progress import write_line

    write_line(f"{PROG}: {cli_spelling(line)}")


def report_failures(failed: Sequence[tuple[str, str]], unsupported: Sequence[tuple[str, str]]) -> None:
    """Each failed or unsupported file of a bulk run, once, as ``(path, reason)`` pairs."""
    for path, error in failed:
        report(f"failed {path}: {error}")
    for path, reason in unsupported:
        report(f"unsupported {path}: {reason}")


def report_files(result: Any) -> None:
    """Each failed or unsupported file of a local bulk result, once (the library's log lines are held back)."""
    report_failures(result.failed, result.unsupported)
