"""``serve.py --backends``: torch float32 vs onnxruntime int8, served and in ``embed_files`` (issue 16).

Servers: for each modality one ``imagebind-sdk serve`` process per backend, both up at
once; each round sends one burst (``clients`` concurrent clients, ``requests`` one-item
``/vectorize`` requests each) to one server and then to the other, the order swapped
every round. The ratio of a round is onnxruntime's items/s over torch's in that round;
the report gives the median and the range. The onnxruntime server starts first: on a
cold cache it exports the encoder (``ImageBind.load(..., backend="onnxruntime")``)
before it answers ready, and nothing else runs meanwhile.

``embed_files``: both models loaded in this process, ``files`` distinct images (crops
of the sample photos), alternating calls. Cosines: the same items through both.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import torch

from serve import ASSETS, TEXTS, drive, peak_rss_mb, start

logger = logging.getLogger("benchmarks.serve")

BACKENDS = {"onnxruntime-int8": ("--backend", "onnxruntime", "--quantize", "int8"), "torch-float32": ()}
PROBE_IMAGES = ("dog_image.jpg", "car_image.jpg", "bird_image.jpg")


def _probe(url: str, modality: str) -> torch.Tensor:
    """Vectors of fixed items from a server (``/v1/embed``), to compare backends."""
    if modality == "text":
        payload: dict[str, Any] = {"text": TEXTS}
    else:
        payload = {"vision": [base64.b64encode((ASSETS / n).read_bytes()).decode() for n in PROBE_IMAGES]}
    r = httpx.post(url + "/v1/embed", json=payload, timeout=3600)
    r.raise_for_status()
    return torch.tensor(r.json()["embeddings"][modality])


def _ratios(rows: list[dict], key: str, fast: str, slow: str) -> dict[str, float]:
    by_round: dict[int, dict[str, float]] = {}
    for row in rows:
        by_round.setdefault(row["round"], {})[row["backend"]] = row[key]
    ratios = sorted(r[fast] / r[slow] for r in by_round.values())
    return {"median": statistics.median(ratios), "min": ratios[0], "max": ratios[-1]}


def compare_servers(checkpoint: str, modality: str, rounds: int, clients: int, requests: int, image: str) -> dict:
    servers: dict[str, Any] = {}
    try:
        for name, flags in BACKENDS.items():  # onnxruntime first: its export runs alone
            started = time.perf_counter()
            servers[name] = start(checkpoint, modality, 32, flags, ready_s=3600)
            logger.info("%s %s server ready in %.0f s", modality, name, time.perf_counter() - started)
        probes = {name: _probe(url, modality) for name, (_, url) in servers.items()}
        cosine = torch.nn.functional.cosine_similarity(probes["onnxruntime-int8"], probes["torch-float32"])
        rows = []
        for r in range(rounds):
            names = list(servers) if r % 2 else list(reversed(servers))
            for name in names:
                row = asyncio.run(drive(servers[name][1], modality, clients, requests, image))
                if servers[name][0].poll() is not None:
                    raise RuntimeError(f"the {name} server exited with {servers[name][0].returncode}")
                rows.append({"round": r, "backend": name, **row})
                logger.info("%-6s %-17s round %d  c=%-2d %4d items  %7.2f items/s  p50 %7.0f ms  p99 %7.0f ms",
                            modality, name, r, clients, row["items"], row["items_per_s"], row["p50_ms"], row["p99_ms"])
        rss = {name: peak_rss_mb(proc.pid) for name, (proc, _) in servers.items()}
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
    ratio = _ratios(rows, "items_per_s", "onnxruntime-int8", "torch-float32")
    logger.info("%s servers: onnxruntime int8 / torch float32 items/s: median %.2fx (%.2f-%.2f), min cosine %.5f",
                modality, ratio["median"], ratio["min"], ratio["max"], float(cosine.min()))
    return {"what": "server", "modality": modality, "clients": clients, "requests_per_client": requests,
            "rows": rows, "ratio": ratio, "min_cosine": float(cosine.min()), "peak_rss_mb": rss}


def _images(folder: Path, n: int) -> list[str]:
    from PIL import Image

    photos = [Image.open(ASSETS / name).convert("RGB") for name in PROBE_IMAGES]
    paths = []
    for i in range(n):
        w, h = photos[i % 3].size
        path = folder / f"img_{i:03d}.jpg"
        photos[i % 3].crop((i * 5, i * 3, w - i * 4, h - i * 2)).save(path)
        paths.append(str(path))
    return paths


def compare_embed_files(checkpoint: str, rounds: int, n_files: int) -> dict:
    from imagebind_sdk import ImageBind, embed_files

    models = {
        "onnxruntime-int8": ImageBind.load(checkpoint, modalities=["vision"], backend="onnxruntime", quantize="int8"),
        "torch-float32": ImageBind.load(checkpoint, modalities=["vision"], device="cpu"),
    }
    rows, vectors = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = _images(Path(tmp), n_files)
        for r in range(rounds):
            names = list(models) if r % 2 else list(reversed(models))
            for name in names:
                started = time.perf_counter()
                result = embed_files(models[name], paths, batch_size=8, progress=False)
                seconds = time.perf_counter() - started
                vectors[name] = result.embeddings.vision
                rows.append({"round": r, "backend": name, "items": len(paths), "seconds": seconds,
                             "items_per_s": len(paths) / seconds})
                logger.info("embed_files %-17s round %d  %d images  %6.2f items/s", name, r, len(paths),
                            len(paths) / seconds)
    cosine = torch.nn.functional.cosine_similarity(vectors["onnxruntime-int8"], vectors["torch-float32"])
    ratio = _ratios(rows, "items_per_s", "onnxruntime-int8", "torch-float32")
    logger.info("embed_files: onnxruntime int8 / torch float32: median %.2fx (%.2f-%.2f), min cosine %.5f",
                ratio["median"], ratio["min"], ratio["max"], float(cosine.min()))
    return {"what": "embed_files", "modality": "vision", "files": n_files, "rows": rows, "ratio": ratio,
            "min_cosine": float(cosine.min())}


def run_backends(args: Any, image: str) -> list[dict]:
    results = []
    modalities = args.modalities.split(",")
    for modality in modalities:
        clients = args.text_clients if modality == "text" else args.vision_clients
        requests = args.text_requests if modality == "text" else 1
        results.append(compare_servers(args.checkpoint, modality, args.rounds, clients, requests, image))
    if "vision" in modalities and args.files:
        results.append(compare_embed_files(args.checkpoint, args.rounds, args.files))
    return results
