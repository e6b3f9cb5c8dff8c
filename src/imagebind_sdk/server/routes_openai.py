"""OpenAI-compatible text embeddings: ``POST /v1/embeddings`` (float or base64 answers).

The official ``openai`` client asks for ``encoding_format="base64"`` unless told
otherwise and decodes little-endian float32, which is what we send. Vectors are unit
length, as OpenAI's are.
"""

from __future__ import annotations

import base64
from typing import Any

import torch
from fastapi import APIRouter, Request

from .decode import json_type, parse_json_object
from .errors import bad_request
from .respond import FastJSONResponse
from .routes_native import text_overflow
from .routes_weaviate import service_of

router = APIRouter()

ENCODINGS = ("float", "base64")


def _texts(payload: dict[str, Any]) -> list[str]:
    value = payload.get("input")
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        raise bad_request(f"input: expected a string or a non-empty array of strings, got {json_type(value)}")
    for index, item in enumerate(value):
        if isinstance(item, (int, list)) and not isinstance(item, bool):
            raise bad_request(f"input[{index}]: token arrays are not supported (they are another model's "
                              "tokens); send the text as a string")
        if not isinstance(item, str):
            raise bad_request(f"input[{index}]: expected a string, got {json_type(item)}")
    return value


def _check_options(payload: dict[str, Any], dim: int) -> str:
    encoding = payload.get("encoding_format") or "float"
    if encoding not in ENCODINGS:
        raise bad_request(f"encoding_format: expected one of {list(ENCODINGS)}, got {encoding!r}")
    dimensions = payload.get("dimensions")
    if dimensions is not None and dimensions != dim:
        raise bad_request(f"dimensions: this model's vectors have {dim} dimensions, got a request for {dimensions!r}")
    return encoding


def _encode(vector: torch.Tensor, encoding: str) -> Any:
    if encoding == "base64":
        return base64.b64encode(vector.numpy().astype("<f4", copy=False).tobytes()).decode("ascii")
    return vector.tolist()


@router.post("/v1/embeddings")
async def embeddings(request: Request) -> FastJSONResponse:
    service = service_of(request)
    payload = parse_json_object(await request.body())
    texts = _texts(payload)
    service.require_engine()
    encoding = _check_options(payload, service.model.embedding_dim)
    # "model": the base (the served name) or a LoRA adapter; any name when the server has no adapters.
    adapter = service.adapter_for(payload.get("model"), lenient=True)
    overflow = text_overflow(payload.get("text_overflow", "truncate"))  # an extension: extra_body= in openai
    result = await service.run(service.embed({"text": texts}, {"text": "input"}, normalize=True, adapter=adapter,
                                             text_overflow=overflow))
    unit = result.vectors["text"].to(torch.float32)
    data = [{"object": "embedding", "index": i, "embedding": _encode(v, encoding)} for i, v in enumerate(unit)]
    usage = {"prompt_tokens": result.text_tokens, "total_tokens": result.text_tokens}
    return FastJSONResponse({"object": "list", "data": data, "model": adapter or service.name, "usage": usage})

