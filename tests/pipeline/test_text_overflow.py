"""``text_overflow=``: texts past the 77-token context truncated (warned), embedded whole
(``chunk_mean``) or refused (``error``); tokenised in the pipeline only."""

from __future__ import annotations

import logging
import random

import pytest
import torch

from imagebind_sdk.pipeline.overflow import windows
from imagebind_sdk.preprocess import InputError
from imagebind_sdk.preprocess.tokenizer import default_tokenizer

# Common words that are one BPE token each (checked below), so the windows are known in advance.
WORDS = "dog cat red blue house tree car road water fire music light dark small big green".split()


def one_token_words() -> list[str]:
    tok = default_tokenizer()
    words = [w for w in WORDS if len(tok.encode(w)) == 1]
    assert len(words) >= 10
    return words


def long_text(n_words: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    words = one_token_words()
    return [rng.choice(words) for _ in range(n_words)]


def test_short_texts_are_identical_in_every_mode(tiny_model) -> None:
    texts = ["a dog", "a photo of a red house by the water", " ".join(long_text(75))]
    base = tiny_model.embed(text=texts).text
    for mode in ("chunk_mean", "error"):
        assert torch.equal(tiny_model.embed(text=texts, text_overflow=mode).text, base), mode
    raw = tiny_model.embed(text=texts, normalize=False).text
    assert torch.equal(tiny_model.embed(text=texts, normalize=False, text_overflow="chunk_mean").text, raw)


def test_chunk_mean_is_the_renormalised_mean_of_its_windows(tiny_model) -> None:
    words = long_text(200, seed=1)  # 200 one-token words: windows of 75, 75, 50
    text = " ".join(words)
    parts = [" ".join(words[i : i + 75]) for i in (0, 75, 150)]
    separately = tiny_model.embed(text=parts).text
    expected = separately.mean(0)
    expected = expected / expected.norm()
    got = tiny_model.embed(text=["a dog", text], text_overflow="chunk_mean").text
    assert float((got[1] - expected).abs().max()) <= 1e-6
    assert abs(float(got[1].norm()) - 1) <= 1e-6
    assert torch.allclose(got[0], tiny_model.embed(text="a dog").text[0], atol=1e-6)  # another batch: not bitwise
    truncated = tiny_model.embed(text=text).text[0]
    assert torch.allclose(truncated, separately[0], atol=1e-6)  # truncate keeps the first window
    raw = tiny_model.embed(text=parts, normalize=False).text.mean(0)
    got_raw = tiny_model.embed(text=text, normalize=False, text_overflow="chunk_mean").text[0]
    assert float((got_raw - raw).abs().max()) <= 1e-5


def test_windows_cut_at_word_boundaries() -> None:
    tok = default_tokenizer()
    long_word = "x" * 40 + "!" * 3  # several tokens in one whitespace word
    words = long_text(70) + [long_word] + long_text(10, seed=2)
    parts = windows(tok, " ".join(words))
    assert len(parts) == 2 and all(len(p) <= 75 for p in parts)
    assert parts[0] == tok.encode(" ".join(long_text(70)))  # the long word starts the next window
    assert parts[1] == tok.encode(" ".join([long_word] + long_text(10, seed=2)))
    assert sum(parts, []) == tok.encode(" ".join(words))
    huge = windows(tok, "a" + "b" * 2000)  # one word past a window is cut inside it
    assert all(len(p) == 75 for p in huge[:-1]) and sum(huge, []) == tok.encode("a" + "b" * 2000)


def test_truncate_warns_once_per_call_with_the_count(tiny_model, caplog) -> None:
    texts = [" ".join(long_text(100)), "a dog", " ".join(long_text(90, seed=3)), " ".join(long_text(80, seed=4))]
    with caplog.at_level(logging.WARNING, logger="imagebind_sdk"):
        tiny_model.embed(text=texts, batch_size=2)
    cut = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(cut) == 1 and cut[0].getMessage().startswith("3 of 4 texts")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="imagebind_sdk"):
        tiny_model.embed(text=["a dog", "a cat"])
        tiny_model.embed(text=texts, text_overflow="chunk_mean")
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]


def test_error_names_the_text_and_its_token_count(tiny_model) -> None:
    texts = ["a dog", "a cat", " ".join(long_text(120))]
    with pytest.raises(InputError, match=r"text\[2\]: 120 tokens, more than the 75"):
        tiny_model.embed(text=texts, text_overflow="error")
    with pytest.raises(ValueError, match="text_overflow must be one of"):
        tiny_model.embed(text="a dog", text_overflow="mean")
