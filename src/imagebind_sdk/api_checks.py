"""Checks of the facade's arguments (not of items): names, options, load flags (text lists: :func:`imagebind_sdk.pipeline.text_list`).

Everything here raises before any input item is read or any weight is loaded.
"""

from __future__ import annotations

import difflib
from typing import Any, Iterable, Mapping

import torch

from .kinds import INPUT_KINDS
from .preprocess import validate_options

# Keyword names a user may reach for first -> the input kind that takes them.
KIND_ALIASES = {"image": "vision", "images": "vision", "img": "vision", "photo": "vision", "texts": "text",
                "videos": "video", "sound": "audio", "audios": "audio", "speech": "audio"}


def unexpected_kinds(function: str, names: Iterable[str]) -> TypeError:
    """The error for keyword arguments that are no input kind, suggesting the kind meant."""
    name = sorted(names)[0]
    guess = KIND_ALIASES.get(name) or next(iter(difflib.get_close_matches(name, INPUT_KINDS, n=1)), None)
    hint = f"; did you mean {guess}=?" if guess else ""
    return TypeError(
        f"{function}() got an unexpected keyword argument {name!r}{hint} (input kinds: {', '.join(INPUT_KINDS)})"
    )


def checked_options(preprocess: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    """``embed(preprocess=...)`` checked before any item is read: a bad option is the
    caller's error (ValueError), never a skipped item."""
    if preprocess is None:
        return {}
    if not isinstance(preprocess, Mapping):
        raise ValueError(f"preprocess must be a dict kind -> options, got {type(preprocess).__name__}")
    unknown = sorted(set(preprocess) - set(INPUT_KINDS))
    if unknown:
        raise ValueError(f"preprocess options for unknown input kinds {unknown}; expected {INPUT_KINDS}")
    options = {}
    for kind, values in preprocess.items():
        if not isinstance(values, Mapping):
            raise ValueError(f"preprocess[{kind!r}] must be a dict of options, got {type(values).__name__}")
        if kind == "text" and values:
            raise ValueError(f"text takes no preprocess options, got {sorted(values)}")
        if kind != "text":
            try:
                validate_options(kind, values)
            except ValueError as exc:
                raise ValueError(f"preprocess[{kind!r}]: {exc}") from exc
        options[kind] = dict(values)
    return options


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(compile: bool | str, quantize: str | None) -> str | None:
    """The torch.compile mode for ``load(compile=...)``; None when not compiling."""
    if compile is False:
        return None
    mode = "default" if compile is True else compile
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be True, False or one of {list(COMPILE_MODES)}, got {compile!r}")
    if quantize is not None:
        raise ValueError("compile and quantize cannot be combined: dynamic int8 layers run eagerly")
    return mode


def check_quantize(quantize: str | None, device: torch.device, dtype: torch.dtype | None) -> None:
    if quantize is None:
        return
    if quantize != "int8":
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if device.type != "cpu":
        raise ValueError(f"quantize='int8' runs on the CPU only, got device={device}; on a GPU use dtype=torch.bfloat16")
    if dtype not in (None, torch.float32):
        raise ValueError(f"quantize='int8' needs float32 weights, got dtype={dtype}; leave dtype unset")
