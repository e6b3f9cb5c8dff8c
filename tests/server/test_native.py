"""Native /v1/embed (JSON and multipart), /v1/zero-shot, OpenAI /v1/embeddings, /metrics."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

from conftest import ASSETS
from .conftest import b64

DOG, CAR = ASSETS / "dog_image.jpg", ASSETS / "car_image.jpg"


def close(got, ref: torch.Tensor, tol: float = 1e-5) -> bool:
    got = torch.tensor(got, dtype=torch.float32)
    return got.shape == ref.shape and float((got - ref).abs().max()) <= tol * max(1.0, float(ref.abs().max()))


def test_embed_json_matches_sdk(client, tiny_model):
    r = client.post("/v1/embed", json={"text": ["a dog", "a car"], "vision": [{"b64": b64(DOG)}, b64(CAR)],
                                       "audio": [{"b64": b64(ASSETS / "dog_audio.wav")}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dim"] == 32 and body["skipped"] == [] and body["model"]
    ref = tiny_model.embed(text=["a dog", "a car"], vision=[DOG, CAR], audio=[ASSETS / "dog_audio.wav"])
    for kind in ("text", "vision", "audio"):
        assert close(body["embeddings"][kind], ref[kind])
    raw = client.post("/v1/embed", json={"text": "a dog", "normalize": False}).json()
    assert close(raw["embeddings"]["text"], tiny_model.embed(text="a dog", normalize=False).text)


def test_embed_multipart(client, tiny_model):
    with open(DOG, "rb") as f:
        r = client.post("/v1/embed", data={"text": "a dog"}, files=[("vision", ("dog.jpg", f, "image/jpeg"))])
    assert r.status_code == 200, r.text
    ref = tiny_model.embed(text="a dog", vision=DOG)
    assert close(r.json()["embeddings"]["vision"], ref.vision) and close(r.json()["embeddings"]["text"], ref.text)
    bad = client.post("/v1/embed", data={"vision": "not a file"})
    assert bad.status_code == 400 and "vision[0]" in bad.json()["error"]


def test_embed_skip_and_errors(client):
    r = client.post("/v1/embed", json={"vision": [b64(DOG), b64(ASSETS / "imu" / "imu1_2k.csv")], "on_error": "skip"})
    assert r.status_code == 200
    assert len(r.json()["embeddings"]["vision"]) == 1 and r.json()["skipped"][0]["index"] == 1
    assert client.post("/v1/embed", json={"vision": [{"url": "http://example.com/a.jpg"}]}).status_code == 400
    assert "unknown fields" in client.post("/v1/embed", json={"pictures": []}).json()["error"]
    assert "nothing to embed" in client.post("/v1/embed", json={}).json()["error"]


def test_zero_shot_matches_sdk(client, tiny_model):
    labels = ["dog", "car", "bird"]
    r = client.post("/v1/zero-shot", json={"labels": labels, "audio": [b64(ASSETS / "dog_audio.wav")], "top_k": 2})
    assert r.status_code == 200, r.text
    ref = tiny_model.zero_shot(labels, audio=[ASSETS / "dog_audio.wav"])
    assert torch.allclose(torch.tensor(r.json()["probabilities"]), ref.probs.float(), atol=1e-5)
    assert len(r.json()["results"][0]["top"]) == 2
    bad = client.post("/v1/zero-shot", json={"labels": labels, "text": ["x"]})
    assert bad.status_code == 400 and "exactly one kind" in bad.json()["error"]


def test_openai_client(server, tiny_model):
    openai = pytest.importorskip("openai", reason="pip install openai")
    api = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    texts = ["a dog", "a car on the road"]
    ref = tiny_model.embed(text=texts).text
    for encoding in ("float", "base64"):
        out = api.embeddings.create(input=texts, model="imagebind", encoding_format=encoding)
        assert [d.index for d in out.data] == [0, 1] and out.usage.prompt_tokens > 4
        got = [d.embedding for d in out.data]
        if encoding == "base64":  # asked for explicitly, the client hands the strings over as they are
            got = [np.frombuffer(base64.b64decode(g), dtype="<f4").tolist() for g in got]
        assert close(got, ref)
    default = api.embeddings.create(input="a dog", model="imagebind")  # the client's default: base64
    assert close([default.data[0].embedding], ref[:1])
    with pytest.raises(openai.BadRequestError, match="token arrays"):
        api.embeddings.create(input=[[1, 2, 3]], model="imagebind")


def test_metrics(client):
    client.post("/v1/embed", json={"text": ["a", "b"]})
    text = client.get("/metrics").text
    for name in ('imagebind_requests_total{endpoint="/v1/embed",status="200"}', 'imagebind_items_total{kind="text"}',
                 "imagebind_batch_size_bucket", "imagebind_queue_depth", "imagebind_request_seconds_bucket"):
        assert name in text, name
