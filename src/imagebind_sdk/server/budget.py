"""The server-wide memory budget (``--max-inflight-mb``): request bodies and decoded inputs.

A small upload can decode into a large tensor (a 1.5 KB one-frame MP4 becomes an 18 MB
video input), and concurrent large bodies add up, so requests are admitted by what they
will hold, not by their item count alone:

- a body reserves ``BODY_COPIES`` times its size before it is read (the bytes, the parsed
  JSON strings, the decoded files), by ``Content-Length`` or chunk by chunk as it streams;
- a request's items reserve ``ITEM_COPIES`` times their preprocessed size before decoding
  (``decoded_bytes``): the tensor, its copy in the stacked encoder batch and the encoder's
  working memory (measured on the tiny model: 4 one-frame videos, 72 MB of input, raised
  the peak by 91 + 69 + 139 MB in these three steps).

Past the budget a request gets 503 with ``Retry-After``; one that alone needs more than the
whole budget gets 413. Reservations are made and released on the event loop's thread only.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

from .errors import ApiError, overloaded
from .settings import BODY_COPIES

MB = 1024 * 1024
# A text item holds its 77 token ids and small per-item state; its characters are
# already counted with the body.
TEXT_ITEM_BYTES = 4096
FLOAT32_BYTES = 4
ITEM_COPIES = 4


def decoded_bytes(inputs: dict[str, list[Any]]) -> int:
    """Bytes the items of a request hold while served: ``ITEM_COPIES`` x their float32 inputs."""
    from ..preprocess import item_shape

    total = 0
    for kind, items in inputs.items():
        per_item = TEXT_ITEM_BYTES if kind == "text" else math.prod(item_shape(kind)) * FLOAT32_BYTES * ITEM_COPIES
        total += per_item * len(items)
    return total


def describe(inputs: dict[str, list[Any]]) -> str:
    """``decoded inputs (40 video, 2 text)``: what a reservation is for, in messages."""
    return "decoded inputs (" + ", ".join(f"{len(items)} {kind}" for kind, items in inputs.items() if items) + ")"


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / MB:.1f} MB"


class MemoryBudget:
    """Bytes reserved by requests being served, against ``limit`` bytes."""

    def __init__(self, limit: int, retry_after_s: int, gauge: Any = None) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.gauge = gauge  # a Prometheus gauge of the bytes reserved, if given
        self.used = 0

    def _set(self, used: int) -> None:
        self.used = used
        if self.gauge is not None:
            self.gauge.set(used)

    def reserve(self, n_bytes: int, what: str) -> None:
        """Take ``n_bytes`` or raise: 413 if it could never fit, 503 if it does not fit now."""
        if n_bytes > self.limit:
            raise ApiError(413, f"{what}: {_mb(n_bytes)} of server memory needed, more than the "
                                f"{_mb(self.limit)} the server holds for all requests together "
                                "(--max-inflight-mb); split the request")
        if self.used + n_bytes > self.limit:
            raise overloaded(f"server overloaded: {what}: {_mb(n_bytes)} of server memory needed, "
                             f"{_mb(self.limit - self.used)} of {_mb(self.limit)} free (--max-inflight-mb); "
                             "retry later", self.retry_after_s)
        self._set(self.used + n_bytes)

    def release(self, n_bytes: int) -> None:
        self._set(self.used - n_bytes)

    @contextlib.contextmanager
    def hold(self, n_bytes: int, what: str) -> Iterator[None]:
        """``reserve`` for the duration of a ``with`` block."""
        self.reserve(n_bytes, what)
        try:
            yield
        finally:
            self.release(n_bytes)
