"""Run an ONNX export folder with onnxruntime behind the :class:`~imagebind_sdk.ImageBind` facade.

``ImageBind.load(folder, backend="onnxruntime")`` builds an :class:`OnnxModel`: the
same ``config``, ``encoders`` and ``modalities`` as the torch model, with each encoder
replaced by an :class:`OnnxEncoder` (called on the same preprocessed batches, same
``logit_scale()``), so preprocessing, batching, ``embed``, ``zero_shot`` and bulk
embedding are the torch path's own code.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from ..model.config import TEXT_CONTEXT_LENGTH, ImageBindConfig, check_modalities
from .manifest import check_graph_dim, check_manifest
from .onnx import FORMAT, INSTALL_HINT, MANIFEST

__all__ = ["OnnxEncoder", "OnnxModel", "load_onnx"]

logger = logging.getLogger(__name__)


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f'backend="onnxruntime" needs onnxruntime: {INSTALL_HINT}') from exc
    return onnxruntime


class OnnxEncoder:
    """One encoder's onnxruntime session with the torch encoder's call interface."""

    def __init__(self, modality: str, session: Any, logit_scale: float, frames: int) -> None:
        self.modality = modality
        self.session = session
        self.frames = frames
        self.trim_text = True  # as ModalityEncoder: run up to the batch's last end-of-text token
        self._logit_scale = logit_scale

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.modality!r})"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """A batch of model inputs -> (B, out_dim) float32 unit vectors."""
        if self.modality == "text":
            if x.shape[-1] > TEXT_CONTEXT_LENGTH:
                raise ValueError(f"text input has {x.shape[-1]} tokens; the graph takes at most {TEXT_CONTEXT_LENGTH}")
            x = x.long()
            if self.trim_text and x.numel():
                x = x[:, : int(x.argmax(dim=-1).max()) + 1]  # exact: causal attention
        elif self.modality == "vision":
            if x.ndim == 4:  # images -> clips of `frames` copies, as the torch stem does
                x = x.unsqueeze(2)
            if x.shape[2] == 1:
                x = x.expand(-1, -1, self.frames, -1, -1)
        feed = np.ascontiguousarray(x.cpu().numpy())
        if feed.dtype != np.int64:
            feed = feed.astype(np.float32, copy=False)
        return torch.from_numpy(self.session.run(None, {"input": feed})[0])

    def logit_scale(self) -> float:
        """The exported model's output scale (as ``ModalityEncoder.logit_scale``)."""
        return self._logit_scale


class OnnxModel:
    """Stands in for ``ImageBindModel`` inside ``ImageBind``: config, encoders, modalities."""

    backend = "onnxruntime"

    def __init__(self, config: ImageBindConfig, encoders: dict[str, OnnxEncoder], quantize: str | None,
                 folder: Path | None = None, space: Any = None) -> None:
        self.config = config
        self.encoders = encoders
        self.quantize = quantize
        self.folder = folder  # where the graphs were read from (an export folder or a cache entry)
        self.space = space  # the exported model's space, from onnx.json (None: exported before spaces)

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoders)

    def parameters(self) -> Iterator[torch.Tensor]:
        # ImageBind.dtype reads the first parameter: the graphs take float32 inputs.
        yield torch.empty(0, dtype=torch.float32)


def read_manifest(folder: Path) -> dict[str, Any]:
    """``onnx.json`` of an export folder, checked field by field (:mod:`.manifest`)."""
    path = folder / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is not an ONNX export folder (no {MANIFEST}); "
            "create one with `imagebind-sdk export-onnx --modalities text,vision,audio OUT_DIR`"
        )
    return check_manifest(path, FORMAT)


def _session(path: Path, threads: int | None) -> Any:
    ort = _import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_onnx(
    source: str | os.PathLike[str],
    *,
    modalities: Iterable[str] | None = None,
    quantize: str | None = None,
    trim_text: bool = True,
    threads: int | None = None,
) -> OnnxModel:
    """Open the graphs of an export folder (float32, or the ``int8`` ones) as an OnnxModel.

    ``threads`` defaults to ``torch.get_num_threads()`` (onnxruntime's intra-op threads).
    """
    folder = Path(source)
    manifest = read_manifest(folder)
    available = manifest["modalities"]
    wanted = check_modalities(modalities if modalities is not None else available)
    missing = [m for m in wanted if m not in available]
    if missing:
        raise ValueError(f"{folder} has no ONNX graph for {missing}; it holds {available}")
    config = ImageBindConfig.from_json(folder / "config.json")
    kind = "int8" if quantize == "int8" else "float32"
    encoders = {}
    for modality in wanted:
        name = manifest["files"][modality].get(kind)
        if name is None:
            raise ValueError(
                f"{folder} has no {kind} graph for {modality}; "
                "export with `imagebind-sdk export-onnx --quantize int8 ...` to add them"
            )
        graph = folder / name
        if not graph.is_file():
            raise FileNotFoundError(f"{folder / MANIFEST}: files.{modality}.{kind} names {name}, which is missing")
        session = _session(graph, threads)
        check_graph_dim(graph, session, modality, config.out_embed_dim)
        scale = manifest["logit_scales"][modality]
        encoders[modality] = OnnxEncoder(modality, session, scale, config.video_frames)
        encoders[modality].trim_text = trim_text
    logger.info("loaded %s ONNX graphs for %s from %s", kind, list(wanted), folder)
    return OnnxModel(config, encoders, quantize, folder, manifest["space"])
