"""API key, body limits, CORS, overload (503 + Retry-After) and timeouts (504) on a strict server."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from conftest import ASSETS
from .conftest import ServerProcess, b64

KEY = "s3cret-key"
ORIGIN = "http://app.example"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def strict(golden_dir):
    proc = ServerProcess("--api-key", KEY, "--max-request-mb", "4", "--max-queue", "2", "--request-timeout", "0.05",
                         "--cors-origin", ORIGIN).wait_ready()
    yield proc
    assert proc.stop() == 0


def test_api_key(strict):
    for path in ("/.well-known/live", "/.well-known/ready"):
        assert httpx.get(strict.url + path).status_code == 204
    for method, path in (("GET", "/meta"), ("POST", "/vectorize"), ("GET", "/metrics"), ("POST", "/v1/embed")):
        r = httpx.request(method, strict.url + path, json={})
        assert r.status_code == 401 and "API key" in r.json()["error"], path
        wrong = httpx.request(method, strict.url + path, json={}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
    assert httpx.get(strict.url + "/meta", headers=AUTH).status_code == 200
    openai_shape = httpx.post(strict.url + "/v1/embeddings", json={"input": "x"})
    assert openai_shape.status_code == 401 and "message" in openai_shape.json()["error"]


def test_body_limit(strict):
    big = b"x" * (5 * 1024 * 1024)
    r = httpx.post(strict.url + "/vectorize", content=big, headers=AUTH)
    assert r.status_code == 413 and "4 MB" in r.json()["error"]

    def chunks():  # no Content-Length: the server counts what streams in
        for _ in range(5):
            yield b"x" * (1024 * 1024)

    r = httpx.post(strict.url + "/vectorize", content=chunks(), headers=AUTH)
    assert r.status_code == 413
    assert httpx.get(strict.url + "/meta", headers=AUTH).status_code == 200


def test_cors_only_when_asked(strict, server):
    pre = httpx.options(strict.url + "/vectorize", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == ORIGIN
    plain = httpx.get(server.url + "/meta", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in plain.headers


def test_timeout_and_overload(strict):
    video = b64(ASSETS / "video" / "wind_noise.mp4")
    r = httpx.post(strict.url + "/vectorize", json={"video": [video]}, headers=AUTH, timeout=30)
    assert r.status_code == 504 and "timed out" in r.json()["error"]

    def post(_: int) -> httpx.Response:  # two items each: one admitted request fills the queue of 2
        return httpx.post(strict.url + "/vectorize", json={"texts": ["a"], "video": [video]}, headers=AUTH, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(16)))
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {503, 504} and 503 in statuses, statuses
    busy = next(a for a in answers if a.status_code == 503)
    assert int(busy.headers["Retry-After"]) >= 1 and "overloaded" in busy.json()["error"]
    assert httpx.get(strict.url + "/meta", headers=AUTH).status_code == 200
