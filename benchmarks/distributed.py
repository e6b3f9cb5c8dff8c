"""Items/s of bulk embedding: the local engine (embed_files) vs Ray Data with 1 and 2 actors.

    python benchmarks/distributed.py --checkpoint /work/shared/golden/tiny --images 96
    python benchmarks/distributed.py --checkpoint /tmp/ib-huge --images 8 --batch-size 4

Each configuration embeds the same generated images into a fresh output folder and
is timed end to end, model loading included (each Ray actor loads its own copy), on
a local Ray started once with ``num_cpus=2`` (its start-up is reported apart). The
per-item overhead of Ray is (Ray 1 actor seconds - local seconds) / items.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # each actor / the local run: one thread per core share

ASSETS = Path(__file__).resolve().parents[1].parent / "shared" / "assets"


def make_images(root: Path, n: int) -> Path:
    from PIL import Image

    photos = [Image.open(ASSETS / f"{k}_image.jpg").convert("RGB") for k in ("dog", "car", "bird")]
    for i in range(n):
        w, h = photos[i % 3].size
        photos[i % 3].crop((i % 40, i % 30, w - i % 37, h - i % 23)).save(root / f"img_{i:04d}.jpg")
    return root


def time_local(checkpoint: str, images: Path, batch_size: int, out: Path) -> float:
    import torch

    from imagebind_sdk import ImageBind
    from imagebind_sdk.bulk.files import embed_files

    torch.set_num_threads(2)  # the local engine may use both cores
    start = time.perf_counter()
    model = ImageBind.load(checkpoint, device="cpu", modalities=["vision"])
    embed_files(model, images, out=out, batch_size=batch_size)
    return time.perf_counter() - start


def time_ray(checkpoint: str, images: Path, batch_size: int, out: Path, actors: int) -> float:
    from imagebind_sdk.distributed import embed_dataset

    start = time.perf_counter()
    # 0.5 CPU per actor: with 2 actors on 2 CPUs, a whole CPU each would leave none for decoding
    summary = embed_dataset(images, checkpoint=checkpoint, out=out, batch_size=batch_size, concurrency=actors,
                            num_cpus_per_actor=0.5)
    assert summary.failed == 0, summary
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "images").mkdir()
        images = make_images(root / "images", args.images)
        rows = {"local engine": time_local(args.checkpoint, images, args.batch_size, root / "local")}
        start = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", object_store_memory=500 * 2**20)
        ray_start = time.perf_counter() - start
        try:
            for actors in (1, 2):
                rows[f"ray {actors} actor(s)"] = time_ray(args.checkpoint, images, args.batch_size,
                                                          root / f"ray{actors}", actors)
                print(f"{actors} actor(s): {rows[f'ray {actors} actor(s)']:.1f} s", flush=True)
        finally:
            ray.shutdown()
    n = args.images
    result = {
        "checkpoint": args.checkpoint, "images": n, "batch_size": args.batch_size, "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(), "ray_init_s": round(ray_start, 2),
        "seconds": {k: round(v, 2) for k, v in rows.items()},
        "items_per_s": {k: round(n / v, 2) for k, v in rows.items()},
        "ray_overhead_ms_per_item": round(1000 * (rows["ray 1 actor(s)"] - rows["local engine"]) / n, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
