"""Serving benchmark: items/s and p50/p99 latency at several concurrencies, text and vision.

Starts ``imagebind-sdk serve`` as a subprocess per modality (text-only and vision-only
servers), drives it with N concurrent clients sending one item per request, and reports
the batching gain (items/s at the highest concurrency / at 1) and the text-only
server's peak RSS. ``--max-batch-size 1`` runs the same load one request at a time
(no cross-request batching), like the multi2vec-bind container.

    python benchmarks/serve.py --checkpoint /work/ib-huge --out benchmarks/results/serve.json

``--backends`` compares backends instead (issue 16): for text and for vision, a torch
float32 server and a ``--backend onnxruntime --quantize int8`` server run side by side
(one process each), and bursts of concurrent clients alternate between them round by
round, so drift of a shared machine hits both; then ``embed_files`` over images with
both backends in this process, alternating too. Cosines to torch float32 come from
the same items sent to both.

    python benchmarks/serve.py --checkpoint /work/ib-huge --backends --rounds 3 --out results/serve_backends.json

``--long-video`` (issue 20.2, ``serve_long_video.py``): one-caption text latency, idle and
while a 60-second video (made at run time) is embedded, with the video in bounded calls
of ``--gflops`` and, for comparison, in one call (the server before bounded calls).

    python benchmarks/serve.py --checkpoint /tmp/ib-huge --long-video --gflops 1024 --out results/serve_long_video.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

logger = logging.getLogger("benchmarks.serve")

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO.parent / "shared" / "assets"
TEXTS = ["a dog barking in the park", "a red car on a wet road at night", "a small bird on a branch", "rain"]
# Requests per client at each concurrency (vision is ~50x slower than text on a CPU).
PLAN = {"text": {1: 24, 8: 12, 32: 8}, "vision": {1: 3, 8: 1, 32: 1}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(checkpoint: str, modality: str, batch: int, options: tuple[str, ...] = (),
          ready_s: float = 360) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "imagebind_sdk", "serve", "--checkpoint", checkpoint, "--modalities", modality,
           "--port", str(port), "--max-batch-size", str(batch), "--log-level", "warning", "--max-wait-ms", "10",
           "--request-timeout", "3600", *options]
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(int(ready_s / 0.2)):
        try:
            if httpx.get(url + "/.well-known/ready", timeout=1).status_code == 204:
                return proc, url
        except httpx.TransportError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        time.sleep(0.2)
    raise RuntimeError("server not ready")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def body(modality: str, i: int, image: str) -> dict:
    return {"texts": [TEXTS[i % len(TEXTS)] + f" {i}"]} if modality == "text" else {"images": [image]}


async def drive(url: str, modality: str, concurrency: int, per_client: int, image: str) -> dict:
    latencies: list[float] = []
    errors: list[str] = []

    async def client(c: int, http: httpx.AsyncClient) -> None:
        for k in range(per_client):
            started = time.perf_counter()
            try:
                r = await http.post("/vectorize", json=body(modality, c * per_client + k, image))
            except httpx.TransportError as exc:  # a dropped connection: counted, not fatal to the burst
                errors.append(repr(exc))
                logger.warning("request failed: %r", exc)
                continue
            r.raise_for_status()
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=url, timeout=3600, limits=httpx.Limits(max_connections=concurrency)) as http:
        await http.post("/vectorize", json=body(modality, 0, image))  # warm-up
        started = time.perf_counter()
        await asyncio.gather(*(client(c, http) for c in range(concurrency)))
        wall = time.perf_counter() - started
    latencies.sort()
    return {"concurrency": concurrency, "items": len(latencies), "errors": errors, "items_per_s": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def run(checkpoint: str, modality: str, batch: int, image: str) -> dict:
    proc, url = start(checkpoint, modality, batch)
    try:
        rows = [asyncio.run(drive(url, modality, c, n, image)) for c, n in PLAN[modality].items()]
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    return {"modality": modality, "max_batch_size": batch, "peak_rss_mb": rss, "rows": rows,
            "batching_gain": rows[-1]["items_per_s"] / rows[0]["items_per_s"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--modalities", default="text,vision")
    parser.add_argument("--unbatched", action="store_true", help="also run with --max-batch-size 1")
    parser.add_argument("--backends", action="store_true",
                        help="torch float32 vs onnxruntime int8 servers side by side, then embed_files")
    parser.add_argument("--long-video", action="store_true",
                        help="caption latency while a 60-s video is embedded, bounded calls vs one call")
    parser.add_argument("--gflops", type=float, default=1024.0, help="--long-video: the bounded --max-batch-gflops")
    parser.add_argument("--idle-requests", type=int, default=15, help="--long-video: captions sent while idle")
    parser.add_argument("--rounds", type=int, default=3, help="--backends: alternating bursts per backend")
    parser.add_argument("--text-clients", type=int, default=32)
    parser.add_argument("--text-requests", type=int, default=4, help="per client and burst")
    parser.add_argument("--vision-clients", type=int, default=8)
    parser.add_argument("--files", type=int, default=8, help="--backends: images for embed_files")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    image = base64.b64encode((ASSETS / "dog_image.jpg").read_bytes()).decode()
    if args.long_video:
        from serve_long_video import run_long_video  # benchmarks/ is on sys.path: this script's folder

        results_long = run_long_video(args)
        if args.out:
            args.out.write_text(json.dumps(results_long, indent=2))
        return
    if args.backends:
        from serve_backends import run_backends  # benchmarks/ is on sys.path: this script's folder

        results = run_backends(args, image)
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))
        return
    results = []
    for modality in args.modalities.split(","):
        for batch in ([32, 1] if args.unbatched else [32]):
            result = run(args.checkpoint, modality, batch, image)
            results.append(result)
            for row in result["rows"]:
                logger.info("%-6s batch<=%-2d c=%-2d %4d items  %7.2f items/s  p50 %8.0f ms  p99 %8.0f ms",
                            modality, batch, row["concurrency"], row["items"], row["items_per_s"],
                            row["p50_ms"], row["p99_ms"])
            logger.info("%s batch<=%d: gain %.2fx, server peak RSS %.0f MB", modality, batch,
                        result["batching_gain"], result["peak_rss_mb"])
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
