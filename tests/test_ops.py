"""Tests for imagebind_sdk.vectors.ops, imagebind_sdk.vectors.zero_shot and imagebind_sdk.vectors.templates (hand-computed expectations)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from imagebind_sdk.vectors.ops import compose, search, similarity
from imagebind_sdk.vectors.zero_shot import ZeroShotResult, build_label_embeddings, zero_shot_probs
from imagebind_sdk.vectors.templates import DEFAULT_TEMPLATES, templates_for, validate_template

R2 = 1 / math.sqrt(2)
E1 = torch.tensor([1.0, 0.0])
E2 = torch.tensor([0.0, 1.0])
DIAG = torch.tensor([R2, R2])


# --- similarity -------------------------------------------------------------


def test_similarity_known_cosines() -> None:
    sim = similarity(torch.stack([E1, E2, DIAG]))
    expected = torch.tensor([[1.0, 0.0, R2], [0.0, 1.0, R2], [R2, R2, 1.0]])
    assert sim.shape == (3, 3)
    assert sim.dtype == torch.float32 and sim.device.type == "cpu"
    torch.testing.assert_close(sim, expected)


def test_similarity_normalises_inputs() -> None:
    sim = similarity(torch.tensor([[3.0, 0.0]]), torch.tensor([[2.0, 2.0], [0.0, -5.0]]))
    torch.testing.assert_close(sim, torch.tensor([[R2, 0.0]]))


def test_similarity_vector_numpy_and_lists() -> None:
    sim = similarity(np.array([1.0, 0.0]), [E1, E2, np.array([[1.0, 1.0]])])
    assert sim.shape == (1, 3)
    torch.testing.assert_close(sim, torch.tensor([[1.0, 0.0, R2]]))
    assert similarity([1.0, 1.0], [[0.0, 2.0]]).item() == pytest.approx(R2)


def test_similarity_float64_and_int_inputs() -> None:
    sim = similarity(np.array([[1, 0]], dtype=np.int64), np.array([[1.0, 1.0]], dtype=np.float64))
    assert sim.dtype == torch.float32
    assert sim.item() == pytest.approx(R2)


def test_similarity_dimension_mismatch_names_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(4, 5\)"):
        similarity(torch.zeros(2, 3), torch.zeros(4, 5))


def test_similarity_rejects_nan_and_bad_rank() -> None:
    with pytest.raises(ValueError, match="NaN"):
        similarity(torch.tensor([[float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="1-D .* or 2-D"):
        similarity(torch.zeros(2, 3, 4))
    with pytest.raises(TypeError):
        similarity("not a tensor")  # type: ignore[arg-type]


# --- zero-shot --------------------------------------------------------------


def test_zero_shot_probs_matches_hand_softmax() -> None:
    labels = torch.stack([E1, E2])
    inputs = torch.stack([E1, DIAG])
    probs = zero_shot_probs(labels, inputs, logit_scale=2.0)
    # input 0: cosines (1, 0) -> logits (2, 0); input 1: cosines (r2, r2) -> uniform.
    p0 = math.exp(2.0) / (math.exp(2.0) + 1.0)
    expected = torch.tensor([[p0, 1 - p0], [0.5, 0.5]])
    torch.testing.assert_close(probs, expected)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))


def test_zero_shot_probs_tensor_scale_and_nonfinite_scale() -> None:
    a = zero_shot_probs(torch.stack([E1, E2]), E1, torch.tensor(2.0))
    b = zero_shot_probs(torch.stack([E1, E2]), E1, 2.0)
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="logit_scale"):
        zero_shot_probs(torch.stack([E1, E2]), E1, float("inf"))


def _fake_encoder(calls: list[list[str]]):
    table = {
        "a {}.": torch.tensor([1.0, 0.0, 0.0]),
        "the {}.": torch.tensor([0.0, 1.0, 0.0]),
    }
    offsets = {"dog": torch.tensor([0.0, 0.0, 1.0]), "cat": torch.tensor([0.0, 0.0, -1.0])}

    def encode(texts: list[str]) -> torch.Tensor:
        calls.append(list(texts))
        rows = []
        for text in texts:
            template = "a {}." if text.startswith("a ") else "the {}."
            label = text.split(" ", 1)[1].rstrip(".")
            rows.append(table[template] + offsets[label])  # not unit: norm sqrt(2)
        return torch.stack(rows)

    return encode


def test_build_label_embeddings_mean_then_normalise() -> None:
    calls: list[list[str]] = []
    emb = build_label_embeddings(["dog", "cat"], ["a {}.", "the {}."], _fake_encoder(calls))
    assert calls == [["a dog.", "the dog.", "a cat.", "the cat."]]
    # dog: mean((1,0,1)/r2, (0,1,1)/r2) = (1,1,2)/(2*r2); renormalised -> (1,1,2)/sqrt(6).
    expected = torch.tensor([[1.0, 1.0, 2.0], [1.0, 1.0, -2.0]]) / math.sqrt(6)
    torch.testing.assert_close(emb, expected)
    torch.testing.assert_close(emb.norm(dim=1), torch.ones(2))


def test_build_label_embeddings_single_template_string() -> None:
    emb = build_label_embeddings("dog", "a {}.", _fake_encoder([]))
    torch.testing.assert_close(emb, torch.tensor([[R2, 0.0, R2]]))


def test_build_label_embeddings_validation() -> None:
    enc = _fake_encoder([])
    with pytest.raises(ValueError, match="exactly one"):
        build_label_embeddings(["dog"], ["a photo"], enc)
    with pytest.raises(ValueError, match="exactly one"):
        build_label_embeddings(["dog"], ["{} and {}"], enc)
    with pytest.raises(ValueError, match="labels must not be empty"):
        build_label_embeddings([], ["a {}."], enc)
    with pytest.raises(ValueError, match="2 strings"):
        build_label_embeddings(["dog"], ["a {}.", "the {}."], lambda s: torch.ones(1, 3))


def test_zero_shot_result_top_and_predictions() -> None:
    probs = torch.tensor([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2]])
    res = ZeroShotResult(["cat", "dog", "bird"], probs, ["x.jpg", "y.jpg"])
    top = res.top(2)
    assert [lab for lab, _ in top[0]] == ["dog", "bird"]
    assert top[0][0][1] == pytest.approx(0.5)
    assert [lab for lab, _ in top[1]] == ["cat", "dog"]  # tie keeps label order
    assert res.predictions == ["dog", "cat"]
    assert len(res.top(10)[0]) == 3
    with pytest.raises(ValueError, match="k must be >= 1"):
        res.top(0)
    assert len(res) == 2 and res[1].sources == ["y.jpg"] and res[-1].predictions == ["cat"]
    with pytest.raises(IndexError):
        res[2]


def test_zero_shot_result_dict_and_repr() -> None:
    res = ZeroShotResult(["cat", "dog"], torch.tensor([[0.25, 0.75]]), ["x.jpg"])
    d = res.to_dict()
    json.dumps(d)  # JSON-friendly
    assert d["labels"] == ["cat", "dog"]
    (row,) = d["results"]
    assert row["source"] == "x.jpg" and row["label"] == "dog"
    assert row["prob"] == pytest.approx(0.75)
    assert [t["label"] for t in row["top"]] == ["dog", "cat"]
    assert len(res.to_list(k=1)[0]["top"]) == 1
    text = repr(res)
    assert "x.jpg" in text and "dog" in text and "0.7500" in text
    assert str(res) == text
    assert text.index("dog") < text.index("cat")


def test_zero_shot_result_validation() -> None:
    with pytest.raises(ValueError, match="2 columns but there are 3 labels"):
        ZeroShotResult(["a", "b", "c"], torch.zeros(1, 2))
    with pytest.raises(ValueError, match="sources"):
        ZeroShotResult(["a", "b"], torch.zeros(2, 2), ["only one"])
    assert ZeroShotResult(["a", "b"], torch.zeros(2, 2)).sources == ["0", "1"]


# --- templates --------------------------------------------------------------


def test_default_templates_are_valid() -> None:
    for modality in ("vision", "video", "audio", "depth", "thermal", "imu"):
        temps = templates_for(modality)
        assert temps == DEFAULT_TEMPLATES[modality] and len(temps) >= 3
        for t in temps:
            assert validate_template(t) == t
            assert "dog" in t.format("dog")


def test_templates_for_overrides_and_errors() -> None:
    assert templates_for("vision", "a sketch of a {}.") == ("a sketch of a {}.",)
    assert templates_for("anything", ["x {}", "y {}"]) == ("x {}", "y {}")
    with pytest.raises(ValueError, match="no default templates for modality 'text'"):
        templates_for("text")
    with pytest.raises(ValueError, match="must not be empty"):
        templates_for("vision", [])
    with pytest.raises(ValueError, match="exactly one"):
        templates_for("vision", ["{0}"])
    with pytest.raises(ValueError, match="not a valid format string"):
        validate_template("a {")
    with pytest.raises(TypeError):
        validate_template(3)  # type: ignore[arg-type]
    assert validate_template("{{literal}} {}") == "{{literal}} {}"


# --- compose ----------------------------------------------------------------


def test_compose_unit_norm_and_hand_value() -> None:
    out = compose(E1, torch.tensor([0.0, 3.0]))
    assert out.shape == (2,)
    torch.testing.assert_close(out, DIAG)


def test_compose_weights() -> None:
    a, b = torch.tensor([3.0, 4.0]), torch.tensor([-1.0, 2.0])
    torch.testing.assert_close(compose(a, b, weights=[1, 0]), a / 5.0)
    # 2 * e1 + 1 * e2 -> (2, 1)/sqrt(5)
    torch.testing.assert_close(compose(E1, E2, weights=[2.0, 1.0]), torch.tensor([2.0, 1.0]) / math.sqrt(5))


def test_compose_rowwise_and_broadcast() -> None:
    rows = torch.stack([E1, E2])
    out = compose(rows, E2.unsqueeze(0))
    assert out.shape == (2, 2)
    torch.testing.assert_close(out, torch.stack([DIAG, E2]))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(compose(rows, rows), rows)


def test_compose_errors() -> None:
    x = torch.tensor([1.0, 2.0])
    with pytest.raises(ValueError, match="zero norm"):
        compose(x, -x)
    with pytest.raises(ValueError, match="2 weights for 3 terms"):
        compose(x, x, x, weights=[1, 1])
    with pytest.raises(ValueError, match="at least one"):
        compose()
    with pytest.raises(ValueError, match="row counts"):
        compose(torch.ones(2, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match="dimensions differ"):
        compose(torch.ones(2), torch.ones(3))


# --- search -----------------------------------------------------------------


def test_search_ordering_and_scores() -> None:
    corpus = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [-1.0, 0.0]])
    (hits,) = search(E1, corpus, top_k=3)
    assert [h["corpus_id"] for h in hits] == [1, 2, 0]
    assert [h["score"] for h in hits] == pytest.approx([1.0, R2, 0.0], abs=1e-6)
    assert set(hits[0]) == {"corpus_id", "score"}
    assert isinstance(hits[0]["corpus_id"], int) and isinstance(hits[0]["score"], float)


def test_search_ties_lower_id_first() -> None:
    corpus = torch.tensor([[0.0, 1.0], [2.0, 0.0], [0.0, 1.0], [1.0, 0.0], [5.0, 0.0]])
    (hits,) = search(E1, corpus, top_k=3)
    assert [h["corpus_id"] for h in hits] == [1, 3, 4]
    (hits,) = search(E2, corpus, top_k=5)
    assert [h["corpus_id"] for h in hits] == [0, 2, 1, 3, 4]


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 1000])
def test_search_chunked_matches_ties_across_chunks(chunk_size: int) -> None:
    corpus = torch.tensor([[1.0, 0.0]] * 3 + [[1.0, 1.0]] + [[1.0, 0.0]] * 3)
    (hits,) = search(E1, corpus, top_k=5, chunk_size=chunk_size)
    assert [h["corpus_id"] for h in hits] == [0, 1, 2, 4, 5]


def test_search_matches_bruteforce_random() -> None:
    gen = torch.Generator().manual_seed(0)
    corpus, queries = torch.randn(50, 8, generator=gen), torch.randn(3, 8, generator=gen)
    hits = search(queries, corpus, top_k=7, chunk_size=16)
    sims = similarity(queries, corpus)
    for q, row in enumerate(hits):
        expected = torch.argsort(sims[q], descending=True, stable=True)[:7].tolist()
        assert [h["corpus_id"] for h in row] == expected
        assert [h["score"] for h in row] == pytest.approx(sims[q, expected].tolist())


@pytest.mark.parametrize("top_k", [1, 5, 40])
@pytest.mark.parametrize("chunk_size", [3, 7, 100])
def test_search_many_ties_matches_stable_reference(top_k: int, chunk_size: int) -> None:
    gen = torch.Generator().manual_seed(1)
    corpus = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])[torch.randint(0, 3, (40,), generator=gen)]
    queries = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.2, 1.0]])
    hits = search(queries, corpus, top_k=top_k, chunk_size=chunk_size)
    sims = similarity(queries, corpus)
    for q, row in enumerate(hits):
        expected = torch.argsort(sims[q], descending=True, stable=True)[:top_k].tolist()
        assert [h["corpus_id"] for h in row] == expected


def test_finite_check_survives_sum_overflow() -> None:
    from imagebind_sdk.vectors.ops import as_matrix

    big = torch.tensor([[3e38, 3e38]])  # the sum overflows, the values do not
    assert torch.equal(as_matrix(big), big)
    with pytest.raises(ValueError, match="NaN or infinite"):
        as_matrix(torch.tensor([[3e38, float("inf")]]))


def test_search_top_k_bounds_and_multi_query() -> None:
    corpus = np.array([[1.0, 0.0], [0.0, 1.0]])
    hits = search([E1, E2, DIAG], corpus, top_k=10)
    assert len(hits) == 3 and all(len(h) == 2 for h in hits)
    assert hits[0][0]["corpus_id"] == 0 and hits[1][0]["corpus_id"] == 1
    assert [h["corpus_id"] for h in hits[2]] == [0, 1]  # tie
    with pytest.raises(ValueError, match="top_k must be >= 1"):
        search(E1, corpus, top_k=0)
    with pytest.raises(TypeError, match="top_k must be an int"):
        search(E1, corpus, top_k=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="dimensions differ"):
        search(torch.ones(3), corpus)


def test_search_delegates_to_index() -> None:
    from imagebind_sdk.retrieval.index import EmbeddingIndex

    index = EmbeddingIndex()
    index.add(torch.stack([E2, E1]), ids=["up", "right"], metadata=[{"k": 1}, {"k": 2}])
    (hits,) = search(E1, index, top_k=1)
    assert hits == [{"corpus_id": 1, "id": "right", "score": pytest.approx(1.0), "metadata": {"k": 2}}]
