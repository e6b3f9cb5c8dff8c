"""LlamaIndex adapter against the real llama_index.core (tiny golden checkpoint, no LLM).

Retrieval is checked where the answer does not depend on the (random) tiny weights:
a query equal to a node's text has cosine 1 with that node and < 1 with the others.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("llama_index.core", reason="pip install 'imagebind-sdk[llamaindex]'")

from llama_index.core import VectorStoreIndex
from llama_index.core.embeddings import MultiModalEmbedding
from llama_index.core.schema import TextNode

from imagebind_sdk.integrations.llamaindex import ImageBindEmbedding

TEXTS = ["a dog barking", "a car engine", "a bird singing", "rain on a roof"]
TOL = 1e-6


@pytest.fixture()
def embed_model(tiny_model):
    return ImageBindEmbedding(model=tiny_model, embed_batch_size=2)  # 2: batches split across calls


def test_vector_store_index_retrieves_the_node(embed_model, tiny_model):
    assert isinstance(embed_model, MultiModalEmbedding) and embed_model.model is tiny_model
    nodes = [TextNode(text=t, id_=f"n{i}") for i, t in enumerate(TEXTS)]
    index = VectorStoreIndex(nodes, embed_model=embed_model)  # embed_model given: no LLM or OpenAI default
    retriever = index.as_retriever(similarity_top_k=1)
    for i, text in enumerate(TEXTS):
        (hit,) = retriever.retrieve(text)
        assert hit.node.node_id == f"n{i}" and hit.score == pytest.approx(1.0, abs=1e-5)


def test_text_vectors_equal_model_embed(embed_model, tiny_model):
    direct = tiny_model.embed(text=TEXTS).text.numpy()
    np.testing.assert_allclose(embed_model.get_text_embedding_batch(TEXTS), direct, atol=TOL)
    np.testing.assert_allclose(embed_model.get_text_embedding(TEXTS[1]), direct[1], atol=TOL)
    np.testing.assert_allclose(embed_model.get_query_embedding(TEXTS[3]), direct[3], atol=TOL)
    np.testing.assert_allclose(asyncio.run(embed_model.aget_query_embedding(TEXTS[0])), direct[0], atol=TOL)
    np.testing.assert_allclose(asyncio.run(embed_model.aget_text_embedding_batch(TEXTS)), direct, atol=TOL)


def test_image_vectors_equal_model_embed(embed_model, tiny_model, assets_dir):
    images = [str(assets_dir / f"{n}_image.jpg") for n in ("dog", "car", "bird")]
    direct = tiny_model.embed(vision=images).vision.numpy()
    np.testing.assert_allclose(embed_model.get_image_embedding_batch(images), direct, atol=TOL)
    np.testing.assert_allclose(embed_model.get_image_embedding(images[2]), direct[2], atol=TOL)
    with open(images[0], "rb") as f:  # LlamaIndex's ImageType is a path or a BytesIO
        np.testing.assert_allclose(embed_model.get_image_embedding(f), direct[0], atol=TOL)
    np.testing.assert_allclose(asyncio.run(embed_model.aget_image_embedding(images[1])), direct[1], atol=TOL)
    np.testing.assert_allclose(asyncio.run(embed_model.aget_image_embedding_batch(images)), direct, atol=TOL)


def test_other_kinds(embed_model, tiny_model, assets_dir):
    sounds = [str(assets_dir / "dog_audio.wav")]
    np.testing.assert_allclose(
        embed_model.get_kind_embedding_batch("audio", sounds), tiny_model.embed(audio=sounds).audio.numpy(), atol=TOL
    )


def test_checkpoint_and_serialisation(tiny_dir):
    a = ImageBindEmbedding(checkpoint=tiny_dir, modalities=["text", "vision"], device="cpu")
    b = ImageBindEmbedding(checkpoint=tiny_dir, modalities=["text", "vision"], device="cpu")
    assert a.model is b.model  # loaded once, shared
    assert a.model_name == str(tiny_dir) and a.to_dict()["class_name"] == "ImageBindEmbedding"
