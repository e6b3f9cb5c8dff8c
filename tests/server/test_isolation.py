"""Per-item isolation: concurrent requests share an encoder batch (``--max-wait-ms 500``);
an item of one request whose vector is not finite fails only that request, with a 400
naming its own field and index, and every other request gets the vectors it gets alone.

The bad items are real: IMU logs of +-3e38 (finite, but they overflow inside the
encoder) and, for the text-only OpenAI route, a checkpoint whose token embedding for
"zebra" is 3e38 (finite weights, so the server loads it; "zebra" overflows LayerNorm).
"""

from __future__ import annotations

import base64
import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import TINY

from .conftest import ServerProcess, httpx

MAX_WAIT_MS = "500"
TOL = 1e-5


def _imu_csv(value: float) -> str:
    """A 2000-step IMU log alternating +-value on all six channels, base64."""
    header = "gyro_x,gyro_y,gyro_z,accl_x,accl_y,accl_z\n"
    lines = [",".join([repr(value if i % 2 else -value)] * 6) for i in range(2000)]
    return base64.b64encode((header + "\n".join(lines) + "\n").encode()).decode("ascii")


GOOD = _imu_csv(0.5)
BAD = _imu_csv(3e38)


@pytest.fixture(scope="module")
def poisoned_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny checkpoint with the text token embedding of "zebra" set to 3e38."""
    from safetensors.torch import load_file, save_file

    from imagebind_sdk.preprocess.tokenizer import default_tokenizer

    folder = tmp_path_factory.mktemp("poisoned")
    shutil.copy(TINY / "config.json", folder / "config.json")
    tensors = load_file(str(TINY / "model.safetensors"))
    (name,) = [k for k in tensors if "token_embedding" in k]
    token = int(default_tokenizer()(["zebra"])[0, 1])  # the token right after start-of-text
    tensors[name][token] = 3e38
    save_file(tensors, str(folder / "model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def batching_server(poisoned_checkpoint: Path):
    proc = ServerProcess("--checkpoint", str(poisoned_checkpoint), "--max-wait-ms", MAX_WAIT_MS).wait_ready()
    yield proc
    assert proc.stop() == 0


def _concurrently(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """POST every (path, json) at the same moment from its own thread."""
    start = threading.Barrier(len(calls))
    out: list[Any] = [None] * len(calls)

    def post(i: int, path: str, body: dict[str, Any]) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            start.wait()
            out[i] = client.post(path, json=body)

    threads = [threading.Thread(target=post, args=(i, p, b)) for i, (p, b) in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _batches(url: str, kind: str) -> int:
    """How many encoder calls the server made for ``kind`` so far."""
    text = httpx.get(url + "/metrics", timeout=10).text
    found = re.search(rf'imagebind_batch_size_count\{{kind="{kind}"\}} ([0-9.e+]+)', text)
    return int(float(found.group(1))) if found else 0


def _alone(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    response = httpx.post(url + path, json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response


def _close(got: list[list[float]], want: list[list[float]]) -> None:
    assert torch.allclose(torch.tensor(got), torch.tensor(want), atol=TOL, rtol=0)


class Burst:
    """The calls at once; :meth:`shared` says whether they were encoded in one batch (what
    this file is about; checked after the answers, as a failed batch is not counted)."""

    def __init__(self, url: str, kind: str, calls: list[tuple[str, dict[str, Any]]]) -> None:
        self.url, self.kind = url, kind
        self.before = _batches(url, kind)
        self.responses = _concurrently(url, calls)

    def shared(self) -> bool:
        return _batches(self.url, self.kind) - self.before == 1


def test_bad_imu_fails_only_its_own_request(batching_server: ServerProcess) -> None:
    """The reported case: /v1/embed bad + /v1/embed good + /vectorize good, in one batch."""
    url = batching_server.url
    # Alone first: also warms the server up, so the burst's requests reach the queue together.
    embed_alone = _alone(url, "/v1/embed", {"imu": [GOOD]}).json()["embeddings"]["imu"]
    vectorize_alone = _alone(url, "/vectorize", {"imu": [GOOD]}).json()["imuVectors"]
    burst = Burst(url, "imu", [
        ("/v1/embed", {"imu": [GOOD, BAD]}),
        ("/v1/embed", {"imu": [GOOD]}),
        ("/vectorize", {"imu": [GOOD]}),
    ])
    bad, good, vectorize = burst.responses
    assert bad.status_code == 400, bad.text
    assert re.match(r"imu\[1\]: the embedding is not finite", bad.json()["error"]), bad.json()
    assert good.status_code == 200, good.text
    assert vectorize.status_code == 200, vectorize.text
    _close(good.json()["embeddings"]["imu"], embed_alone)
    _close(vectorize.json()["imuVectors"], vectorize_alone)
    assert burst.shared(), "the concurrent requests did not share one encoder batch"


def test_bad_item_in_vectorize(batching_server: ServerProcess) -> None:
    url = batching_server.url
    alone = _alone(url, "/vectorize", {"imu": [GOOD, GOOD]}).json()["imuVectors"]
    burst = Burst(url, "imu", [
        ("/vectorize", {"texts": ["a dog"], "imu": [GOOD, GOOD, BAD]}),
        ("/vectorize", {"imu": [GOOD, GOOD]}),
    ])
    bad, good = burst.responses
    assert bad.status_code == 400, bad.text
    assert re.match(r"imu\[2\]: the embedding is not finite", bad.json()["error"]), bad.json()
    assert good.status_code == 200, good.text
    _close(good.json()["imuVectors"], alone)
    assert burst.shared(), "the concurrent requests did not share one encoder batch"


def test_bad_item_in_zero_shot(batching_server: ServerProcess) -> None:
    url = batching_server.url
    body = {"labels": ["walking", "running"], "imu": [GOOD]}
    alone = _alone(url, "/v1/zero-shot", body).json()  # also caches the labels: the burst's items meet at once
    embed_alone = _alone(url, "/v1/embed", {"imu": [GOOD]}).json()["embeddings"]["imu"]
    burst = Burst(url, "imu", [
        ("/v1/zero-shot", {"labels": ["walking", "running"], "imu": [BAD, GOOD]}),
        ("/v1/zero-shot", body),
        ("/v1/embed", {"imu": [BAD, GOOD], "on_error": "skip"}),
    ])
    bad, good, skipping = burst.responses
    assert bad.status_code == 400, bad.text
    assert re.match(r"imu\[0\]: the embedding is not finite", bad.json()["error"]), bad.json()
    assert good.status_code == 200, good.text
    _close(good.json()["probabilities"], alone["probabilities"])
    assert skipping.status_code == 200, skipping.text  # on_error=skip: the bad item is listed, not fatal
    assert [(s["index"], s["kind"]) for s in skipping.json()["skipped"]] == [(0, "imu")]
    assert re.match(r"imu\[0\]: the embedding is not finite", skipping.json()["skipped"][0]["error"])
    _close(skipping.json()["embeddings"]["imu"], embed_alone)
    assert burst.shared(), "the concurrent requests did not share one encoder batch"


def test_bad_text_in_openai_embeddings(batching_server: ServerProcess) -> None:
    url = batching_server.url
    good_body = {"input": ["a dog", "a cat"], "encoding_format": "float"}
    alone = _alone(url, "/v1/embeddings", good_body).json()
    native_alone = _alone(url, "/v1/embed", {"text": ["a dog"]}).json()["embeddings"]["text"]
    burst = Burst(url, "text", [
        ("/v1/embeddings", {"input": ["a bird", "a zebra"], "encoding_format": "float"}),
        ("/v1/embeddings", good_body),
        ("/v1/embed", {"text": ["a dog"]}),
    ])
    bad, good, native = burst.responses
    assert bad.status_code == 400, bad.text
    error = bad.json()["error"]  # OpenAI's error shape
    assert re.match(r"input\[1\]: the embedding is not finite", error["message"]), error
    assert error["type"] == "invalid_request_error"
    assert good.status_code == 200, good.text
    _close([d["embedding"] for d in good.json()["data"]], [d["embedding"] for d in alone["data"]])
    assert native.status_code == 200, native.text
    _close(native.json()["embeddings"]["text"], native_alone)
    assert burst.shared(), "the concurrent requests did not share one encoder batch"
