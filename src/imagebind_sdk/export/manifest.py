"""Checks of an ONNX export folder's ``onnx.json``: an export folder is untrusted input.

A manifest names the graph files to load and the output scale of each encoder. A
file name that leads outside the folder (``../x.onnx``, an absolute path, a symlink)
would load any graph on the machine; a negative or NaN scale silently inverts or
destroys zero-shot rankings. Every field is checked as ``config.json`` is, and each
error names the file and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..model.config import MODALITIES
from ..model.encoder import MAX_LOGIT_SCALE
from ..vectors.space import as_space

__all__ = ["GRAPH_KINDS", "check_graph_dim", "check_manifest"]

GRAPH_KINDS = ("float32", "int8")


def _fail(path: Path, field: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"{path}: {field} must be {expected}, got {value!r}")


def _graph_name(path: Path, folder: Path, field: str, name: Any) -> str:
    """A graph file name that stays inside ``folder`` (no absolute path, ``..`` or symlink out)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise _fail(path, field, "a file name inside the folder", name)
    root = folder.resolve()
    target = (folder / name).resolve()
    if Path(name).is_absolute() or root not in target.parents:
        raise _fail(path, field, f"a file name inside {folder} (no absolute path or '..')", name)
    return name


def _scale(path: Path, field: str, value: Any) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0 < value <= MAX_LOGIT_SCALE:
        raise _fail(path, field, f"a finite number in (0, {MAX_LOGIT_SCALE:g}]", value)
    return float(value)


def check_manifest(path: Path, format_name: str) -> dict[str, Any]:
    """``onnx.json`` at ``path`` parsed and checked field by field: ``{"modalities", "files", "logit_scales"}``.

    ``files[modality]`` maps ``"float32"`` (required) and ``"int8"`` to names inside the folder.
    """
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != format_name:
        found = manifest.get("format") if isinstance(manifest, dict) else manifest
        raise _fail(path, "format", repr(format_name), found)
    modalities = manifest.get("modalities")
    if (not isinstance(modalities, list) or not modalities or len(set(map(str, modalities))) != len(modalities)
            or any(m not in MODALITIES for m in modalities)):
        raise _fail(path, "modalities", f"a list of distinct modalities among {list(MODALITIES)}", modalities)
    files, scales = manifest.get("files"), manifest.get("logit_scales")
    if not isinstance(files, dict):
        raise _fail(path, "files", "an object of graph files per modality", files)
    if not isinstance(scales, dict):
        raise _fail(path, "logit_scales", "an object of numbers per modality", scales)
    checked: dict[str, dict[str, str]] = {}
    for modality in modalities:
        graphs = files.get(modality)
        # an export-onnx folder holds float32 (and int8) graphs; an int8 cache entry only int8 ones
        if not isinstance(graphs, dict) or not graphs or not set(graphs) <= set(GRAPH_KINDS):
            raise _fail(path, f"files.{modality}", "an object with 'float32' and/or 'int8' file names", graphs)
        checked[modality] = {k: _graph_name(path, path.parent, f"files.{modality}.{k}", v) for k, v in graphs.items()}
    try:
        space = as_space(manifest.get("space"))  # exports written before spaces: unknown
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return {
        "space": space,
        "modalities": list(modalities),
        "files": checked,
        "logit_scales": {m: _scale(path, f"logit_scales.{m}", scales.get(m)) for m in modalities},
    }


def check_graph_dim(graph: Path, session: Any, modality: str, dim: int) -> None:
    """The graph's output must be (batch, ``dim``) as ``config.json`` says (a symbolic size passes)."""
    outputs = session.get_outputs()
    shape = list(outputs[0].shape) if outputs else None
    if not shape or len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != dim):
        raise ValueError(f"{graph}: the {modality} graph outputs shape {shape}, expected [batch, {dim}] "
                         "(config.json's out_embed_dim)")
