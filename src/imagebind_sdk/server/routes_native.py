"""The native API: ``POST /v1/embed`` (JSON or multipart uploads) and ``POST /v1/zero-shot``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.datastructures import UploadFile

from ..kinds import FILE_KINDS, INPUT_KINDS
from ..pipeline.overflow import TEXT_OVERFLOW
from .decode import as_list, form_bool, json_type, native_media, optional_bool, parse_json_object, string_list
from .errors import ApiError, bad_request
from .respond import FastJSONResponse, rows
from .routes_weaviate import service_of

router = APIRouter()

EMBED_OPTIONS = ("normalize", "on_error", "model", "text_overflow", "encoding")
ZERO_SHOT_OPTIONS = ("labels", "templates", "top_k", "model")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
MAX_FORM_ITEMS = 10_000  # multipart files and fields per request (bodies are size-limited anyway)


def _media_items(payload: dict[str, Any], kind: str) -> list[bytes]:
    value = payload.get(kind)
    values = [value] if isinstance(value, (str, dict)) else as_list(payload, kind)
    return [native_media(item, f"{kind}[{i}]") for i, item in enumerate(values)]


def _json_inputs(payload: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, list[Any]]:
    unknown = sorted(set(payload) - set(INPUT_KINDS) - set(allowed))
    if unknown:
        raise bad_request(f"unknown fields {unknown}; expected input kinds {list(INPUT_KINDS)} and {list(allowed)}")
    inputs: dict[str, list[Any]] = {}
    for kind in INPUT_KINDS:
        if kind in payload:
            inputs[kind] = string_list(payload, kind, allow_single=True) if kind == "text" else _media_items(payload, kind)
    return inputs


async def _form_inputs(request: Request) -> tuple[dict[str, list[Any]], dict[str, str]]:
    """``multipart/form-data``: file parts named by kind, ``text`` fields, option fields."""
    settings = request.app.state.service.settings
    form = await request.form(max_files=MAX_FORM_ITEMS, max_fields=MAX_FORM_ITEMS,
                              max_part_size=settings.max_request_bytes)
    inputs: dict[str, list[Any]] = {}
    options: dict[str, str] = {}
    for name, value in form.multi_items():
        where = f"{name}[{len(inputs.get(name, []))}]"
        if name in EMBED_OPTIONS:
            options[name] = value if isinstance(value, str) else ""
        elif name == "text":
            if not isinstance(value, str):
                raise bad_request(f"{where}: expected a text field, got a file upload")
            inputs.setdefault(name, []).append(value)
        elif name in FILE_KINDS:
            if not isinstance(value, UploadFile):
                raise bad_request(f"{where}: expected a file upload (curl -F {name}=@file), got a text field")
            inputs.setdefault(name, []).append(await value.read())
        else:
            raise bad_request(f"unknown form field {name!r}; expected input kinds {list(INPUT_KINDS)} "
                              f"and {list(EMBED_OPTIONS)}")
    await form.close()
    return inputs, options


def _on_error(value: Any) -> bool:
    """``on_error``: "raise" (default: a bad item fails the request) or "skip" -> skip bad items?"""
    if value not in ("raise", "skip"):
        raise bad_request(f"on_error: expected \"raise\" or \"skip\", got {value!r}")
    return value == "skip"


def text_overflow(value: Any) -> str:
    """``text_overflow``: texts past the 77-token context, as ``embed(text_overflow=...)``."""
    if value not in TEXT_OVERFLOW:
        raise bad_request(f"text_overflow: expected one of {list(TEXT_OVERFLOW)}, got {value!r}")
    return value


@router.post("/v1/embed")
async def embed(request: Request) -> FastJSONResponse:
    service = service_of(request)
    if request.headers.get("content-type", "").startswith(FORM_TYPES):
        inputs, options = await _form_inputs(request)
        normalize = form_bool(options.get("normalize", "true"), "normalize")
        skip_bad = _on_error(options.get("on_error", "raise"))
    else:
        options = parse_json_object(await request.body())
        inputs = _json_inputs(options, EMBED_OPTIONS)
        normalize = optional_bool(options, "normalize", True)
        skip_bad = _on_error(options.get("on_error", "raise"))
    encoding = _encoding(options.get("encoding", "float32"), normalize)
    if not any(inputs.values()):
        raise bad_request(f"nothing to embed: give at least one item of {', '.join(INPUT_KINDS)}")
    adapter = service.adapter_for(options.get("model"))
    result = await service.run(service.embed(inputs, {k: k for k in inputs}, skip_bad=skip_bad, normalize=normalize,
                                             adapter=adapter, text_overflow=text_overflow(
                                                 options.get("text_overflow", "truncate"))))
    answer: dict[str, Any] = {"model": adapter or service.name, "dim": service.model.embedding_dim,
                              "normalize": normalize}
    if encoding == "float32":
        answer["embeddings"] = {kind: rows(vectors) for kind, vectors in result.vectors.items()}
    else:
        answer.update(await service.run(_compact(service, result.vectors, encoding, adapter)))
    return FastJSONResponse({**answer, "skipped": result.skipped})


def _encoding(value: Any, normalize: bool) -> str:
    """``encoding``: one of :data:`~imagebind_sdk.vectors.compact.ENCODINGS`; int8/uint8 need unit vectors."""
    from ..vectors.compact import check_encoding, needs_ranges

    try:
        encoding = check_encoding(value)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    if needs_ranges(encoding) and not normalize:
        raise bad_request(f"encoding: {encoding} is calibrated on unit vectors; use it with normalize=true")
    return encoding


async def _compact(service: Any, vectors: dict[str, Any], encoding: str, adapter: str | None) -> dict[str, Any]:
    """The answer's ``embeddings`` in ``encoding`` (JSON ints or floats) and, for int8/uint8, the
    digest of the server's fixed calibration (equal digests: comparable vectors)."""
    from ..vectors.compact import needs_ranges, packed_dim, quantize, to_json_rows

    ranges = await service.ranges(adapter) if needs_ranges(encoding) else None
    out: dict[str, Any] = {
        "encoding": encoding, "packed_dim": packed_dim(encoding, service.model.embedding_dim),
        "embeddings": {kind: to_json_rows(quantize(v, encoding, ranges)) for kind, v in vectors.items()},
    }
    if ranges is not None:
        out["calibration"] = {"source": ranges.source, "sha256": ranges.digest}
    return out


def _top_k(payload: dict[str, Any], n_labels: int) -> int:
    value = payload.get("top_k", n_labels)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= n_labels:
        raise bad_request(f"top_k: expected an integer in [1, {n_labels}], got {value!r}")
    return value


@router.post("/v1/zero-shot")
async def zero_shot(request: Request) -> FastJSONResponse:
    from ..vectors.zero_shot import zero_shot_probs
    from ..vectors.templates import templates_for

    service = service_of(request)
    payload = parse_json_object(await request.body())
    labels = string_list(payload, "labels")
    if not labels:
        raise bad_request("labels: expected a non-empty array of strings")
    max_labels = service.settings.max_labels
    if len(labels) > max_labels:
        raise ApiError(413, f"labels: {len(labels)} labels, more than the {max_labels} this server takes in one "
                            "request (--max-labels); split them")
    inputs = {k: v for k, v in _json_inputs(payload, ZERO_SHOT_OPTIONS).items()}
    if "text" in inputs or len(inputs) != 1:
        raise bad_request(f"give inputs of exactly one kind other than text ({', '.join(FILE_KINDS)}), "
                          f"got {sorted(inputs) or 'none'}")
    kind = next(iter(inputs))
    templates = payload.get("templates")
    if templates is not None and not isinstance(templates, (str, list)):
        raise bad_request(f"templates: expected a string or an array of strings, got {json_type(templates)}")
    try:
        chosen = templates_for(kind, templates)
    except (TypeError, ValueError) as exc:
        raise bad_request(f"templates: {exc}") from None
    top_k = _top_k(payload, len(labels))
    adapter = service.adapter_for(payload.get("model"))

    async def work() -> FastJSONResponse:
        label_emb = await service.label_embeddings(labels, chosen, adapter)
        vectors = (await service.embed(inputs, {kind: kind}, normalize=True, adapter=adapter)).vectors[kind]
        probs = zero_shot_probs(label_emb, vectors, service.logit_scale_text)
        results = []
        for index, row in enumerate(probs.tolist()):
            order = sorted(range(len(labels)), key=lambda j: -row[j])[:top_k]
            results.append({"index": index, "top": [{"label": labels[j], "probability": row[j]} for j in order]})
        return FastJSONResponse({"model": adapter or service.name, "kind": kind, "labels": labels,
                                 "probabilities": probs.tolist(), "results": results})

    return await service.run(work())
