"""``serve --adapter``: a base and its LoRA adapters side by side (a ``model`` field per
request), never mixed in one encoder batch; and the ``text_overflow`` request field."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from conftest import ASSETS, TINY
from .conftest import ServerProcess, b64, httpx

ADAPTER = Path(__file__).resolve().parents[1] / "lora" / "data" / "adapter"  # ImageBind-LoRA files, postfix _golden
DOG, CAR = ASSETS / "dog_image.jpg", ASSETS / "car_image.jpg"
TEXTS = ["a dog", "a car on the road", "a bird"]
LONG = " ".join(["dog", "car", "red", "house"] * 50)  # 200 tokens: three windows


@pytest.fixture(scope="module")
def adapted():
    from imagebind_sdk import ImageBind

    return ImageBind.load(TINY, device="cpu", adapters=ADAPTER)


@pytest.fixture(scope="module")
def served():
    # A wait long enough that concurrent requests of both models meet in the queue.
    # The content cache is on: a cached vector must never answer for another model.
    proc = ServerProcess("--adapter", f"golden={ADAPTER}", "--max-wait-ms", "50", "--cache-mb", "1").wait_ready()
    with httpx.Client(base_url=proc.url, timeout=120) as c:
        yield c
    assert proc.stop() == 0


def reference(model, adapter: str | None, **inputs) -> dict[str, torch.Tensor]:
    model.set_adapter(adapter)
    out = model.embed(**inputs)
    return {kind: out[kind] for kind in inputs}


def assert_close(got, ref: torch.Tensor, tol: float = 1e-5) -> None:
    got = torch.tensor(got, dtype=torch.float32)
    assert got.shape == ref.shape and float((got - ref).abs().max()) <= tol


def test_meta_lists_the_adapters(served):
    meta = served.get("/meta").json()
    assert meta["adapters"] == ["golden"] and meta["default_model"] == "golden" and meta["name"] == "tiny"


def test_base_and_adapter_answer_concurrently_as_the_library(served, adapted):
    refs = {name: reference(adapted, adapter, text=TEXTS, vision=[DOG, CAR])
            for name, adapter in (("tiny", None), ("golden", "golden"))}
    assert float((refs["tiny"]["text"] - refs["golden"]["text"]).abs().max()) > 1e-3  # the adapter matters

    def ask(name: str) -> tuple[str, dict]:
        body = {"text": TEXTS, "vision": [b64(DOG), b64(CAR)], "model": name}
        r = served.post("/v1/embed", json=body)
        assert r.status_code == 200, r.text
        return name, r.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, ["tiny", "golden"] * 4))
    for name, body in answers:
        assert body["model"] == name
        for kind in ("text", "vision"):
            assert_close(body["embeddings"][kind], refs[name][kind])
    default = served.post("/v1/embed", json={"text": TEXTS}).json()  # no model field: the default (golden)
    assert_close(default["embeddings"]["text"], refs["golden"]["text"])


def test_openai_and_zero_shot_take_the_model(served, adapted):
    for name, adapter in (("tiny", None), ("golden", "golden")):
        ref = reference(adapted, adapter, text=TEXTS)["text"]
        r = served.post("/v1/embeddings", json={"input": TEXTS, "model": name, "encoding_format": "float"})
        assert r.status_code == 200 and r.json()["model"] == name
        assert_close([d["embedding"] for d in r.json()["data"]], ref)
        labels = ["dog", "car"]
        adapted.set_adapter(adapter)
        probs = adapted.zero_shot(labels, vision=[DOG]).probs.float()
        z = served.post("/v1/zero-shot", json={"labels": labels, "vision": [b64(DOG)], "model": name})
        assert z.status_code == 200 and torch.allclose(torch.tensor(z.json()["probabilities"]), probs, atol=1e-5)


def test_unknown_model_names_the_known_ones(served):
    for path, body in (("/v1/embed", {"text": "a", "model": "gpt-4"}), ("/v1/embeddings", {"input": "a", "model": "x"}),
                       ("/v1/zero-shot", {"labels": ["a"], "vision": [b64(DOG)], "model": "x"})):
        r = served.post(path, json=body)
        assert r.status_code == 404, (path, r.text)
        assert "'tiny', 'golden'" in r.text
    assert served.post("/v1/embed", json={"text": "a", "model": 3}).status_code == 400


def test_text_overflow_field(served, adapted):
    adapted.set_adapter(None)
    for mode in ("truncate", "chunk_mean"):
        ref = adapted.embed(text=["a dog", LONG], text_overflow=mode).text
        r = served.post("/v1/embed", json={"text": ["a dog", LONG], "text_overflow": mode, "model": "tiny"})
        assert r.status_code == 200, r.text
        assert_close(r.json()["embeddings"]["text"], ref)
        o = served.post("/v1/embeddings", json={"input": LONG, "model": "tiny", "text_overflow": mode,
                                                "encoding_format": "float"})
        assert_close([o.json()["data"][0]["embedding"]], ref[1:])
    bad = served.post("/v1/embed", json={"text": ["a dog", LONG], "text_overflow": "error"})
    assert bad.status_code == 400 and "text[1]: 200 tokens" in bad.json()["error"]
    bad = served.post("/v1/embeddings", json={"input": ["a", LONG], "text_overflow": "error", "model": "tiny"})
    assert bad.status_code == 400 and "input[1]: 200 tokens" in bad.text
    assert "text_overflow: expected one of" in served.post("/v1/embed", json={"text": "a", "text_overflow": "x"}).text
    # One text may not become more windows than the server queues at once (--max-queue, 1024).
    huge = served.post("/v1/embed", json={"text": ["dog " * 80_000], "text_overflow": "chunk_mean"})
    assert huge.status_code == 413 and "1067 windows" in huge.json()["error"]


def test_meta_names_each_served_models_space(served, adapted):
    """/meta: the default model's space in full, and the space id of every name a request may give."""
    meta = served.get("/meta").json()
    base, golden = adapted.space_of(None), adapted.space_of("golden")
    assert base != golden
    assert meta["spaces"] == {"tiny": base.id, "golden": golden.id}
    assert meta["space"]["id"] == golden.id and meta["space"]["adapter"]["name"] == "golden"  # the default


def test_the_content_cache_keeps_models_apart(served, adapted):
    """The same text and image under the base and the adapter: cached answers (second round)
    equal fresh ones bit for bit and never cross between models."""
    body = {"text": ["a cached dog"], "vision": [b64(DOG)]}
    rounds = [{name: served.post("/v1/embed", json={**body, "model": name}).json() for name in ("tiny", "golden")}
              for _ in range(2)]
    for name in ("tiny", "golden"):
        assert rounds[1][name]["embeddings"] == rounds[0][name]["embeddings"]  # cached == fresh, exactly
    assert rounds[1]["tiny"]["embeddings"]["text"] != rounds[1]["golden"]["embeddings"]["text"]
    for name, adapter in (("tiny", None), ("golden", "golden")):
        ref = reference(adapted, adapter, text=["a cached dog"], vision=[DOG])
        assert_close(rounds[1][name]["embeddings"]["text"], ref["text"])
        assert_close(rounds[1][name]["embeddings"]["vision"], ref["vision"])
    hits = [line for line in served.get("/metrics").text.splitlines() if line.startswith("imagebind_cache_hits_total")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in hits) >= 4
