"""The search API the page uses (usable without it): search, items, their media, zero-shot, similarity."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, Response

from ..server.decode import parse_json_object, string_list
from ..server.errors import bad_request
from ..server.respond import FastJSONResponse
from . import search as searching
from .catalog import Catalog
from .media import Thumbnails, lookup, media_file
from .query import form_query, json_query
from .state import AppState

router = APIRouter()

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
MAX_FORM_PARTS = 64
MAX_LIST = 1000  # items per GET /v1/items page


def state_of(request: Request) -> AppState:
    return request.app.state.search


def catalog_of(request: Request) -> Catalog:
    return state_of(request).require_catalog()


def _id(text: str) -> int:
    if not text.isdigit():  # also refuses "-1", "../x" and friends: ids are row numbers
        raise bad_request(f"item id: expected a non-negative integer, got {text!r}")
    return int(text)


@router.get("/v1/app/status")
async def status(request: Request) -> FastJSONResponse:
    """Indexing progress: ``stage`` (loading, indexing, ready, failed), ``done``/``total`` files, ``items``."""
    limit = request.app.state.service.settings.max_request_bytes  # the page checks uploads against it
    return FastJSONResponse({**state_of(request).status(), "max_request_bytes": limit})


@router.post("/v1/search")
async def search(request: Request) -> FastJSONResponse:
    catalog = catalog_of(request)
    service = request.app.state.service
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        settings = service.settings
        form = await request.form(max_files=MAX_FORM_PARTS, max_fields=MAX_FORM_PARTS,
                                  max_part_size=settings.max_request_bytes)
        try:
            query = await form_query(form)
        finally:
            await form.close()
    else:
        query = json_query(parse_json_object(await request.body()))
    results = await service.run(searching.search(service, catalog, query))
    return FastJSONResponse({"results": results})


@router.get("/v1/items")
async def items(request: Request, offset: int = 0, limit: int = 100) -> FastJSONResponse:
    """A page of items in id order: ``{"total", "items": [{id, path, kind, start_s, end_s}]}``."""
    catalog = catalog_of(request)
    if offset < 0 or not 1 <= limit <= MAX_LIST:
        raise bad_request(f"expected offset >= 0 and limit in [1, {MAX_LIST}], got offset={offset} limit={limit}")
    chosen = catalog.items[offset : offset + limit]
    return FastJSONResponse({"total": len(catalog), "items": [item.to_dict() for item in chosen]})


@router.get("/v1/items/{item_id}")
async def item(request: Request, item_id: str) -> FastJSONResponse:
    return FastJSONResponse(lookup(catalog_of(request), _id(item_id)).to_dict())


@router.api_route("/v1/items/{item_id}/media", methods=["GET", "HEAD"])
async def media(request: Request, item_id: str) -> Response:
    """The item's original file; ``Range: bytes=...`` answers 206 so players can seek."""
    path, media_type = media_file(lookup(catalog_of(request), _id(item_id)))
    return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})


@router.get("/v1/items/{item_id}/thumbnail")
async def thumbnail(request: Request, item_id: str) -> Response:
    """A JPEG at most 320 px on the long side: images, depth, thermal, and a video frame of the window."""
    found = lookup(catalog_of(request), _id(item_id))
    thumbnails: Thumbnails = request.app.state.thumbnails
    data = await request.app.state.service.run(_in_thread(thumbnails.get, found))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


async def _in_thread(function: Any, *args: Any) -> Any:
    """Decoding a thumbnail (PIL, PyAV) blocks: off the event loop."""
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


@router.post("/v1/items/similarity")
async def item_similarity(request: Request) -> FastJSONResponse:
    """``{"ids": [..]}`` -> ``{"ids", "matrix"}``: cosine similarity of every pair (the page's heatmap)."""
    payload = parse_json_object(await request.body())
    ids = searching.check_ids(payload.get("ids"), "ids", searching.MAX_COMPARE)
    return FastJSONResponse({"ids": ids, "matrix": searching.item_similarity(catalog_of(request), ids)})


@router.post("/v1/items/zero-shot")
async def item_zero_shot(request: Request) -> FastJSONResponse:
    """``{"id": N, "labels": [..] | "a, b"}`` -> ``{"id", "labels", "probabilities"}`` (they sum to 1)."""
    payload = parse_json_object(await request.body())
    labels_value = payload.get("labels")
    if isinstance(labels_value, str):
        labels = [label.strip() for label in labels_value.split(",") if label.strip()]
    else:
        labels = [label.strip() for label in string_list(payload, "labels") if label.strip()]
    item_id = searching.check_ids([payload.get("id")], "id", 1)[0]
    catalog, service = catalog_of(request), request.app.state.service
    probabilities = await service.run(searching.item_zero_shot(service, catalog, item_id, labels))
    return FastJSONResponse({"id": item_id, "labels": labels, "probabilities": probabilities})
