"""Bounded calls and priority lanes on a real server: ``--max-batch-gflops 0.06`` holds one
video view of the tiny checkpoint (0.054 GFLOPs) or two audio clips (0.025 each), so a
video goes in 15 calls and an audio file in 2.

Parity: the split vectors equal the same request on a server that encodes each item in
one call (the session's default server) and ``ImageBind.embed``, within 1e-5 absolute
(float32 sums in another order). Lanes: a bulk request of many videos is being encoded
when a one-caption interactive request arrives; the caption goes at the next call, ahead
of the bulk views still queued (ordering read from /metrics counters, not from timings). Isolation: a video whose last
views are NaN fails only its own request, after its first views' calls succeeded.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import pytest
import torch

from conftest import ASSETS, TINY

from .conftest import ServerProcess, b64, httpx
from .test_isolation import _concurrently

TOL = 1e-5
VIDEO = ASSETS / "video" / "wind_noise.mp4"
AUDIO = ASSETS / "dog_audio.wav"
BULK_VIDEOS = 8  # 120 one-view calls (~0.6 s): most still queued when the caption arrives
PRIORITY = "X-ImageBind-Priority"


@pytest.fixture(scope="module")
def bounded(golden_dir):
    # Eight decoded videos hold 8 x 36 MB: above the default --max-inflight-mb.
    proc = ServerProcess("--max-batch-gflops", "0.06", "--max-wait-ms", "5", "--max-inflight-mb", "1024").wait_ready()
    yield proc
    assert proc.stop() == 0


def metric(url: str, name: str, label: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    found = re.search(rf"^imagebind_{name}\{{{label}\}} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def embed(url: str, body: dict, headers: dict | None = None) -> dict[str, torch.Tensor]:
    response = httpx.post(url + "/v1/embed", json={**body, "normalize": False}, headers=headers, timeout=120)
    assert response.status_code == 200, response.text
    return {kind: torch.tensor(rows) for kind, rows in response.json()["embeddings"].items()}


def test_split_video_and_audio_equal_one_call_and_the_library(bounded, server) -> None:
    from imagebind_sdk import ImageBind

    body = {"video": [b64(VIDEO), b64(VIDEO)], "audio": [b64(AUDIO)], "text": ["a dog"]}
    calls = {kind: metric(bounded.url, "batch_size_count", f'kind="{kind}"') for kind in ("video", "audio")}
    split = embed(bounded.url, body)
    # Two videos: 30 one-view calls; audio: 3 clips in calls of 2 + 1.
    assert metric(bounded.url, "batch_size_count", 'kind="video"') - calls["video"] == 30
    assert metric(bounded.url, "batch_size_count", 'kind="audio"') - calls["audio"] == 2
    one_call = embed(server.url, body)
    library = ImageBind.load(str(TINY), device="cpu").embed(
        video=[str(VIDEO), str(VIDEO)], audio=[str(AUDIO)], text=["a dog"], normalize=False)
    for kind in ("video", "audio", "text"):
        assert torch.allclose(split[kind], one_call[kind], atol=TOL, rtol=0), kind
        assert torch.allclose(split[kind], getattr(library, kind), atol=TOL, rtol=0), kind


def test_interactive_caption_goes_between_the_calls_of_bulk_videos(bounded) -> None:
    url = bounded.url
    caption_alone = embed(url, {"text": ["a dog barking"]})["text"]
    before = {lane: metric(url, "lane_calls_total", f'lane="{lane}"') for lane in ("bulk", "interactive")}
    waited = metric(url, "calls_waited_sum", 'lane="interactive"')
    bulk_answer: list[dict] = []
    bulk = threading.Thread(target=lambda: bulk_answer.append(
        embed(url, {"video": [b64(VIDEO)] * BULK_VIDEOS}, {PRIORITY: "bulk"})))
    bulk.start()
    deadline = time.monotonic() + 60
    while metric(url, "lane_calls_total", 'lane="bulk"') == before["bulk"]:  # bulk views are being encoded
        assert time.monotonic() < deadline, "the bulk request never reached the encoder"
        time.sleep(0.01)
    caption = embed(url, {"text": ["a dog barking"]})["text"]
    bulk_calls_then = metric(url, "lane_calls_total", 'lane="bulk"') - before["bulk"]
    bulk_running = bulk.is_alive()
    bulk.join(120)
    assert bulk_answer, "the bulk request failed"
    assert torch.allclose(caption, caption_alone, atol=TOL, rtol=0)
    # The caption was answered between the bulk views' calls (not after them), at the next call.
    assert bulk_running and bulk_calls_then < BULK_VIDEOS * 15, bulk_calls_then
    assert metric(url, "calls_waited_sum", 'lane="interactive"') - waited == 0
    assert metric(url, "lane_calls_total", 'lane="interactive"') - before["interactive"] == 1
    assert metric(url, "lane_calls_total", 'lane="bulk"') - before["bulk"] == BULK_VIDEOS * 15
    assert metric(url, "lane_queue_depth", 'lane="bulk"') == 0
    # Every bulk video got the vector the videos get alone (one video = 15 bounded calls).
    alone = embed(url, {"video": [b64(VIDEO)]})["video"]
    assert torch.allclose(bulk_answer[0]["video"], alone.expand(BULK_VIDEOS, -1), atol=TOL, rtol=0)


def test_priority_header_is_checked(bounded) -> None:
    bad = httpx.post(bounded.url + "/v1/embed", json={"text": ["a"]}, headers={PRIORITY: "urgent"}, timeout=30)
    assert bad.status_code == 400 and PRIORITY in bad.json()["error"] and "'urgent'" in bad.json()["error"]
    openai = httpx.post(bounded.url + "/v1/embeddings", json={"input": "a"}, headers={PRIORITY: "now"}, timeout=30)
    assert openai.status_code == 400 and PRIORITY in openai.json()["error"]["message"]
    calls = metric(bounded.url, "lane_calls_total", 'lane="bulk"')
    ok = httpx.post(bounded.url + "/vectorize", json={"texts": ["a"]}, headers={PRIORITY: "Bulk"}, timeout=30)
    assert ok.status_code == 200, ok.text
    assert metric(bounded.url, "lane_calls_total", 'lane="bulk"') == calls + 1


def _video(path: Path, frames: int, noisy_from: int) -> Path:
    """A 64x64 H.264 video at 10 fps: uniform gray frames, then random ones from ``noisy_from``."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            rgb = np.full((64, 64, 3), 128, np.uint8) if i < noisy_from else rng.integers(0, 256, (64, 64, 3), np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def poisoned_vision(tmp_path_factory: pytest.TempPathFactory, golden_dir) -> Path:
    """The tiny checkpoint with two neighbouring weights of one vision patch filter at +-1e24:
    they cancel on uniform frames, and overflow LayerNorm wherever neighbouring pixels differ."""
    from safetensors.torch import load_file, save_file

    folder = tmp_path_factory.mktemp("poisoned_vision")
    shutil.copy(TINY / "config.json", folder / "config.json")
    tensors = load_file(str(TINY / "model.safetensors"))
    (name,) = [k for k in tensors if k.startswith("modality_preprocessors.vision") and tensors[k].ndim == 5]
    tensors[name][0, 0, 0, 0, :2] = torch.tensor([1e24, -1e24])
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


def test_a_video_failing_in_a_later_call_fails_only_its_own_request(poisoned_vision: Path, tmp_path: Path) -> None:
    from imagebind_sdk import ImageBind

    gray = _video(tmp_path / "gray.mp4", 30, noisy_from=30)
    mixed = _video(tmp_path / "mixed.mp4", 100, noisy_from=60)  # views 9-14 (the last two clips) are NaN
    # Two views a call (0.108 GFLOPs): the mixed video's first calls succeed, its fifth fails.
    proc = ServerProcess("--checkpoint", str(poisoned_vision), "--max-batch-gflops", "0.12", "--max-wait-ms", "200",
                         "--modalities", "vision", "--max-inflight-mb", "1024").wait_ready()
    try:
        alone = embed(proc.url, {"video": [b64(gray)]})["video"]
        calls = metric(proc.url, "batch_size_count", 'kind="video"')
        bad, good, skipping = _concurrently(proc.url, [
            ("/v1/embed", {"video": [b64(mixed)], "normalize": False}),
            ("/v1/embed", {"video": [b64(gray)], "normalize": False}),
            ("/v1/embed", {"video": [b64(mixed), b64(gray)], "normalize": False, "on_error": "skip"}),
        ])
        video_calls = metric(proc.url, "batch_size_count", 'kind="video"') - calls
    finally:
        assert proc.stop() == 0
    assert bad.status_code == 400 and re.match(r"video\[0\]: the embedding is not finite", bad.json()["error"])
    assert good.status_code == 200, good.text
    assert torch.allclose(torch.tensor(good.json()["embeddings"]["video"]), alone, atol=TOL, rtol=0)
    assert skipping.status_code == 200, skipping.text
    assert [s["index"] for s in skipping.json()["skipped"]] == [0]
    assert torch.allclose(torch.tensor(skipping.json()["embeddings"]["video"]), alone, atol=TOL, rtol=0)
    library = ImageBind.load(str(poisoned_vision), device="cpu", modalities=["vision"]).embed(
        video=[str(gray)], normalize=False)
    assert torch.allclose(alone, library.video, atol=TOL, rtol=0)
    # Two gray videos in 8 calls each (2 views a call), two mixed ones in 5 each: a failed video's
    # other views are dropped (encoding them would take 2 x 8 + 2 x 8 = 32 calls).
    assert video_calls <= 2 * 8 + 2 * 5, video_calls
