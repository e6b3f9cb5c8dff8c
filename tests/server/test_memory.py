"""Server memory follows --max-inflight-mb: small uploads that decode big, concurrent big
bodies and huge texts are admitted by what they hold (RSS of a server process we started)."""

from __future__ import annotations

import base64
import concurrent.futures
import threading
import time
from pathlib import Path

import httpx
import pytest

from .conftest import ServerProcess

MB = 1024 * 1024
GROWTH_LIMIT = 300 * MB  # the goal for any request under 1 MB


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


class PeakRss:
    """Peak RSS growth of a process during a ``with`` block (resets its high-water mark)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.growth = 0

    def __enter__(self) -> "PeakRss":
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # VmHWM := VmRSS
        self.start = _status(self.pid)["VmRSS"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.growth = _status(self.pid)["VmHWM"] - self.start


@pytest.fixture(scope="module")
def one_frame_mp4() -> str:
    encoders = pytest.importorskip("torchcodec.encoders", reason="pip install torchcodec (and apt install ffmpeg)")
    import torch

    data = encoders.VideoEncoder(torch.zeros(1, 3, 16, 16, dtype=torch.uint8), frame_rate=1).to_tensor(format="mp4")
    return base64.b64encode(data.numpy().tobytes()).decode()


def test_small_upload_decoding_to_gigabytes_is_refused(server, client, one_frame_mp4):
    body = {"video": [one_frame_mp4] * 40}  # 60 KB that decodes to 40 x 18 MB
    with PeakRss(server.proc.pid) as rss:
        r = client.post("/v1/embed", json=body)
    assert r.status_code == 413, r.text[:300]
    assert "--max-inflight-mb" in r.json()["error"] and "40 video" in r.json()["error"]
    assert rss.growth < GROWTH_LIMIT, f"{rss.growth / MB:.0f} MB"
    with PeakRss(server.proc.pid) as rss:  # what fits the budget is served
        r = client.post("/v1/embed", json={"video": [one_frame_mp4] * 3})
    assert r.status_code == 200 and len(r.json()["embeddings"]["video"]) == 3
    assert rss.growth < GROWTH_LIMIT, f"{rss.growth / MB:.0f} MB"


@pytest.fixture(scope="module")
def tight(golden_dir):
    proc = ServerProcess("--modalities", "text", "--max-request-mb", "24", "--max-inflight-mb", "80").wait_ready()
    yield proc
    assert proc.stop() == 0, proc.proc.stdout.read()[-3000:]


def _padded(size: int) -> bytes:
    """A valid JSON body of ``size`` bytes: one text and whitespace."""
    head = b'{"text": ["a dog"]'
    return head + b" " * (size - len(head) - 1) + b"}"


def test_concurrent_big_bodies_are_not_all_held(tight):
    slow_body = _padded(20 * MB)
    inside = threading.Event()

    def slowly():  # holds its reservation while it streams in
        for start in range(0, len(slow_body), MB):
            yield slow_body[start:start + MB]
            inside.set()
            time.sleep(0.3)

    headers = {"Content-Type": "application/json", "Content-Length": str(len(slow_body))}
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        slow = pool.submit(httpx.post, tight.url + "/v1/embed", content=slowly(), headers=headers, timeout=120)
        assert inside.wait(30)
        others = [pool.submit(httpx.post, tight.url + "/v1/embed", content=_padded(20 * MB),
                              headers={"Content-Type": "application/json"}, timeout=120) for _ in range(5)]
        answers = [f.result() for f in others]
        assert slow.result().status_code == 200
    for answer in answers:  # 3 x 20 MB are reserved by the slow one: 20 MB free of 80
        assert answer.status_code == 503 and int(answer.headers["Retry-After"]) >= 1, answer.text[:300]
        assert "--max-inflight-mb" in answer.json()["error"]
    assert httpx.post(tight.url + "/v1/embed", content=_padded(20 * MB), timeout=60,
                      headers={"Content-Type": "application/json"}).status_code == 200  # all released


def test_huge_text_costs_its_head(tight):
    text = "".join(chr(ord("a") + (i * 7919) % 26) for i in range(20 * MB))  # one 20 MB word
    with PeakRss(tight.proc.pid) as rss:
        started = time.monotonic()
        r = httpx.post(tight.url + "/v1/embed", json={"text": [text]}, timeout=120)
        took = time.monotonic() - started
    assert r.status_code == 200, r.text[:300]
    assert took < 30 and rss.growth < 3 * 21 * MB + 100 * MB, (took, rss.growth / MB)
