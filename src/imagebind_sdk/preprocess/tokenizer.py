"""The CLIP byte-level BPE tokenizer, exactly as the reference ImageBind uses it.

Text -> ftfy fix -> HTML-unescape twice -> collapse whitespace -> lowercase -> split
with the CLIP pattern -> bytes mapped to printable characters -> BPE merges with
``</w>`` word ends -> ids, framed by start/end-of-text and zero-padded to 77. A text
longer than the context is cut so that end-of-text stays the last token (the text
head reads the end-of-text position).

Hostile texts cost time linear in what the context holds, not in the text: the text
is normalised and split segment by segment (ftfy's own segments) until enough tokens
exist, BPE merges use a heap (n log n, the reference's order exactly), and a word longer
than the tokens still needed could fill is merged on its head only.
"""

from __future__ import annotations

import gzip
import heapq
import html
from functools import lru_cache
from importlib import resources
from typing import Iterator, Sequence

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
# Where a normalised text may be cut without changing any token before the cut: tokens
# never hold whitespace, and HTML entities and lowercasing contexts end at these characters.
SAFE_CUTS = (" ", "\n", "\t", "\f")
CACHED_WORD_CHARS = 64  # longer words are rare; caching them would hold memory for nothing
# A word is merged on its first max(WORD_HEAD_CHARS, WORD_CHARS_PER_TOKEN x tokens needed)
# characters: far more than those tokens can span (vocabulary tokens are at most a few
# dozen characters), so the cut only moves tokens that are dropped anyway.
WORD_HEAD_CHARS = 4096
WORD_CHARS_PER_TOKEN = 64  # twice the longest vocabulary token (32 characters)
# A run this long without whitespace is cut when only a head of tokens is wanted: its first
# characters alone give thousands of tokens, so the cut moves none of those kept.
LONGEST_RUN_CHARS = 1_000_000


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


def _fixed_segments(text: str) -> Iterator[str]:
    """``ftfy.fix_text(text)`` piece by piece: the same segments and settings as ftfy's own loop."""
    config = ftfy.TextFixerConfig(explain=False)
    pos = 0
    while pos < len(text):
        end = text.find("\n", pos) + 1 or len(text)
        end = min(end, pos + config.max_decode_length)
        segment = text[pos:end]
        if config.unescape_html == "auto" and "<" in segment:  # as ftfy: for this and later segments
            config = config._replace(unescape_html=False)
        yield ftfy.fix_and_explain(segment, config)[0]
        pos = end


def _clean(text: str) -> str:
    return html.unescape(html.unescape(text)).lower()


def pre_tokens(text: str, head_only: bool = False) -> Iterator[str]:
    """``TOKEN_PATTERN.findall(normalize_text(text))``, lazily: a caller that stops early
    does not pay for the rest of the text.

    Each fixed segment is cleaned up to its last safe cut (whitespace no entity, token or
    lowercasing context spans); the rest waits for the next segment. With ``head_only``
    (the caller wants the first tokens only), a run without whitespace is also cut after
    ``LONGEST_RUN_CHARS``, so a 60 MB word costs what its head costs.
    """
    return (token for token, _ in _pre_token_runs(text, head_only))


def _pre_token_runs(text: str, head_only: bool = False) -> Iterator[tuple[str, bool]]:
    """:func:`pre_tokens` with, for each, whether it starts a whitespace-separated word
    (tokens never hold whitespace, and every other character is in some token, so a token
    starts a word exactly when whitespace or the text's start precedes it)."""
    carry = ""
    for fixed in _fixed_segments(text):
        buffer = carry + fixed
        cut = max(buffer.rfind(c) for c in SAFE_CUTS) + 1
        if head_only and len(buffer) - cut > LONGEST_RUN_CHARS:
            cut = len(buffer)
        carry = buffer[cut:]
        yield from _runs(_clean(buffer[:cut]))
    yield from _runs(_clean(carry))


def _runs(piece: str) -> Iterator[tuple[str, bool]]:
    # A piece starts the text or follows a safe cut (whitespace): its start starts a word.
    for match in TOKEN_PATTERN.finditer(piece):
        start = match.start()
        yield match.group(), start == 0 or piece[start - 1].isspace()


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

    def _bpe(self, token: str, word_end: bool = True) -> tuple[str, ...]:
        """Merge the characters of one pre-token: the lowest-ranked adjacent pair first,
        equal ranks left to right, exactly as the reference's merge loop, in n log n.

        A merged token's pairs rank after the merge that made it (the vocabulary is built
        that way; tests check it), so popping a heap replays the reference's passes.
        ``word_end=False`` merges the head of a longer word (no ``</w>`` on its last char).
        """
        if token in (START_OF_TEXT, END_OF_TEXT):
            return (token,)
        symbols = list(token[:-1]) + [token[-1] + "</w>" if word_end else token[-1]]
        after = [*range(1, len(symbols)), -1]  # linked list of the symbols still standing
        before = list(range(-1, len(symbols) - 1))
        ranks = self.ranks
        heap = [(ranks[pair], i) for i, pair in enumerate(zip(symbols, symbols[1:])) if pair in ranks]
        heapq.heapify(heap)
        while heap:
            rank, i = heapq.heappop(heap)
            j = after[i]
            if j < 0 or symbols[i] == "" or ranks.get((symbols[i], symbols[j])) != rank:
                continue  # stale: a neighbour was merged since this pair was pushed
            symbols[i], symbols[j] = symbols[i] + symbols[j], ""
            after[i] = after[j]
            if after[i] >= 0:
                before[after[i]] = i
                self._push(heap, symbols, i, after[i])
            if before[i] >= 0:
                self._push(heap, symbols, before[i], i)
        return tuple(symbol for symbol in symbols if symbol)

    def _push(self, heap: list[tuple[int, int]], symbols: list[str], i: int, j: int) -> None:
        rank = self.ranks.get((symbols[i], symbols[j]))
        if rank is not None:
            heapq.heappush(heap, (rank, i))

    def _word(self, mapped: str, needed: int | None) -> tuple[str, ...]:
        """BPE of one byte-mapped pre-token, or of its head when only ``needed`` tokens count."""
        if len(mapped) <= CACHED_WORD_CHARS:
            return self._bpe_cached(mapped)
        head = _head_chars(needed)
        if needed is None or len(mapped) <= head:
            return self._bpe(mapped)
        return self._bpe(mapped[:head], word_end=False)[:needed]

    def encode(self, text: str, max_tokens: int | None = None) -> list[int]:
        """BPE ids of one text, without start/end tokens or padding.

        With ``max_tokens``, the first ``max_tokens`` ids (the same as the head of the
        unbounded ids), in time that grows with ``max_tokens``, not with the text.
        """
        if max_tokens is not None and max_tokens < 0:
            raise ValueError(f"max_tokens must be >= 0, got {max_tokens}")
        ids: list[int] = []
        for piece in pre_tokens(text, head_only=max_tokens is not None):
            if max_tokens is not None and len(ids) >= max_tokens:
                break
            needed = None if max_tokens is None else max_tokens - len(ids)
            if needed is not None:  # a longer piece stays longer than the head: it is still cut
                piece = piece[: _head_chars(needed) + 1]
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._word(mapped, needed))
        return ids if max_tokens is None else ids[:max_tokens]

    def words(self, text: str) -> list[list[int]]:
        """BPE ids of one whole text grouped by whitespace-separated word (their concatenation
        is :meth:`encode` ``(text)``): where ``text_overflow="chunk_mean"`` may cut."""
        out: list[list[int]] = []
        for piece, starts_word in _pre_token_runs(text):
            mapped = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
            if starts_word or not out:
                out.append([])
            out[-1].extend(self.encoder[t] for t in self._word(mapped, None))
        return out

    @property
    def window(self) -> int:
        """Content tokens one row holds: the context less start- and end-of-text."""
        return self.context_length - 2

    def frame(self, heads: Sequence[Sequence[int]]) -> torch.Tensor:
        """Id lists of at most :attr:`window` ids -> (N, context_length) rows framed by
        start/end-of-text and zero-padded."""
        out = torch.zeros(len(heads), self.context_length, dtype=torch.long)
        for row, ids in enumerate(heads):
            framed = [self.sot_id, *ids[: self.window], self.eot_id]
            out[row, : len(framed)] = torch.tensor(framed)
        return out

    def __call__(self, texts: str | Sequence[str]) -> torch.Tensor:
        """Texts -> (N, context_length) int64 ids, zero-padded; long texts keep EOT last."""
        if isinstance(texts, str):
            texts = [texts]
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text[{row}]: expected str, got {type(text).__name__}")
        return self.frame([self.encode(text, self.window) for text in texts])


def _head_chars(needed: int | None) -> int:
    """How much of a long word is merged when only ``needed`` of its tokens count."""
    return WORD_HEAD_CHARS if needed is None else max(WORD_HEAD_CHARS, WORD_CHARS_PER_TOKEN * needed)


@lru_cache(maxsize=1)
def default_tokenizer() -> Tokenizer:
    """The shared tokenizer instance (building it reads the vocabulary once)."""
    return Tokenizer()
