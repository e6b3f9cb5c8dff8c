"""Measurements of the reference implementation (PyPI ``imagebind-unofficial``, the
facebookresearch/ImageBind code), run by ``--reference-python`` in its own venv.

The reference is driven exactly as its README does: build ``imagebind_huge()``, load
the state dict with ``torch.load(..., weights_only=True)`` (what ``pretrained=True``
does after downloading), ``eval()``, then ``model({modality: data.load_and_transform_*})``
under ``torch.no_grad()``. Only the benchmark uses this; the SDK never imports it.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

from common import CAPTIONS, ITEM_SHAPES, CpuWatch, files_for, is_huge_config, startup_result, texts_for, throughput_result

SEED = 1234  # same seeded inputs as child_sdk


def _patch_torchaudio_load() -> None:
    """torchaudio >= 2.9 decodes only through torchcodec, which needs system FFmpeg
    libraries this machine lacks; decode with soundfile instead (float32 in [-1, 1],
    channels first: what torchaudio.load returned)."""
    import soundfile
    import torch
    import torchaudio

    def load(path: str, *args: Any, **kwargs: Any) -> tuple[Any, int]:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return torch.from_numpy(data.T.copy()), rate

    torchaudio.load = load


def _imports() -> tuple[Any, Any, Any]:
    warnings.filterwarnings("ignore")
    import torch
    from imagebind import data
    from imagebind.models import imagebind_model

    _patch_torchaudio_load()
    return torch, data, imagebind_model


def load_reference(checkpoint: str) -> tuple[Any, dict[str, float]]:
    """Build the reference model and load ``model.pth`` the way ``pretrained=True`` does."""
    torch, _, imagebind_model = _imports()
    directory = Path(checkpoint)
    config = json.loads((directory / "config.json").read_text())
    start = time.perf_counter()
    if is_huge_config(config):
        model = imagebind_model.imagebind_huge(pretrained=False)
    else:
        model = imagebind_model.ImageBindModel(**config)
    built = time.perf_counter()
    model.load_state_dict(torch.load(directory / "model.pth", weights_only=True))
    model.eval()
    loaded = time.perf_counter()
    return model, {"build_s": built - start, "read_state_s": loaded - built}


def startup(checkpoint: str) -> dict[str, Any]:
    """import -> build + load_state_dict -> first text embedding, each timed."""
    watch = CpuWatch()
    start = time.perf_counter()
    torch, data, _ = _imports()
    imported = time.perf_counter()
    model, parts = load_reference(checkpoint)
    loaded = time.perf_counter()
    with torch.no_grad():
        out = model({"text": data.load_and_transform_text([CAPTIONS[0]], "cpu")})["text"]
    done = time.perf_counter()
    assert out.shape[0] == 1
    return startup_result(start, imported, loaded, done, watch, **parts)


def model_input(modality: str, batch: int) -> Any:
    torch, data, _ = _imports()
    if modality == "text":
        return data.load_and_transform_text(texts_for(batch), "cpu")
    generator = torch.Generator().manual_seed(SEED)
    return torch.randn((batch, *ITEM_SHAPES[modality]), generator=generator)


def e2e_call(model: Any, modality: str, batch: int) -> Any:
    """The reference's file-to-embedding path, or None where it ships no loader."""
    torch, data, _ = _imports()
    loaders = {
        "text": (data.load_and_transform_text, texts_for),
        "vision": (data.load_and_transform_vision_data, files_for),
        "audio": (data.load_and_transform_audio_data, files_for),
    }
    if modality not in loaders:
        return None
    loader, inputs = loaders[modality]
    items = inputs(batch) if modality == "text" else inputs(modality, batch)

    def call() -> Any:
        with torch.no_grad():
            return model({modality: loader(items, "cpu")})[modality]

    return call


def _forward(torch: Any, model: Any, modality: str, x: Any) -> Any:
    with torch.no_grad():
        return model({modality: x})[modality]


def throughput(
    checkpoint: str, modality: str, batches: list[int], runs: int, budget_s: float, dump: str | None
) -> dict[str, Any]:
    """items/s of the model forward on prepared inputs and from files."""
    torch, _, _ = _imports()
    start = time.perf_counter()
    model, _ = load_reference(checkpoint)
    load_s = time.perf_counter() - start
    result, outputs = throughput_result(
        lambda x: _forward(torch, model, modality, x),
        lambda batch: model_input(modality, batch),
        lambda batch: e2e_call(model, modality, batch),
        batches, runs, budget_s, load_s,
    )
    if dump:
        torch.save(outputs, Path(dump) / f"ref_{modality}.pt")
    return result
