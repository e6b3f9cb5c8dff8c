"""Measurements of imagebind_sdk, run inside a fresh child process.

Nothing heavy is imported at module level: ``startup`` times ``import torch`` and
``import imagebind_sdk`` itself.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from common import CAPTIONS, ITEM_SHAPES, CpuWatch, e2e_warmup, files_for, peak_rss_mb, startup_result, texts_for, time_calls

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
        from imagebind_sdk.tokenizer import default_tokenizer

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
    rows, outputs = [], {}
    load_s = time.perf_counter() - start
    for batch in batches:
        x = model_input(modality, batch)
        stats = time_calls(lambda: model.encode(modality, x), runs, budget_s)
        rows.append({"mode": "model", "batch": batch, **stats, "items_per_s": batch / stats["median_s"]})
        outputs.setdefault("model", model.encode(modality, x[:1]))
    for batch in batches:
        call = _e2e_call(model, modality, batch)
        stats = time_calls(call, runs, budget_s, warmup=e2e_warmup(batch))
        rows.append({"mode": "e2e", "batch": batch, **stats, "items_per_s": batch / stats["median_s"]})
        outputs.setdefault("e2e", _e2e_call(model, modality, 1)())
    if dump:
        torch.save(outputs, Path(dump) / f"sdk{'_' + quantize if quantize else ''}_{modality}.pt")
    return {
        "rows": rows,
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
    }
