"""Export encoders to ONNX: one ``<modality>.onnx`` per encoder plus ``config.json`` and ``onnx.json``.

Exporter: PyTorch's TorchScript-based ``torch.onnx.export(dynamo=False)``, opset
``OPSET``. It gives working dynamic batch and text-length axes with torch 2.14 and
needs no extra package (the dynamo exporter would need ``onnxscript``).

Graph inputs (``input``, float32 unless noted) and their dynamic axes:

- vision: (batch, 3, T, 224, 224) clips, T = ``config.video_frames``; images are
  repeated to T frames by the caller, as the torch stem does.
- text: (batch, length) int64 token ids, length <= 77. The graph picks the row of
  each text's end-of-text token (the largest id), so any length that keeps every
  end-of-text token gives the same numbers (causal attention); callers trim to the
  batch's last end-of-text token, as the torch encoder does.
- audio (batch, 1, 128, 204), depth/thermal (batch, 1, 224, 224), imu (batch, 6, 2000).

Output ``embedding``: (batch, out_dim) unit vectors. Graphs over 2 GB (full-size
vision) keep their weights in ``<modality>.onnx.data`` beside them (ONNX external
data). ``quantize="int8"`` also writes ``<modality>.int8.onnx``: onnxruntime's
dynamic int8 quantisation (weights int8, activations quantised per call).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from ..model.config import IMAGE_SIZE, IMU_CHANNELS, IMU_LENGTH, ImageBindConfig, check_modalities

__all__ = ["OPSET", "MANIFEST", "export_onnx", "model_file", "example_input"]

logger = logging.getLogger(__name__)

OPSET = 17  # LayerNormalization is a single op from 17 on; onnxruntime >= 1.17 runs it
MANIFEST = "onnx.json"
FORMAT = "imagebind-sdk-onnx"
FORMAT_VERSION = 1
PROTOBUF_LIMIT = 2**31 - 2**20  # protobuf's 2 GB cap, less headroom for the graph itself
INSTALL_HINT = "pip install 'imagebind-sdk[onnx]' (onnx, onnxruntime)"
EXAMPLE_BATCH = 2
EXAMPLE_TEXT_LENGTH = 8


def model_file(modality: str, quantize: str | None = None) -> str:
    """File name of a modality's graph inside an export folder."""
    return f"{modality}.int8.onnx" if quantize == "int8" else f"{modality}.onnx"


def example_input(config: ImageBindConfig, modality: str, batch: int = EXAMPLE_BATCH) -> torch.Tensor:
    """A model input of the graph's shape (values only steer tracing, never baked in)."""
    gen = torch.Generator().manual_seed(0)
    if modality == "text":
        ids = torch.randint(1, 100, (batch, EXAMPLE_TEXT_LENGTH), generator=gen)
        ids[:, -1] = 49407  # end-of-text
        return ids
    shapes = {
        "vision": (3, config.video_frames, IMAGE_SIZE, IMAGE_SIZE),
        "audio": (1, config.audio_num_mel_bins, config.audio_target_len),
        "depth": (1, IMAGE_SIZE, IMAGE_SIZE),
        "thermal": (1, IMAGE_SIZE, IMAGE_SIZE),
        "imu": (IMU_CHANNELS, IMU_LENGTH),
    }
    return torch.randn(batch, *shapes[modality], generator=gen)


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"ONNX export needs onnx: {INSTALL_HINT}") from exc
    return onnx


def _export_one(encoder: torch.nn.Module, config: ImageBindConfig, modality: str, path: Path) -> None:
    """Trace one encoder to ``path`` (external data when its weights pass protobuf's 2 GB)."""
    onnx = _import_onnx()
    axes = {0: "batch", 1: "length"} if modality == "text" else {0: "batch"}
    trim = getattr(encoder, "trim_text", False)
    encoder.trim_text = False  # trimming is data-dependent; the graph takes any length instead
    size = sum(p.numel() * p.element_size() for p in encoder.parameters())
    try:
        with tempfile.TemporaryDirectory(dir=path.parent) as tmp, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # "legacy TorchScript-based export"
            warnings.filterwarnings("ignore", message=r".*advanced indexing")  # indices are >= 0
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # vision: `if T == 1` is fixed per graph
            raw = Path(tmp) / path.name
            torch.onnx.export(
                encoder, (example_input(config, modality),), str(raw), dynamo=False, opset_version=OPSET,
                input_names=["input"], output_names=["embedding"],
                dynamic_axes={"input": axes, "embedding": {0: "batch"}},
            )
            if size < PROTOBUF_LIMIT:
                os.replace(raw, path)
                return
            # The exporter writes one file per tensor above 2 GB; gather them into one.
            graph = onnx.load(str(raw))
            onnx.save_model(graph, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=f"{path.name}.data", size_threshold=1024)
    finally:
        encoder.trim_text = trim


def quantize_file(source: Path, target: Path) -> None:
    """onnxruntime dynamic int8 quantisation of one graph (MatMul/Gemm weights -> int8)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ImportError(f"int8 ONNX export needs onnxruntime: {INSTALL_HINT}") from exc
    external = (source.parent / f"{source.name}.data").exists()
    hint = _DropLogRecord("pre-processing before quantization")  # a hint for static quantisation only
    logging.getLogger().addFilter(hint)
    try:
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"],
                         use_external_data_format=external)
    finally:
        logging.getLogger().removeFilter(hint)


class _DropLogRecord(logging.Filter):
    """Drops log records whose message contains ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def export_onnx(
    model: Any,
    out_dir: str | os.PathLike[str],
    modalities: Iterable[str] | None = None,
    *,
    quantize: str | None = None,
) -> Path:
    """Export the encoders of a loaded float32 :class:`~imagebind_sdk.ImageBind` into ``out_dir``.

    ``modalities`` default to every loaded encoder. Writes ``<modality>.onnx`` each,
    ``config.json`` (the checkpoint's) and ``onnx.json`` (opset, logit scales, files).
    ``quantize="int8"`` also writes ``<modality>.int8.onnx``. Returns ``out_dir``.

    >>> export_onnx(ImageBind.load("imagebind-huge", device="cpu"), "ib-onnx", ["text"])  # doctest: +SKIP
    """
    if model.dtype != torch.float32 or model.device.type != "cpu":
        raise ValueError(
            f"ONNX export needs a float32 CPU model, got dtype={model.dtype}, device={model.device}; "
            "load it with ImageBind.load(..., device='cpu') and no dtype/quantize"
        )
    wanted = check_modalities(modalities if modalities is not None else model.modalities)
    for modality in wanted:
        model.encoder(modality)  # clear error when it was not loaded
    out = Path(out_dir)
    files = write_graphs(model.model, out, wanted, quantize=quantize)
    write_manifest(out, model.config, model.source, files, {m: model.logit_scale(m) for m in wanted}, model.space)
    return out


def write_graphs(
    model: Any, out: Path, modalities: Iterable[str], *, quantize: str | None = None, keep_float32: bool = True,
    step: Callable[[str], None] | None = None,
) -> dict[str, dict[str, str]]:
    """Write the graphs of ``modalities`` of an ``ImageBindModel`` (float32, CPU) into ``out``.

    Returns the manifest's ``files`` entries. ``keep_float32=False`` (with ``quantize``)
    deletes each float32 graph once its int8 copy is written; ``step`` is called after
    each graph written (a progress bar's update).
    """
    if quantize not in (None, "int8"):
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, dict[str, str]] = {}
    for modality in modalities:
        if hasattr(model, "check_weights"):
            model.check_weights(modality)  # CheckpointError naming a NaN/inf tensor, before tracing it
        target = out / model_file(modality)
        logger.info("exporting the %s encoder to %s", modality, target)
        with torch.no_grad():
            _export_one(model.encoders[modality], model.config, modality, target)
        files[modality] = {"float32": target.name}
        if step is not None:
            step(f"{modality} float32")
        if quantize == "int8":
            quantize_file(target, out / model_file(modality, "int8"))
            files[modality]["int8"] = model_file(modality, "int8")
            if not keep_float32:
                for path in (target, out / f"{target.name}.data"):
                    path.unlink(missing_ok=True)
                del files[modality]["float32"]
            if step is not None:
                step(f"{modality} int8")
    return files


def write_manifest(
    out: Path, config: ImageBindConfig, source: str, files: dict[str, dict[str, str]], scales: dict[str, float],
    space: Any = None,
) -> dict[str, Any]:
    """Write ``config.json`` and ``onnx.json`` (each to a temporary name, then renamed); ``space``:
    the exported model's (a ``vectors.space.Space``), so that the graphs' vectors keep it."""
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exporter": f"torch.onnx.export(dynamo=False), torch {torch.__version__}",
        "opset": OPSET,
        "source": source,
        "modalities": list(files),
        "files": files,
        "logit_scales": {m: float(scales[m]) for m in files},
        **({"space": space.to_dict()} if space is not None else {}),
    }
    config_tmp = out / f".config.json.{os.getpid()}.tmp"
    config.to_json(config_tmp)
    os.replace(config_tmp, out / "config.json")
    write_json_atomic(out / MANIFEST, manifest)
    return manifest


def write_json_atomic(path: Path, data: Any) -> None:
    """``path`` holds either its old content or all of ``data``, never a part (temporary name, then rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(tmp, path)
