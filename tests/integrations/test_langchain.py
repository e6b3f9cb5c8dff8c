"""LangChain adapter against the real langchain_core (tiny golden checkpoint).

The tiny checkpoint is random, so retrieval is checked where the answer is defined
whatever the weights: a query equal to a stored text has cosine 1 with that text's
vector and < 1 with the others (distinct texts give distinct vectors).
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("langchain_core", reason="pip install 'imagebind-sdk[langchain]'")

from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore

from imagebind_sdk.integrations.langchain import ImageBindEmbeddings

TEXTS = ["a dog barking", "a car engine", "a bird singing", "rain on a roof"]
TOL = 1e-6


def test_in_memory_store_finds_the_document(tiny_model):
    emb = ImageBindEmbeddings(model=tiny_model)
    assert isinstance(emb, Embeddings) and emb.model is tiny_model  # shared, not reloaded
    store = InMemoryVectorStore.from_texts(TEXTS, emb, metadatas=[{"i": i} for i in range(len(TEXTS))])
    for i, text in enumerate(TEXTS):
        hit = store.similarity_search(text, k=1)[0]
        assert hit.page_content == text and hit.metadata == {"i": i}


def test_vectors_equal_model_embed(tiny_model):
    emb = ImageBindEmbeddings(model=tiny_model)
    direct = tiny_model.embed(text=TEXTS).text.numpy()
    np.testing.assert_allclose(emb.embed_documents(TEXTS), direct, atol=TOL)
    np.testing.assert_allclose(emb.embed_query(TEXTS[2]), direct[2], atol=TOL)
    np.testing.assert_allclose(asyncio.run(emb.aembed_documents(TEXTS)), direct, atol=TOL)
    np.testing.assert_allclose(asyncio.run(emb.aembed_query(TEXTS[0])), direct[0], atol=TOL)


def test_image_and_audio(tiny_model, assets_dir):
    emb = ImageBindEmbeddings(model=tiny_model)
    images = [str(assets_dir / f"{n}_image.jpg") for n in ("dog", "car")]
    sounds = [str(assets_dir / f"{n}_audio.wav") for n in ("dog", "bird")]
    direct = tiny_model.embed(vision=images, audio=sounds)
    np.testing.assert_allclose(emb.embed_image(images), direct.vision.numpy(), atol=TOL)
    np.testing.assert_allclose(emb.embed_audio(sounds), direct.audio.numpy(), atol=TOL)
    np.testing.assert_allclose(asyncio.run(emb.aembed_image(images[:1])), direct.vision.numpy()[:1], atol=TOL)


def test_text_store_searched_with_a_sound(tiny_model, assets_dir):
    """Cross-modal: the store ranks its texts by cosine to the sound's vector (computed here by hand)."""
    emb = ImageBindEmbeddings(model=tiny_model)
    store = InMemoryVectorStore.from_texts(TEXTS, emb)
    sound = emb.embed_audio([str(assets_dir / "dog_audio.wav")])[0]
    hits = store.similarity_search_by_vector(sound, k=len(TEXTS))
    expected = np.argsort(-(tiny_model.embed(text=TEXTS).text.numpy() @ np.asarray(sound)))
    assert [h.page_content for h in hits] == [TEXTS[i] for i in expected]


def test_normalize_false_is_the_raw_output(tiny_model):
    raw = ImageBindEmbeddings(model=tiny_model, normalize=False).embed_documents(TEXTS[:2])
    np.testing.assert_allclose(raw, tiny_model.embed(text=TEXTS[:2], normalize=False).text.numpy(), atol=1e-5)


def test_checkpoint_loads_once_and_is_shared(tiny_dir):
    a = ImageBindEmbeddings(checkpoint=tiny_dir, modalities=["text"], device="cpu")
    b = ImageBindEmbeddings(checkpoint=tiny_dir, modalities=["text"], device="cpu")
    assert a.model is b.model and a.model.modalities == ("text",)
    assert len(a.embed_query("a dog")) == a.model.embedding_dim


def test_model_and_checkpoint_together_is_refused(tiny_model, tiny_dir):
    with pytest.raises(ValueError, match="either model= .* or checkpoint="):
        ImageBindEmbeddings(model=tiny_model, checkpoint=tiny_dir)
    with pytest.raises(TypeError, match="must be an imagebind_sdk.ImageBind"):
        ImageBindEmbeddings(model="imagebind-huge")


def test_a_str_where_a_list_is_expected_is_refused(tiny_model):
    """embed_documents("abc") returned 3 vectors, one per character."""
    emb = ImageBindEmbeddings(model=tiny_model)
    with pytest.raises(TypeError, match=r"expected a list of text inputs, got one str .*each character"):
        emb.embed_documents("abc")
    with pytest.raises(TypeError, match=r"expected a list of vision inputs, got one bytes"):
        emb.embed_image(b"\x89PNG")
    with pytest.raises(TypeError, match=r"expected a list of audio inputs, got one dict"):
        emb.embed_audio({"array": [0.0] * 16000, "sampling_rate": 16000})
    assert len(emb.embed_documents(["abc"])) == 1
