"""``serve --cache-mb``: cached answers equal fresh ones bit for bit and the cache keeps its bound;
``/v1/embed`` ``encoding``: compact vectors with the server's fixed calibration."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from conftest import ASSETS
from .conftest import ServerProcess, b64, httpx

from imagebind_sdk.server.cache import ENTRY_OVERHEAD
from imagebind_sdk.vectors.compact import CALIBRATION_PROMPTS, calibrate, dequantize, quantize

CACHE_MB = 0.004  # 4194 bytes: ten entries of the tiny model's 32-d float32 vectors (128 + 256 bytes)
BOUND = int(CACHE_MB * 1024 * 1024)


@pytest.fixture(scope="module")
def cached():
    proc = ServerProcess("--max-wait-ms", "5", "--cache-mb", str(CACHE_MB)).wait_ready()
    with httpx.Client(base_url=proc.url, timeout=60) as c:
        yield c
    assert proc.stop() == 0


def metric(client, name: str, labels: str = "") -> float:
    text = client.get("/metrics").text
    found = re.search(rf"^imagebind_{name}{re.escape(labels)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_cached_answer_equals_fresh_bit_for_bit(cached):
    body = {"text": ["a dog", "a car"], "vision": [b64(ASSETS / "dog_image.jpg")]}
    hits0, misses0 = metric(cached, "cache_hits_total", '{kind="text"}'), metric(cached, "cache_misses_total", '{kind="text"}')
    first = cached.post("/v1/embed", json=body).json()
    encoded = metric(cached, "items_total", '{kind="text"}')
    again = cached.post("/v1/embed", json=body).json()
    assert metric(cached, "items_total", '{kind="text"}') == encoded  # answered before the engine
    assert again["embeddings"] == first["embeddings"]  # float32 values survive JSON exactly
    assert metric(cached, "cache_hits_total", '{kind="text"}') == hits0 + 2
    assert metric(cached, "cache_misses_total", '{kind="text"}') == misses0 + 2
    assert metric(cached, "cache_hits_total", '{kind="vision"}') >= 1
    # a request mixing a cached and a new item keeps its order; normalize is part of the key
    mixed = cached.post("/v1/embed", json={"text": ["a bird", "a car"]}).json()["embeddings"]["text"]
    assert mixed[1] == first["embeddings"]["text"][1]
    raw = cached.post("/v1/embed", json={"text": ["a car"], "normalize": False}).json()["embeddings"]["text"][0]
    assert raw != first["embeddings"]["text"][1]
    # openai usage counts tokens of cached texts too
    usage = [cached.post("/v1/embeddings", json={"input": ["a red kite"]}).json()["usage"] for _ in range(2)]
    assert usage[0] == usage[1] and usage[0]["prompt_tokens"] > 0


def test_cache_never_grows_past_its_bound(cached):
    texts = [f"caption number {i}" for i in range(40)]
    for start in range(0, 40, 8):
        assert cached.post("/v1/embed", json={"text": texts[start:start + 8]}).status_code == 200
        assert 0 < metric(cached, "cache_bytes") <= BOUND
    assert metric(cached, "cache_entries") == BOUND // (32 * 4 + ENTRY_OVERHEAD)
    misses = metric(cached, "cache_misses_total", '{kind="text"}')
    cached.post("/v1/embed", json={"text": [texts[0]]})  # evicted long ago (least recently used)
    assert metric(cached, "cache_misses_total", '{kind="text"}') == misses + 1


def test_bad_item_is_not_cached_and_named(cached):
    body = {"vision": [b64(ASSETS / "dog_image.jpg"), b64(ASSETS / "imu" / "imu1_2k.csv")]}
    for _ in range(2):
        r = cached.post("/v1/embed", json=body)
        assert r.status_code == 400 and "vision[1]" in r.json()["error"]


def test_encodings(cached, tiny_model):
    texts = ["a dog", "the sound of rain"]
    ref = tiny_model.embed(text=texts).text
    ranges = calibrate(lambda t: tiny_model.embed(text=t).text)
    answers = {}
    for encoding in ("float16", "int8", "uint8", "binary", "ubinary"):
        r = cached.post("/v1/embed", json={"text": texts, "encoding": encoding})
        assert r.status_code == 200, r.text
        answers[encoding] = body = r.json()
        got = torch.tensor(body["embeddings"]["text"])
        expected = quantize(ref, encoding, ranges)
        assert body["encoding"] == encoding and got.shape == expected.shape
        assert body["packed_dim"] == (4 if "binary" in encoding else 32)
        if encoding.endswith("int8"):
            assert (got - expected.int()).abs().max() <= 1  # one step at most (server vs SDK rounding)
            error = dequantize(got.to(expected.dtype), encoding, ranges).sub(ref).abs()
            inside = (ref >= ranges.low) & (ref <= ranges.high)  # outside the calibrated range values clip
            assert (error[inside] <= 1.5 * ((ranges.high - ranges.low) / 255).expand_as(ref)[inside]).all()
    binary = np.array(answers["binary"]["embeddings"]["text"]) + 128
    assert (binary == np.array(answers["ubinary"]["embeddings"]["text"])).all()
    bits = np.unpackbits(binary.astype(np.uint8), axis=-1)
    assert ((bits == 1) == (ref.numpy() > 0))[ref.abs().numpy() > 1e-4].all()
    # the calibration is fixed per server: another request reports the same one
    other = cached.post("/v1/embed", json={"text": ["something else"], "encoding": "int8"}).json()
    assert other["calibration"] == answers["int8"]["calibration"]
    assert answers["int8"]["calibration"]["sha256"] and len(CALIBRATION_PROMPTS) == 128


def test_encoding_errors(cached):
    r = cached.post("/v1/embed", json={"text": ["a"], "encoding": "int4"})
    assert r.status_code == 400 and "encoding" in r.json()["error"] and "'int8'" in r.json()["error"]
    r = cached.post("/v1/embed", json={"text": ["a"], "encoding": "int8", "normalize": False})
    assert r.status_code == 400 and "normalize" in r.json()["error"]
    r = cached.post("/v1/embed", data={"text": "a", "encoding": "ubinary"})
    assert r.status_code == 200 and r.json()["packed_dim"] == 4


def test_given_ranges_without_the_text_encoder(tiny_model, tmp_path):
    """``serve --ranges FILE``: int8 with the user's ranges, even with no text encoder to calibrate on."""
    ranges = calibrate(tiny_model)
    wide = type(ranges)(ranges.low * 2, ranges.high * 2, "twice the calibration")  # proves the file is used
    wide.save(tmp_path / "wide.json")
    proc = ServerProcess("--modalities", "vision", "--ranges", str(tmp_path / "wide.json")).wait_ready()
    try:
        body = {"vision": [b64(ASSETS / "dog_image.jpg")], "encoding": "int8"}
        answer = httpx.post(proc.url + "/v1/embed", json=body, timeout=60).json()
        assert answer["calibration"] == {"source": "twice the calibration", "sha256": wide.digest}
        expected = quantize(tiny_model.embed(vision=[ASSETS / "dog_image.jpg"]).vision, "int8", wide)
        assert (torch.tensor(answer["embeddings"]["vision"]) - expected.int()).abs().max() <= 1
        r = httpx.post(proc.url + "/v1/embed", json={**body, "encoding": "uint8", "model": "other"}, timeout=60)
        assert r.status_code == 404  # unknown model names stay unknown
    finally:
        assert proc.stop() == 0


def test_bad_ranges_option_is_a_usage_error(tmp_path, capsys):
    from imagebind_sdk.cli import main

    (tmp_path / "short.json").write_text('{"low": [0.0], "high": [1.0]}')
    assert main(["serve", "--ranges", str(tmp_path / "missing.json"), "--port", "0"]) == 2
    assert "missing.json: cannot read int8/uint8 ranges" in capsys.readouterr().err
    assert main(["serve", "--ranges", f"a={tmp_path / 'short.json'}", "--ranges", f"a={tmp_path / 'short.json'}",
                 "--port", "0"]) == 2
    assert "--ranges: two files for 'a'" in capsys.readouterr().err
