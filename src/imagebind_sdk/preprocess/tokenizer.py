"""The CLIP byte-level BPE tokenizer, exactly as the reference ImageBind uses it.

Text -> ftfy fix -> HTML-unescape twice -> collapse whitespace -> lowercase -> split
with the CLIP pattern -> bytes mapped to printable characters -> BPE merges with
``</w>`` word ends -> ids, framed by start/end-of-text and zero-padded to 77. A text
longer than the context is cut so that end-of-text stays the last token (the text
head reads the end-of-text position).
"""

from __future__ import annotations

import gzip
import html
from functools import lru_cache
from importlib import resources
from typing import Sequence

import ftfy
import regex
import torch

from ..model.config import TEXT_CONTEXT_LENGTH

VOCAB_FILE = "assets/bpe_simple_vocab_16e6.txt.gz"
NUM_MERGES = 49152 - 256 - 2
START_OF_TEXT = "<|startoftext|>"
END_OF_TEXT = "<|endoftext|>"
CONTEXT_LENGTH = TEXT_CONTEXT_LENGTH
TOKEN_PATTERN = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)
WHITESPACE = regex.compile(r"\s+")


def byte_alphabet() -> dict[int, str]:
    """Byte -> a printable unicode character (printable Latin-1 bytes map to themselves).

    The insertion order (printable bytes first) fixes the ids of the 256 base tokens.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    alphabet = {b: chr(b) for b in printable}
    extra = (b for b in range(256) if b not in alphabet)
    alphabet.update({b: chr(256 + n) for n, b in enumerate(extra)})
    return alphabet


def normalize_text(text: str) -> str:
    """The reference's cleaning: ftfy, double HTML unescape, whitespace collapse, lowercase."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return WHITESPACE.sub(" ", text).strip().lower()


class Tokenizer:
    """``Tokenizer()(["a dog", "a cat"])`` -> LongTensor (2, 77) of CLIP BPE ids."""

    def __init__(self, context_length: int = CONTEXT_LENGTH) -> None:
        self.context_length = context_length
        self.byte_encoder = byte_alphabet()
        raw = resources.files("imagebind_sdk").joinpath(VOCAB_FILE).read_bytes()
        lines = gzip.decompress(raw).decode("utf-8").split("\n")[1 : NUM_MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        base = list(self.byte_encoder.values())
        vocab = base + [c + "</w>" for c in base] + ["".join(m) for m in merges] + [START_OF_TEXT, END_OF_TEXT]
        self.encoder = {token: i for i, token in enumerate(vocab)}
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.sot_id = self.encoder[START_OF_TEXT]
        self.eot_id = self.encoder[END_OF_TEXT]
        self._bpe_cached = lru_cache(maxsize=100_000)(self._bpe)

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _bpe(self, token: str) -> tuple[str, ...]:
        """Merge the characters of one pre-token, lowest-ranked pair first."""
        if token in (START_OF_TEXT, END_OF_TEXT):
            return (token,)
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: self.ranks.get(p, NUM_MERGES))
            if pair not in self.ranks:
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

    def encode(self, text: str) -> list[int]:
        """BPE ids of one text, without start/end tokens or padding."""
        ids: list[int] = []
        for piece in TOKEN_PATTERN.findall(normalize_text(text)):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe_cached(mapped))
        return ids

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Texts -> (N, context_length) int64 ids, zero-padded; long texts keep EOT last."""
        if isinstance(texts, str):
            texts = [texts]
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text[{row}]: expected str, got {type(text).__name__}")
            ids = [self.sot_id, *self.encode(text)][: self.context_length - 1] + [self.eot_id]
            out[row, : len(ids)] = torch.tensor(ids)
        return out


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The shared tokenizer instance (building it reads the vocabulary once)."""
    return Tokenizer()
