"""Speed of a LoRA-adapted model against its base, in one process, alternating calls.

    python benchmarks/adapters.py --checkpoint /tmp/ib-huge --rounds 5 --out benchmarks/results/adapters_huge.json

One model is loaded once; a rank-``--rank`` adapter for every block of the timed
encoders is written with ``adapters.save_adapter`` and loaded beside the base. Each
round times the base (``set_adapter(None)``) and the adapted model
(``set_adapter("bench")``) on the same prepared inputs, in alternating order, so the
machine's drift hits both. Text is timed twice with the adapter: the adapter carries a
text pair (so, like ImageBind-LoRA, the text trunk runs unmasked over all 77 positions
instead of trimming) and without one (vision/audio only, text untouched). Reported:
median seconds per call and adapted/base time ratios (the issue's bar: within 10%).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from imagebind_sdk import ImageBind
from imagebind_sdk.weights.adapters import save_adapter

logger = logging.getLogger("adapters")

CAPTIONS = ["a dog barking at the mailman", "rain on a tin roof", "a car passing by on a wet road",
            "children laughing in a playground", "a bird singing at dawn", "an old clock ticking"]


def inputs(model: ImageBind, batch: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "text": model.tokenizer((CAPTIONS * batch)[:batch]),
        "vision": torch.randn(batch, 3, 224, 224, generator=generator),
        "audio": torch.randn(batch, 3, 1, model.config.audio_num_mel_bins, model.config.audio_target_len,
                             generator=generator),
    }


def write_adapter(model: ImageBind, folder: Path, modalities: list[str], rank: int, postfix: str) -> None:
    generator = torch.Generator().manual_seed(1)
    pairs = {}
    for m in modalities:
        width, depth = model.config.embed_dim(m), model.config.num_blocks(m)
        pairs[m] = [(torch.randn(rank, width, generator=generator) * 0.02,
                     torch.randn(width, rank, generator=generator) * 0.02) for _ in range(depth)]
    save_adapter(folder, pairs, postfix=postfix)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rank", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    model = ImageBind.load(args.checkpoint, modalities=["text", "vision", "audio"], device="cpu")
    data = inputs(model, args.batch)
    with tempfile.TemporaryDirectory() as tmp:
        write_adapter(model, Path(tmp) / "all", ["text", "vision", "audio"], args.rank, "_all")
        write_adapter(model, Path(tmp) / "notext", ["vision", "audio"], args.rank, "_notext")
        model.load_adapter(Path(tmp) / "all", name="with_text", activate=False)
        model.load_adapter(Path(tmp) / "notext", name="without_text", activate=False)
    # "untrimmed": the base with trim_text off, i.e. all 77 positions, as a text adapter runs (the
    # quirk): with_text / untrimmed is what the low-rank path itself costs on text.
    cases = [(m, a) for m in ("text", "vision", "audio") for a in (None, "with_text")] + [
        ("text", "without_text"), ("text", "untrimmed")]
    times: dict[str, list[float]] = {f"{m}/{a or 'base'}": [] for m, a in cases}
    for name, x in data.items():  # warm-up
        for adapter in (None, "with_text"):
            model.set_adapter(adapter)
            model.encode(name, x)
    for round_ in range(args.rounds):
        order = cases if round_ % 2 == 0 else cases[::-1]
        for modality, adapter in order:
            model.set_adapter(None if adapter == "untrimmed" else adapter)
            model.model.encoders["text"].trim_text = adapter != "untrimmed"
            times[f"{modality}/{adapter or 'base'}"].append(timed(lambda: model.encode(modality, data[modality])))
        model.model.encoders["text"].trim_text = True
        logger.info("round %d/%d done", round_ + 1, args.rounds)
    medians = {k: statistics.median(v) for k, v in times.items()}
    ratios = {f"{m}/{a}": medians[f"{m}/{a}"] / medians[f"{m}/base"] for m, a in cases if a is not None}
    ratios["text/with_text vs untrimmed"] = medians["text/with_text"] / medians["text/untrimmed"]
    print(f"{'case':<22}{'median s':>10}")
    for key, value in medians.items():
        print(f"{key:<22}{value:>10.4f}")
    print("adapted / base time:", {k: round(v, 3) for k, v in ratios.items()})
    if args.out:
        args.out.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "times": times,
                                        "medians": medians, "ratios": ratios, "threads": torch.get_num_threads()},
                                       indent=1))


if __name__ == "__main__":
    main()
