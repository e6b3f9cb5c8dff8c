"""Weaviate ``multi2vec-bind`` compatible API: health, /meta and /vectorize.

Request and answer shapes follow the module's inference container (and its Go client):
every field optional, values are base64 file bytes, vectors are the reference model's
raw outputs (unit x logit scale per clip, averaged over clips), ``[]`` where not asked.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from .decode import b64_bytes, parse_json_object, string_list, as_list
from .respond import FastJSONResponse, rows
from .service import Service
from .settings import public_name

router = APIRouter()

# Request field -> (input kind, answer field).
FIELDS = {
    "texts": ("text", "textVectors"),
    "images": ("vision", "imageVectors"),
    "audio": ("audio", "audioVectors"),
    "video": ("video", "videoVectors"),
    "imu": ("imu", "imuVectors"),
    "thermal": ("thermal", "thermalVectors"),
    "depth": ("depth", "depthVectors"),
}


def service_of(request: Request) -> Service:
    return request.app.state.service


@router.api_route("/.well-known/live", methods=["GET", "HEAD"])
async def live() -> Response:
    """204 as soon as the process serves HTTP."""
    return Response(status_code=204)


@router.api_route("/.well-known/ready", methods=["GET", "HEAD"])
async def ready(request: Request) -> Response:
    """204 once the model is loaded, 503 before (and while shutting down)."""
    service = service_of(request)
    ok = service.ready and not request.app.state.stopping
    return Response(status_code=204 if ok else 503)


@router.get("/meta")
async def meta(request: Request) -> FastJSONResponse:
    from ..version import __version__

    service = service_of(request)
    model = service.model
    body = {
        "name": service.name,
        "package": "imagebind-sdk",
        "version": __version__,
        "ready": service.ready,
    }
    if model is not None:
        body |= {
            "model": {"source": public_name(str(model.source)), "revision": getattr(model, "revision", None)},
            "modalities": list(model.modalities),
            "dimension": model.embedding_dim,
            "device": str(model.device),
            "dtype": str(model.dtype).removeprefix("torch."),
            "backend": getattr(model, "backend", "torch"),
            "quantize": getattr(model, "quantize", None),
            "adapters": service.adapters,  # the "model" names a request may give, beside "name" (the base)
            "default_model": service.default_adapter or service.name,
            # model spaces (vectors of different ones are not comparable), hashed off the event loop
            **await run_in_threadpool(_spaces, service, model),
        }
    return FastJSONResponse(body)


def _spaces(service: Service, model: Any) -> dict[str, Any]:
    """``space``: the default model's (what /vectorize answers with); ``spaces``: each served
    model name (the base's, each adapter's) -> its space id (None: unknown)."""
    space_of = getattr(model, "space_of", None)
    if space_of is None:  # a model without spaces
        return {"space": None, "spaces": {}}
    named = {service.name: space_of(None)} | {name: space_of(name) for name in service.adapters}
    default = space_of(service.default_adapter)
    return {"space": default.to_dict() if default is not None else None,
            "spaces": {name: str(space) if space is not None else None for name, space in named.items()}}


@router.post("/vectorize")
async def vectorize(request: Request) -> FastJSONResponse:
    service = service_of(request)
    payload = parse_json_object(await request.body())
    inputs, fields = {}, {}
    for field, (kind, _) in FIELDS.items():
        if kind == "text":
            inputs[kind] = string_list(payload, field)
        else:
            inputs[kind] = [b64_bytes(value, f"{field}[{i}]") for i, value in enumerate(as_list(payload, field))]
        fields[kind] = field
    # Weaviate's module sends no model name: the default one (see Service.adapter_for).
    result = await service.run(service.embed(inputs, fields, adapter=service.adapter_for(None)))
    return FastJSONResponse({answer: rows(result.vectors[kind]) for kind, answer in FIELDS.values()})
