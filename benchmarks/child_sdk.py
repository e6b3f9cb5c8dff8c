"""Measurements of imagebind_sdk, run inside a fresh child process.

Nothing heavy is imported at module level: ``startup`` times ``import torch`` and
``import imagebind_sdk`` itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from common import CAPTIONS, ITEM_SHAPES, CpuWatch, files_for, startup_result, texts_for, throughput_result

SEED = 1234


def _load_kwargs(quantize: str | None) -> dict[str, Any]:
    return {"quantize": quantize} if quantize else {}


def startup(checkpoint: str, modalities: list[str] | None, quantize: str | None = None) -> dict[str, Any]:
    """import -> load -> first text embedding, each timed."""
    watch = CpuWatch()
    start = time.perf_counter()
    import torch

    from imagebind_sdk import ImageBind

    imported = time.perf_counter()
    model = ImageBind.load(checkpoint, modalities=modalities, device="cpu", **_load_kwargs(quantize))
    loaded = time.perf_counter()
    out = model.embed(text=[CAPTIONS[0]]).text
    done = time.perf_counter()
    assert out.shape[0] == 1
    return startup_result(start, imported, loaded, done, watch)


def model_input(modality: str, batch: int) -> Any:
    """The model-only input: token ids for text, seeded random tensors otherwise."""
    import torch

    if modality == "text":
        from imagebind_sdk.preprocess.tokenizer import default_tokenizer

        return default_tokenizer()(texts_for(batch))
    generator = torch.Generator().manual_seed(SEED)
    return torch.randn((batch, *ITEM_SHAPES[modality]), generator=generator)


def _e2e_call(model: Any, modality: str, batch: int) -> Any:
    if modality == "text":
        texts = texts_for(batch)
        return lambda: model.embed(text=texts, batch_size=batch).text
    paths = files_for(modality, batch)
    return lambda: model.embed(**{modality: paths}, batch_size=batch)[modality]


def throughput(
    checkpoint: str,
    modality: str,
    batches: list[int],
    runs: int,
    budget_s: float,
    dump: str | None,
    quantize: str | None = None,
) -> dict[str, Any]:
    """items/s of ``model.encode`` (model only) and ``model.embed`` (from files)."""
    import torch

    from imagebind_sdk import ImageBind

    start = time.perf_counter()
    model = ImageBind.load(checkpoint, modalities=[modality], device="cpu", **_load_kwargs(quantize))
    load_s = time.perf_counter() - start
    result, outputs = throughput_result(
        lambda x: model.encode(modality, x),
        lambda batch: model_input(modality, batch),
        lambda batch: _e2e_call(model, modality, batch),
        batches, runs, budget_s, load_s,
    )
    if dump:
        torch.save(outputs, Path(dump) / f"sdk{'_' + quantize if quantize else ''}_{modality}.pt")
    return result
