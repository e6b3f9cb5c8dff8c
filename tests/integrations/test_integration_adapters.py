"""The integrations' ``adapters=`` (LoRA adapters loaded with the checkpoint) and
``text_overflow=``, each through the real framework, against the library's vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

ADAPTER = Path(__file__).resolve().parents[1] / "lora" / "data" / "adapter"  # postfix _golden
TEXTS = ["a dog", " ".join(["dog", "car", "red", "house"] * 50)]  # the second: 200 tokens
TOL = 1e-6


@pytest.fixture(scope="module")
def reference(tiny_dir):
    """Library vectors of TEXTS: (base, truncate), (golden, truncate), (golden, chunk_mean)."""
    from imagebind_sdk import ImageBind

    model = ImageBind.load(tiny_dir, device="cpu", adapters=ADAPTER)
    out = {("golden", mode): model.embed(text=TEXTS, text_overflow=mode).text for mode in ("truncate", "chunk_mean")}
    model.set_adapter(None)
    out["base", "truncate"] = model.embed(text=TEXTS).text
    assert float((out["base", "truncate"] - out["golden", "truncate"]).abs().max()) > 1e-3
    return out


def close(rows, ref: torch.Tensor) -> bool:
    return float(np.abs(np.asarray(rows, dtype=np.float32) - ref.numpy()).max()) <= TOL


def test_langchain(tiny_dir, reference):
    pytest.importorskip("langchain_core", reason="pip install 'imagebind-sdk[langchain]'")
    from imagebind_sdk.integrations.langchain import ImageBindEmbeddings

    for mode in ("truncate", "chunk_mean"):
        emb = ImageBindEmbeddings(checkpoint=tiny_dir, device="cpu", adapters=ADAPTER, text_overflow=mode)
        assert emb.model.active_adapter == "golden"
        assert close(emb.embed_documents(TEXTS), reference["golden", mode])
    assert close(ImageBindEmbeddings(checkpoint=tiny_dir, device="cpu").embed_documents(TEXTS),
                 reference["base", "truncate"])
    with pytest.raises(ValueError, match="text_overflow must be one of"):
        ImageBindEmbeddings(checkpoint=tiny_dir, device="cpu", text_overflow="mean")


def test_llamaindex(tiny_dir, reference):
    pytest.importorskip("llama_index.core", reason="pip install 'imagebind-sdk[llamaindex]'")
    from imagebind_sdk.integrations.llamaindex import ImageBindEmbedding

    emb = ImageBindEmbedding(checkpoint=str(tiny_dir), device="cpu", adapters={"golden": str(ADAPTER)},
                             text_overflow="chunk_mean")
    assert close(emb.get_text_embedding_batch(TEXTS), reference["golden", "chunk_mean"])


def test_lancedb(tmp_path, tiny_dir, reference):
    pytest.importorskip("lancedb", reason="pip install 'imagebind-sdk[lancedb]'")
    import lancedb
    from lancedb.embeddings import get_registry
    from lancedb.pydantic import LanceModel, Vector

    import imagebind_sdk.integrations.lancedb  # noqa: F401  (registers "imagebind-sdk")

    func = get_registry().get("imagebind-sdk").create(checkpoint=str(tiny_dir), device="cpu",
                                                      adapters=[str(ADAPTER)], text_overflow="chunk_mean")

    class Item(LanceModel):
        source: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()

    table = lancedb.connect(tmp_path / "db").create_table("t", schema=Item)
    table.add([{"source": t} for t in TEXTS])
    stored = {r["source"]: r["vector"] for r in table.to_arrow().to_pylist()}
    assert close([stored[t] for t in TEXTS], reference["golden", "chunk_mean"])
