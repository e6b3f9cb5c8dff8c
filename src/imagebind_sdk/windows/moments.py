"""Find the moments of long recordings that match a query: windows above a threshold, merged.

>>> moments = find_moments(model.embed(text="applause").text[0], model.embed_windows(audio="talk.wav"))  # doctest: +SKIP
>>> moments[0]  # doctest: +SKIP
{'source': 'talk.wav', 'start_s': 61.0, 'end_s': 66.0, 'score': 0.31}

Rule: each window scores the cosine with the query. Windows scoring at least the
threshold (``min_score``; by default halfway from the median window score to the best
one, over all inputs given) are merged, per source in time order, into one segment
while the next window starts at most ``merge_gap_s`` after the segment ends
(overlapping windows always merge). A segment spans its first window's start to its
last window's end and scores its best window. The ``top_k`` best segments are returned,
best first (ties: earlier first).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch

from ..vectors.ops import ArrayLike, as_query, normalize_rows
from ..pipeline import embed_kind, pipeline_of
from .embed import WindowEmbeddings, Windows, embed_windows

__all__ = ["find_moments", "find_moments_in", "format_timestamp"]


def _threshold(scores: torch.Tensor, min_score: float | None) -> float:
    if min_score is not None:
        return float(min_score)
    median, best = float(scores.median()), float(scores.max())
    return median + (best - median) / 2


def _segments(windows: Windows, scores: torch.Tensor, threshold: float, gap: float) -> list[dict[str, Any]]:
    """Runs of windows of one input scoring >= threshold, merged across gaps <= ``gap`` seconds."""
    out: list[dict[str, Any]] = []
    order = torch.argsort(windows.start_s, stable=True).tolist()
    starts, ends, values = windows.start_s.tolist(), windows.end_s.tolist(), scores.tolist()
    for i in (i for i in order if values[i] >= threshold):
        if out and starts[i] - out[-1]["end_s"] <= gap:
            out[-1]["end_s"] = max(out[-1]["end_s"], ends[i])
            out[-1]["score"] = max(out[-1]["score"], values[i])
        else:
            out.append({"source": windows.source, "start_s": starts[i], "end_s": ends[i], "score": values[i]})
    return out


def find_moments(
    query: ArrayLike,
    windows: WindowEmbeddings | Windows | Sequence[Windows],
    top_k: int = 5,
    merge_gap_s: float = 1.0,
    min_score: float | None = None,
) -> list[dict[str, Any]]:
    """The ``top_k`` segments best matching ``query`` (one (D,) vector): ``[{"source", "start_s", "end_s", "score"}]``."""
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive int, got {top_k!r}")
    if min_score is not None and not math.isfinite(min_score):
        raise ValueError(f"min_score must be a finite cosine threshold, got {min_score!r}")
    if not merge_gap_s >= 0 or not math.isfinite(merge_gap_s):
        raise ValueError(f"merge_gap_s must be >= 0 seconds, got {merge_gap_s!r}")
    q = as_query(query)
    if q.shape[0] != 1:
        raise ValueError(f"expected one query vector, got {q.shape[0]} rows")
    given = [windows] if isinstance(windows, Windows) else list(windows)
    items = [w for w in given if len(w)]
    if not items:
        raise ValueError(f"no windows to search: the {len(given)} input(s) given hold no windows")
    q = normalize_rows(q.float().cpu())[0]
    for w in items:
        if w.vectors.shape[1] != q.shape[0]:
            raise ValueError(f"query has dim {q.shape[0]}, the windows of {w.source} have dim {w.vectors.shape[1]}")
    scores = [normalize_rows(w.vectors.float()) @ q for w in items]
    threshold = _threshold(torch.cat(scores), min_score)
    segments = [s for w, sc in zip(items, scores) for s in _segments(w, sc, threshold, merge_gap_s)]
    segments.sort(key=lambda s: (-s["score"], s["start_s"]))
    return segments[:top_k]


def find_moments_in(
    model: Any,
    text: str | None = None,
    *,
    query: ArrayLike | None = None,
    top_k: int = 5,
    merge_gap_s: float = 1.0,
    min_score: float | None = None,
    **inputs: Any,
) -> list[dict[str, Any]]:
    """Embed ``text`` (or take ``query``, a vector) and the recordings in ``inputs``
    (``audio=``, ``video=``, ``imu=`` and :func:`~imagebind_sdk.windows.embed.embed_windows`
    options), then :func:`find_moments`."""
    if (text is None) == (query is None):
        raise ValueError("give exactly one of text= (a string) or query= (a vector)")
    if text is not None:
        if not isinstance(text, str):
            raise TypeError(f"text must be one string, got {type(text).__name__}")
        query = embed_kind(pipeline_of(model), "text", [text]).vectors[0]
    windows = embed_windows(model, **inputs)
    return find_moments(query, windows, top_k=top_k, merge_gap_s=merge_gap_s, min_score=min_score)


def format_timestamp(seconds: float) -> str:
    """``HH:MM:SS.s`` (tenths rounded): 3725.25 -> ``01:02:05.3``."""
    tenths = round(seconds * 10)
    hours, rest = divmod(tenths, 36000)
    minutes, rest = divmod(rest, 600)
    return f"{hours:02d}:{minutes:02d}:{rest // 10:02d}.{rest % 10}"
