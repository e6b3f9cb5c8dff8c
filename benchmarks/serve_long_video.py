"""``serve.py --long-video`` (issue 20.2): one-caption text latency while a 60-second video is embedded.

Makes a 60-second H.264 video at run time with PyAV from the sample images (dog, car and
bird, 20 s each; nothing is stored in the repo), then, for each ``--max-batch-gflops``
value (the bounded one, and one so high that the whole video is one encoder call, which
is how the server encoded it before bounded calls: "today"), starts one
``imagebind-sdk serve --modalities vision,text`` process and measures:

- idle: three clients, each sending one caption at a time (random think time 0.1-2 s,
  fixed seeds), ``--idle-requests`` captions in all: p50/p95 latency;
- during the video: the same clients while one ``/v1/embed`` request embeds the video:
  p50/p95/max latency of the captions sent before the video's answer;
- the video's encoder calls: their count and each call's duration (read from /metrics
  between calls: the worker runs one call at a time, polled every 20 ms), and the whole
  video request's latency.

The criterion: p95 during the video <= idle p95 + the longest bounded video call.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import re
import signal
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from serve import ASSETS, TEXTS, start

logger = logging.getLogger("benchmarks.serve")
SECONDS, FPS, WIDTH, HEIGHT = 60, 10, 320, 240
THINK_S = (0.1, 2.0)
CLIENTS = 3  # independent caption clients: more samples while one long call runs


def make_video(path: Path) -> None:
    """60 s of the sample images (20 s each), H.264 at 10 fps, 320x240."""
    import av
    import numpy as np
    from PIL import Image

    images = [np.asarray(Image.open(ASSETS / f"{name}_image.jpg").convert("RGB").resize((WIDTH, HEIGHT)))
              for name in ("dog", "car", "bird")]
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": str(FPS * 2)}
        for t in range(SECONDS * FPS):
            frame = np.roll(images[t * len(images) // (SECONDS * FPS)], t, axis=1)  # moving, not still
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _percentiles(latencies: list[float]) -> dict[str, Any]:
    ordered = sorted(latencies)
    if not ordered:
        return {"n": 0}
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(ordered), "p50_s": statistics.median(ordered), "p95_s": p95, "max_s": ordered[-1]}


async def _caption_client(http: httpx.AsyncClient, until: asyncio.Event | None, count: int, seed: int
                          ) -> list[float]:
    """One client: a caption, its answer, a random think time; ``count`` times, or until ``until``
    is set (a caption sent before that counts, however late its answer)."""
    rng, latencies = random.Random(seed), []
    while (until is None and len(latencies) < count) or (until is not None and not until.is_set()):
        started = time.perf_counter()
        r = await http.post("/vectorize", json={"texts": [f"{TEXTS[len(latencies) % len(TEXTS)]} {seed}"]})
        r.raise_for_status()
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(rng.uniform(*THINK_S))
    return latencies


async def _captions(http: httpx.AsyncClient, until: asyncio.Event | None, count: int, seed: int) -> list[float]:
    """``CLIENTS`` caption clients at once (``count`` captions in all when ``until`` is None)."""
    each = await asyncio.gather(*(_caption_client(http, until, -(-count // CLIENTS), seed * 100 + c)
                                  for c in range(CLIENTS)))
    return [latency for latencies in each for latency in latencies]


async def _video_calls(http: httpx.AsyncClient, done: asyncio.Event) -> list[float]:
    """Each video encoder call's duration: /metrics's sum and count grow by one call at a time."""
    pattern = re.compile(r'^imagebind_batch_seconds_(sum|count)\{kind="video"\} ([0-9.e+-]+)$', re.M)
    last, calls = (0.0, 0.0), []
    while True:
        finished = done.is_set()  # one more read after the video's answer: its last call
        found = dict(pattern.findall((await http.get("/metrics")).text))
        now = (float(found.get("sum", 0)), float(found.get("count", 0)))
        if now[1] > last[1]:
            calls.extend([(now[0] - last[0]) / (now[1] - last[1])] * int(now[1] - last[1]))  # >1: quick calls
            last = now
        if finished:
            return calls
        await asyncio.sleep(0.02)


async def _measure(url: str, video: str, idle_requests: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=3600) as http:
        await http.post("/vectorize", json={"texts": ["warm-up"], "images": [_image()]})  # both encoders once
        idle = await _captions(http, None, idle_requests, seed=1)
        done = asyncio.Event()
        poller = asyncio.create_task(_video_calls(http, done))
        started = time.perf_counter()
        embed = asyncio.create_task(http.post("/v1/embed", json={"video": [video]}))
        captions = asyncio.create_task(_captions(http, done, 0, seed=2))
        (await embed).raise_for_status()
        whole = time.perf_counter() - started
        done.set()
        during, calls = await captions, await poller
    return {"idle": _percentiles(idle), "during_video": _percentiles(during), "video_request_s": whole,
            "video_calls": len(calls), "video_call_s": calls, "longest_video_call_s": max(calls, default=0.0)}


def _image() -> str:
    return base64.b64encode((ASSETS / "dog_image.jpg").read_bytes()).decode()


def run_long_video(args: Any) -> dict[str, Any]:
    """The bounded server, then today's (the video in one call); one process each, one after the other."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.mp4"
        make_video(path)
        video = base64.b64encode(path.read_bytes()).decode()
        logger.info("made a %d-s video of %.1f MB", SECONDS, path.stat().st_size / 1e6)
    out: dict[str, Any] = {"video_seconds": SECONDS, "think_s": THINK_S}
    for name, gflops in (("bounded", args.gflops), ("today", 1e6)):
        proc, url = start(args.checkpoint, "vision,text", 32, ("--max-batch-gflops", str(gflops)))
        try:
            out[name] = {"max_batch_gflops": gflops, **asyncio.run(_measure(url, video, args.idle_requests))}
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(120)
        row = out[name]
        bound = row["idle"]["p95_s"] + row["longest_video_call_s"]
        row["criterion_met"] = row["during_video"].get("p95_s", float("inf")) <= bound
        logger.info("%s (%g GFLOPs): idle p50/p95 %.2f/%.2f s; during the video p50/p95 %s s (n=%d); video %.1f s "
                    "in %d calls, longest %.1f s; p95 <= idle p95 + longest call: %s", name, gflops,
                    row["idle"]["p50_s"], row["idle"]["p95_s"],
                    "/".join(f"{row['during_video'].get(k, float('nan')):.2f}" for k in ("p50_s", "p95_s")),
                    row["during_video"]["n"], row["video_request_s"], row["video_calls"],
                    row["longest_video_call_s"], row["criterion_met"])
    return out
