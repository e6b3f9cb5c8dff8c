"""Texts longer than the text encoder's 77-token context: ``text_overflow=``.

- ``"truncate"`` (the default, the reference's behaviour): keep the first 75 content
  tokens (end-of-text stays last); the call logs one warning with the count of cut texts.
- ``"chunk_mean"``: cut the text into windows of at most 75 content tokens (77 framed) at
  whitespace word boundaries (a single word longer than a window is cut inside), embed each
  window, and return the renormalised mean of the windows' unit vectors (the recipe of
  fine-tunes such as VideoBind). With ``normalize=False``, the plain mean of the windows'
  raw outputs. A text that fits one window gives exactly its truncate vector.
- ``"error"``: a longer text raises :class:`InputError` naming ``text[i]`` and its token count.

Every door (``embed``, the CLI, the server, the integrations) goes through :func:`text_rows`,
so a text is tokenised in one place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch

from ..preprocess.sources import InputError
from ..preprocess.tokenizer import Tokenizer
from .encoding import Rows, unit_rows

logger = logging.getLogger(__name__)

TEXT_OVERFLOW = ("truncate", "chunk_mean", "error")


def check_text_overflow(value: str) -> None:
    if value not in TEXT_OVERFLOW:
        raise ValueError(f"text_overflow must be one of {list(TEXT_OVERFLOW)}, got {value!r}")


@dataclass
class TextRows:
    """Model-input rows of some texts: ``ids`` (M, 77), the text (position) each row belongs
    to, and how many texts were cut (truncate)."""

    ids: torch.Tensor
    owner: list[int]
    cut: int = 0

    def merge(self, rows: Rows, n_texts: int, normalize: bool) -> Rows:
        """Per-row outcomes -> per-text outcomes: a text of several rows is their mean
        (renormalised when ``normalize``); it fails when any of its rows failed."""
        if len(self.owner) == n_texts:  # one row per text: the rows themselves, bit for bit
            return rows
        out = torch.zeros(n_texts, rows.vectors.shape[1], dtype=rows.vectors.dtype)
        count = torch.zeros(n_texts, 1, dtype=rows.vectors.dtype)
        owner = torch.tensor(self.owner)
        out.index_add_(0, owner, rows.vectors)
        count.index_add_(0, owner, torch.ones(len(owner), 1, dtype=rows.vectors.dtype))
        out = out / count
        single = [i for i, n in enumerate(count.view(-1).tolist()) if n == 1]
        if normalize:
            many = [i for i, n in enumerate(count.view(-1).tolist()) if n > 1]
            out[many] = unit_rows(out[many])
        out[single] = rows.vectors[[self.owner.index(i) for i in single]]  # exact, not x / 1
        failed: dict[int, str] = {}
        for j in sorted(rows.failed):  # a text fails with its first failed window's reason
            failed.setdefault(self.owner[j], rows.failed[j])
        out[list(failed)] = 0.0
        return Rows(out, failed)


def windows(tokenizer: Tokenizer, text: str) -> list[list[int]]:
    """The content ids of ``text`` cut into windows of at most ``tokenizer.window`` ids at
    word boundaries (a word longer than a window is cut inside it)."""
    size = tokenizer.window
    out: list[list[int]] = [[]]
    for word in tokenizer.words(text):
        if out[-1] and len(out[-1]) + len(word) > size:
            out.append([])
        out[-1].extend(word)
        while len(out[-1]) > size:  # only a word longer than a window gets here
            head, rest = out[-1][:size], out[-1][size:]
            out[-1:] = [head, rest]
    return out


def text_rows(tokenizer: Tokenizer, texts: Sequence[str], overflow: str, indices: Sequence[int] | None = None,
              name: str = "text") -> TextRows:
    """``texts`` -> :class:`TextRows` as ``overflow`` says; errors name ``name[index]`` (``indices``:
    the texts' positions in the caller's list; default 0..N-1)."""
    check_text_overflow(overflow)
    size = tokenizer.window
    heads, owner, cut = [], [], 0
    for position, text in enumerate(texts):
        head = tokenizer.encode(text, size + 1)  # one more than fits: tells whether the text is longer
        if len(head) <= size or overflow == "truncate":
            cut += len(head) > size
            heads.append(head)
            owner.append(position)
            continue
        if overflow == "error":
            index = indices[position] if indices is not None else position
            raise InputError(too_long(index, len(tokenizer.encode(text)), size, name))
        parts = windows(tokenizer, text)
        heads += parts
        owner += [position] * len(parts)
    return TextRows(tokenizer.frame(heads), owner, cut)


def too_long(index: int, n_tokens: int, size: int, name: str = "text") -> str:
    return (f"{name}[{index}]: {n_tokens} tokens, more than the {size} a text holds (the encoder's context "
            f"less start/end); shorten it, or pass text_overflow='truncate' or 'chunk_mean'")


def check_fits(tokenizer: Tokenizer, texts: Sequence[str]) -> None:
    """``text_overflow="error"`` before any work: InputError naming the first text that is too long."""
    size = tokenizer.window
    for i, text in enumerate(texts):
        if len(tokenizer.encode(text, size + 1)) > size:
            raise InputError(too_long(i, len(tokenizer.encode(text)), size))


def warn_cut(cut: int, total: int) -> None:
    """The one warning of a ``text_overflow="truncate"`` call that cut texts."""
    if cut:
        logger.warning("%d of %d texts are longer than the text encoder's context and were truncated "
                       "(text_overflow='truncate'; 'chunk_mean' embeds all of a text, 'error' refuses it)",
                       cut, total)
