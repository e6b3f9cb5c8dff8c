"""Hostile texts: the tokenizer's time follows the tokens kept, and its ids stay the reference's.

The oracle is the reference's own merge loop (quadratic, so it only sees short words);
the golden ids are checked in test_tokenizer.py.
"""

from __future__ import annotations

import contextlib
import random
import signal
import string
from typing import Iterator

import pytest

from imagebind_sdk.preprocess.tokenizer import NUM_MERGES, Tokenizer, WORD_CHARS_PER_TOKEN, default_tokenizer

# Generous: the bounded tokenizer needs well under a second for each case below; the
# quadratic one needed 74 s for a 50 KB word and hours for these.
HANG_GUARD_S = 30


@contextlib.contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    def expire(signum, frame):
        raise TimeoutError(f"tokenising took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def reference_bpe(tok: Tokenizer, token: str) -> tuple[str, ...]:
    """The reference's merge loop, verbatim in behaviour (lowest rank, all occurrences, repeat)."""
    word = tuple(token[:-1]) + (token[-1] + "</w>",)
    while len(word) > 1:
        pair = min(zip(word, word[1:]), key=lambda p: tok.ranks.get(p, NUM_MERGES))
        if pair not in tok.ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = tuple(merged)
    return word


def test_vocabulary_merges_follow_their_parts():
    """The heap merge order equals the reference's only if no merge uses a token made later."""
    tok = default_tokenizer()
    made = {a + b: rank for (a, b), rank in tok.ranks.items()}
    assert all(made.get(part, -1) < rank for pair, rank in tok.ranks.items() for part in pair)
    assert max(len(token) for token in tok.encoder) * 2 <= WORD_CHARS_PER_TOKEN


def test_heap_merges_equal_the_reference_loop():
    tok, rng = default_tokenizer(), random.Random(0)
    alphabets = [string.ascii_lowercase, "ab", "aeiou", "xyzé中ж", string.printable]
    for _ in range(300):
        word = "".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.randrange(1, 400)))
        mapped = "".join(tok.byte_encoder[b] for b in word.encode("utf-8"))
        assert tok._bpe(mapped) == reference_bpe(tok, mapped), word


def test_lazy_normalisation_gives_the_same_pre_tokens():
    """Segment-by-segment cleaning (ftfy segments, entities, '<', case) equals the whole-text one."""
    from imagebind_sdk.preprocess.tokenizer import TOKEN_PATTERN, normalize_text, pre_tokens

    rng = random.Random(1)
    pieces = ["&amp;", "&lt;", "&amp;lt;", "&#32;", "&nbsp;", "&ampx", "ΟΔΟΣ ", "Σ\n", "don't", "<b>", "Ã©",
              "\n", "\r\n", "\t", "  ", "😀", "x" * 50]
    for _ in range(400):
        text = "".join(rng.choice(pieces) if rng.random() < 0.4 else
                       "".join(rng.choices(string.ascii_letters + " .,!?'", k=rng.randrange(1, 12)))
                       for _ in range(rng.randrange(1, 30)))
        assert list(pre_tokens(text)) == TOKEN_PATTERN.findall(normalize_text(text)), text
        assert list(pre_tokens(text, head_only=True)) == TOKEN_PATTERN.findall(normalize_text(text)), text


def test_head_of_a_long_word_equals_the_unbounded_ids():
    tok, rng = default_tokenizer(), random.Random(2)
    for _ in range(12):
        alphabet = rng.choice([string.ascii_lowercase, "ab", "abcdefghijklmnop1", "xyzé中"])
        word = "".join(rng.choices(alphabet, k=rng.randrange(4097, 12000)))
        full = tok.encode(word)
        for k in (1, 75, 300):
            assert tok.encode(word, k) == full[:k]
        assert tok([word])[0, 1:76].tolist() == full[:75]


HOSTILE_TEXTS = {  # built in the test, so that the session does not hold them
    "200 KB word": lambda: "".join(random.Random(3).choices(string.ascii_lowercase, k=200_000)),
    "60 MB word": lambda: "q" * 60_000_000,
    "17 MB line": lambda: "the dog runs far " * 1_000_000,
    "2M lines": lambda: "a\n" * 2_000_000,
}


@pytest.mark.parametrize("name", HOSTILE_TEXTS)
def test_hostile_texts_cost_what_the_context_holds(name):
    tok, text = default_tokenizer(), HOSTILE_TEXTS[name]()
    with hang_guard(HANG_GUARD_S):
        ids = tok([text])[0]
    assert int(ids[0]) == tok.sot_id and int(ids[-1]) == tok.eot_id and int((ids == 0).sum()) == 0
    with hang_guard(HANG_GUARD_S):
        assert tok.encode(text, 500)[:75] == ids[1:76].tolist()


def test_max_tokens_is_checked():
    with pytest.raises(ValueError, match="max_tokens"):
        default_tokenizer().encode("a dog", -1)
    assert default_tokenizer().encode("a dog", 0) == []
