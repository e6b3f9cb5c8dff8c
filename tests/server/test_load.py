"""Load: 32 clients x 25 mixed requests answer as if served alone; SIGTERM during load loses nothing."""

from __future__ import annotations

import asyncio
import random
import re
import time

import httpx
import numpy as np
import torch

from conftest import ASSETS
from .conftest import ServerProcess, b64

CLIENTS, REQUESTS_EACH = 32, 25
REL_TOL = 1e-5


def _requests() -> list[tuple[str, dict]]:
    dog, car, bird = (b64(ASSETS / f"{n}_image.jpg") for n in ("dog", "car", "bird"))
    return [
        ("/vectorize", {"texts": ["A dog.", "A car"]}),
        ("/vectorize", {"images": [dog]}),
        ("/vectorize", {"texts": ["a bird singing"], "images": [car, bird]}),
        ("/v1/embed", {"text": ["one", "two", "three"], "normalize": False}),
        ("/vectorize", {"imu": [b64(ASSETS / "imu" / "imu1_2k.csv")]}),
        ("/vectorize", {"audio": [b64(ASSETS / "dog_audio.wav")], "texts": ["barking"]}),
        ("/v1/embed", {"text": ["a dog", "a much longer text about a car on a road"], "vision": [bird]}),
        ("/v1/embeddings", {"input": ["hello", "a car"], "model": "imagebind", "encoding_format": "float"}),
    ]


def _vectors(path: str, body: dict) -> list[torch.Tensor]:
    if path == "/v1/embeddings":
        return [torch.tensor([d["embedding"] for d in body["data"]])]
    values = body["embeddings"].values() if path == "/v1/embed" else body.values()
    return [torch.tensor(v, dtype=torch.float32).reshape(len(v), -1) for v in values if v]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(x.shape == y.shape and float((x - y).abs().max()) <= REL_TOL * max(1.0, float(y.abs().max()))
               for x, y in zip(a, b))


def test_concurrent_mixed_load(server, client):
    requests = _requests()
    alone = [_vectors(p, client.post(p, json=b).json()) for p, b in requests]

    async def one_client(seed: int, http: httpx.AsyncClient) -> list[str]:
        rng, problems = random.Random(seed), []
        for _ in range(REQUESTS_EACH):
            k = rng.randrange(len(requests))
            r = await http.post(requests[k][0], json=requests[k][1])
            if r.status_code != 200:
                problems.append(f"{requests[k][0]} -> {r.status_code} {r.text[:200]}")
            elif not _same(_vectors(requests[k][0], r.json()), alone[k]):
                problems.append(f"request {k}: differs from the same request served alone")
        return problems

    async def run() -> list[str]:
        limits = httpx.Limits(max_connections=CLIENTS)
        async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as http:
            results = await asyncio.gather(*(one_client(seed, http) for seed in range(CLIENTS)))
        return [p for problems in results for p in problems]

    assert asyncio.run(run()) == []
    metrics = client.get("/metrics").text
    sizes = re.search(r'imagebind_batch_size_sum\{kind="text"\} ([0-9.e+]+)', metrics)
    calls = re.search(r'imagebind_batch_size_count\{kind="text"\} ([0-9.e+]+)', metrics)
    assert float(sizes.group(1)) / float(calls.group(1)) > 1.0  # concurrent items did share batches


def test_sigterm_drains_in_flight_requests(golden_dir):
    # Six videos at once hold 6 x 72 MB: more than the default --max-inflight-mb (this test is about draining).
    proc = ServerProcess("--shutdown-timeout", "60", "--max-inflight-mb", "1024").wait_ready()
    body = {"texts": ["A dog."], "video": [b64(ASSETS / "video" / "wind_noise.mp4")]}
    alone = httpx.post(proc.url + "/vectorize", json=body, timeout=60).json()

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=proc.url, timeout=120) as http:
            tasks = [asyncio.create_task(http.post("/vectorize", json=body)) for _ in range(6)]
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:  # wait until all six are inside the server
                text = (await http.get("/metrics")).text
                if float(re.search(r"imagebind_requests_in_flight ([0-9.]+)", text).group(1)) >= 7:
                    break
                await asyncio.sleep(0.02)
            proc.proc.send_signal(15)
            return await asyncio.gather(*tasks)

    answers = asyncio.run(run())
    assert [a.status_code for a in answers] == [200] * 6
    # Six concurrent videos share encoder batches: float rounding only (<= 1e-5 relative).
    expected = np.asarray(alone["videoVectors"])
    for a in answers:
        got = np.asarray(a.json()["videoVectors"])
        assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    assert proc.proc.wait(60) == 0
    try:
        refused = httpx.get(proc.url + "/.well-known/live", timeout=2).status_code
    except httpx.TransportError:
        refused = None
    assert refused is None


def test_idle_keep_alive_connection_is_not_closed_under_the_client(server):
    """The cause of the dropped connections under load: uvicorn closed idle keep-alive
    connections after 5 s, exactly httpx's own idle expiry, so a client reusing one at
    that moment had it reset. The server now keeps them longer than clients do."""
    import socket

    request = (f"GET /.well-known/live HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(request)
        assert sock.recv(4096).startswith(b"HTTP/1.1 204")
        time.sleep(httpx.Limits().keepalive_expiry + 1)  # idle past the client's expiry
        sock.sendall(request)
        assert sock.recv(4096).startswith(b"HTTP/1.1 204")  # still served on the same connection
