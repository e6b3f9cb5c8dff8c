"""Zero-shot classification from embeddings: label embeddings, probabilities, results.

``ImageBind.zero_shot`` (and ``imagebind-sdk classify``) compose these with the
model; here nothing needs the model.

>>> import torch
>>> from imagebind_sdk.vectors.zero_shot import zero_shot_probs
>>> zero_shot_probs(torch.eye(2), torch.tensor([[1.0, 0.0]]), logit_scale=100.0).argmax().item()
0
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Sequence

import torch

from .ops import ArrayLike, as_matrix, check_top_k, normalize_rows, similarity
from .templates import templates_for

__all__ = ["ZeroShotResult", "build_label_embeddings", "parse_labels", "zero_shot_probs"]

MIN_LABELS = 2  # a softmax over one label is always 1.0


def parse_labels(labels: str | Iterable[str]) -> list[str]:
    """Candidate labels as a list: a string is split on commas (as Hugging Face's
    zero-shot pipeline does), blanks around each label dropped.

    ValueError for fewer than two labels or an empty label; TypeError for a non-string.

    >>> parse_labels("dog, cat")
    ['dog', 'cat']
    """
    if isinstance(labels, str):
        out = [label.strip() for label in labels.split(",")]
    elif isinstance(labels, (bytes, bytearray)) or not isinstance(labels, Iterable):
        raise TypeError(f"labels must be a str or a list of str, got {type(labels).__name__}")
    else:
        out = list(labels)
    bad = next((lab for lab in out if not isinstance(lab, str)), None)
    if bad is not None:
        raise TypeError(f"labels must be strings, got {bad!r}")
    if any(not lab.strip() for lab in out):
        raise ValueError(f"labels must not be empty strings, got {out}")
    if len(out) < MIN_LABELS:
        raise ValueError(
            f"zero-shot classification needs at least {MIN_LABELS} labels (a softmax over one label "
            f"is always 1.0), got {out}; pass a list or a comma-separated string"
        )
    return out


def zero_shot_probs(
    label_embeddings: ArrayLike,
    input_embeddings: ArrayLike,
    logit_scale: float | torch.Tensor,
) -> torch.Tensor:
    """Class probabilities ``softmax(logit_scale * cosine)`` over labels, shape (N_inputs, N_labels).

    >>> probs = zero_shot_probs(label_emb, out.vision, logit_scale=100.0)  # doctest: +SKIP
    >>> probs.sum(dim=1)  # doctest: +SKIP
    tensor([1.0000])
    """
    scale = float(logit_scale.item() if isinstance(logit_scale, torch.Tensor) else logit_scale)
    if not math.isfinite(scale):
        raise ValueError(f"logit_scale must be finite, got {scale}")
    logits = scale * similarity(input_embeddings, label_embeddings)
    return logits.softmax(dim=-1)


def build_label_embeddings(
    labels: str | Sequence[str],
    templates: str | Iterable[str],
    encode_text: Callable[[list[str]], torch.Tensor],
) -> torch.Tensor:
    """One unit embedding per label: mean of its normalised template embeddings, renormalised.

    Every template is filled with ``template.format(label)``; all strings are encoded
    in one ``encode_text(list_of_str) -> (n, D)`` call, in label-major order.

    >>> emb = build_label_embeddings(["dog", "cat"], ["a photo of a {}."],
    ...                              lambda s: model.embed(text=s).text)  # doctest: +SKIP
    >>> emb.shape  # doctest: +SKIP
    torch.Size([2, 1024])
    """
    labels = [labels] if isinstance(labels, str) else list(labels)
    if not labels:
        raise ValueError("labels must not be empty")
    bad = [lab for lab in labels if not isinstance(lab, str)]
    if bad:
        raise TypeError(f"labels must be strings, got {bad[0]!r}")
    if templates is None:
        raise ValueError("templates is required; see imagebind_sdk.vectors.templates.templates_for")
    temps = templates_for("", templates)
    texts = [t.format(label) for label in labels for t in temps]
    encoded = as_matrix(encode_text(texts), "encode_text output")
    if encoded.shape[0] != len(texts):
        raise ValueError(
            f"encode_text returned {encoded.shape[0]} rows for {len(texts)} strings"
        )
    per_label = normalize_rows(encoded).reshape(len(labels), len(temps), -1)
    return normalize_rows(per_label.mean(dim=1)).cpu()


class ZeroShotResult:
    """Zero-shot classification result for one or many inputs.

    ``probs`` is (N_inputs, N_labels); ``sources`` names each input row.
    ``top_k`` (None = all labels) is how many labels printing and ``to_list``
    show by default; ``probs`` always holds every label.

    >>> res = ZeroShotResult(["dog", "cat"], torch.tensor([[0.9, 0.1]]), ["dog.jpg"])
    >>> res.top(1)
    [[('dog', 0.8999999761581543)]]
    >>> res.predictions
    ['dog']
    """

    def __init__(
        self,
        labels: Sequence[str],
        probs: torch.Tensor,
        sources: Sequence[str] | None = None,
        top_k: int | None = None,
    ) -> None:
        if top_k is not None:
            check_top_k(top_k)
        self.top_k: int | None = top_k
        probs = as_matrix(probs, "probs").cpu()
        self.labels: list[str] = list(labels)
        if probs.shape[1] != len(self.labels):
            raise ValueError(
                f"probs has {probs.shape[1]} columns but there are {len(self.labels)} labels"
            )
        self.probs: torch.Tensor = probs
        n = probs.shape[0]
        self.sources: list[str] = [str(i) for i in range(n)] if sources is None else list(sources)
        if len(self.sources) != n:
            raise ValueError(f"got {len(self.sources)} sources for {n} rows of probs")

    def __len__(self) -> int:
        return self.probs.shape[0]

    def __getitem__(self, i: int) -> ZeroShotResult:
        """The result of input ``i`` alone."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"input index {i} out of range for {n} inputs")
        i %= n
        return ZeroShotResult(self.labels, self.probs[i : i + 1], [self.sources[i]], top_k=self.top_k)

    def top(self, k: int = 1) -> list[list[tuple[str, float]]]:
        """Per input, the ``k`` most probable ``(label, prob)`` pairs, highest first.

        Ties keep label order. ``k`` larger than the number of labels returns all.
        """
        check_top_k(k, "k")
        k = min(k, len(self.labels))
        values, order = torch.sort(self.probs, dim=1, descending=True, stable=True)
        return [
            [(self.labels[j], float(p)) for j, p in zip(idx[:k].tolist(), vals[:k].tolist())]
            for idx, vals in zip(order, values)
        ]

    @property
    def predictions(self) -> list[str]:
        """The top-1 label of each input."""
        return [row[0][0] for row in self.top(1)]

    def to_list(self, k: int | None = None) -> list[dict[str, Any]]:
        """JSON-friendly list: per input its source, top-1 label/prob and the top ``k``.

        ``k=None`` uses the result's ``top_k`` (all labels when that is None too).
        """
        k = k if k is not None else self.top_k
        rows = self.top(len(self.labels) if k is None else k)
        return [
            {
                "source": src,
                "label": row[0][0],
                "prob": row[0][1],
                "top": [{"label": lab, "prob": p} for lab, p in row],
            }
            for src, row in zip(self.sources, rows)
        ]

    def to_dict(self, k: int | None = None) -> dict[str, Any]:
        """JSON-friendly dict ``{"labels": [...], "results": to_list(k)}``."""
        return {"labels": list(self.labels), "results": self.to_list(k)}

    def __repr__(self) -> str:
        head = f"ZeroShotResult({len(self)} input(s), {len(self.labels)} label(s))"
        shown = min(len(self), 20)
        width = max((len(lab) for lab in self.labels), default=0)
        lines = [head]
        for src, row in zip(self.sources[:shown], self.top(self.top_k or 5)[:shown]):
            lines.append(f"  {src}")
            lines.extend(f"    {lab:<{width}}  {p:.4f}" for lab, p in row)
        if len(self) > shown:
            lines.append(f"  ... ({len(self) - shown} more)")
        return "\n".join(lines)

    __str__ = __repr__
