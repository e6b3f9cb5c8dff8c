"""JSON answers with many floats: orjson when installed (several times faster), else json."""

from __future__ import annotations

import json
from typing import Any

import torch
from starlette.responses import Response

try:  # optional speed-up; not a dependency of the serve extra
    import orjson
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None


class FastJSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if orjson is not None:
            return orjson.dumps(content)
        return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rows(vectors: torch.Tensor) -> list[list[float]]:
    """(N, D) float32 -> N lists of Python floats (float32 values print and parse back exactly)."""
    return vectors.float().tolist()
