"""``POST /v1/search`` bodies -> a :class:`Query`: weighted terms, ``top_k`` and ``kinds``.

A term is text, the bytes of a file of one input kind, or the id of an indexed item,
each with a weight (negative subtracts: embedding arithmetic). Every problem is a
400 naming the field (``query[2].weight``, ``file``) and what was expected.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile

from ..kinds import FILE_KINDS, INPUT_KINDS, infer_kind
from ..server.decode import json_type, native_media
from ..server.errors import bad_request

MAX_TERMS = 16  # a query is a handful of chips, not a batch job
MAX_TOP_K = 1000
DEFAULT_TOP_K = 10
TERM_KEYS = ("text", "id", *FILE_KINDS)
# Browser MIME type prefix -> input kind, for a ``file`` upload whose name has no known extension.
MIME_KINDS = {"image/": "vision", "audio/": "audio", "video/": "video"}


@dataclass
class Term:
    """One query term: ``kind`` is an input kind or ``"id"``; ``value`` a str, bytes or int."""

    kind: str
    value: Any
    weight: float
    where: str  # the field to name in errors


@dataclass
class Query:
    terms: list[Term] = field(default_factory=list)
    top_k: int = DEFAULT_TOP_K
    kinds: list[str] | None = None


def _weight(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_request(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _item_id(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request(f"{where}: expected an item id (an integer >= 0), got {value!r}")
    return value


def json_term(term: Any, where: str) -> Term:
    """``{"text": ...}``, ``{"<kind>": {"b64": ...}}`` or ``{"id": N}``, plus an optional ``weight``."""
    if not isinstance(term, dict):
        raise bad_request(f"{where}: expected an object such as {{\"text\": \"rain\"}}, got {json_type(term)}")
    keys = [k for k in term if k != "weight"]
    if len(keys) != 1 or keys[0] not in TERM_KEYS:
        raise bad_request(f"{where}: expected exactly one of {list(TERM_KEYS)} (and an optional weight), "
                          f"got keys {sorted(term)}")
    kind = keys[0]
    weight = _weight(term.get("weight", 1), f"{where}.weight")
    value = term[kind]
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise bad_request(f"{where}.text: expected a non-empty string, got {value!r}")
    elif kind == "id":
        value = _item_id(value, f"{where}.id")
    else:
        value = native_media(value, f"{where}.{kind}")
    return Term(kind, value, weight, f"{where}.{kind}")


def top_k_of(value: Any, where: str = "top_k") -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise bad_request(f"{where}: expected an integer in [1, {MAX_TOP_K}], got {value!r}")
    return value


def kinds_of(value: Any) -> list[str] | None:
    """``kinds``: an array of input kinds (or a comma-separated string, from a form); None: all."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise bad_request(f"kinds: expected a non-empty array of input kinds, got {value!r}")
    unknown = sorted(set(value) - set(FILE_KINDS))
    if unknown:
        raise bad_request(f"kinds: unknown {unknown}; expected some of {list(FILE_KINDS)}")
    return list(dict.fromkeys(value))


def json_query(payload: dict[str, Any]) -> Query:
    """A JSON body: ``{"query": [TERM, ...] | TERM, "top_k": 10, "kinds": [...]}``, or one TERM as the body."""
    options = {k: payload[k] for k in ("top_k", "kinds") if k in payload}
    if "query" in payload:
        unknown = sorted(set(payload) - {"query", "top_k", "kinds"})
        if unknown:
            raise bad_request(f"unknown fields {unknown}; expected query, top_k and kinds")
        terms = payload["query"]
        terms = terms if isinstance(terms, list) else [terms]
        where = "query"
    else:  # the body is one term (plus top_k/kinds)
        terms = [{k: v for k, v in payload.items() if k not in options}]
        where = "body"
    if not terms:
        raise bad_request("query: expected at least one term, e.g. [{\"text\": \"rain\"}]")
    if len(terms) > MAX_TERMS:
        raise bad_request(f"query: at most {MAX_TERMS} terms, got {len(terms)}")
    parsed = [json_term(t, f"{where}[{i}]" if where == "query" else where) for i, t in enumerate(terms)]
    return Query(parsed, top_k_of(options.get("top_k", DEFAULT_TOP_K)), kinds_of(options.get("kinds")))


def upload_kind(name: str, upload: UploadFile) -> str:
    """The input kind of a multipart file part: its field name, else its file name or MIME type."""
    if name in FILE_KINDS:
        return name
    kind = infer_kind(os.path.basename(upload.filename or ""))
    content_type = (upload.content_type or "").lower()
    kind = kind or next((k for prefix, k in MIME_KINDS.items() if content_type.startswith(prefix)), None)
    if kind is None:
        raise bad_request(f"{name}: cannot tell the input kind of {upload.filename!r} ({content_type or 'no type'}); "
                          f"name the field by its kind ({', '.join(FILE_KINDS)}) instead of {name!r}")
    return kind


async def form_query(form: Any) -> Query:
    """A multipart form: file parts (named by kind, or ``file``), ``text``, ``id``, ``top_k``, ``kinds``."""
    query, options = Query(), {}
    for name, value in form.multi_items():
        where = f"{name}" if name in ("file", "text", "id") else name
        if name in ("top_k", "kinds"):
            options[name] = value if isinstance(value, str) else None
        elif name == "text" and isinstance(value, str):
            if value.strip():
                query.terms.append(Term("text", value, 1.0, where))
        elif name == "id" and isinstance(value, str):
            query.terms.append(Term("id", _item_id(value, where), 1.0, where))
        elif isinstance(value, UploadFile) and (name == "file" or name in FILE_KINDS):
            data = await value.read()
            if not data:
                raise bad_request(f"{name}: the uploaded file {value.filename!r} is empty")
            query.terms.append(Term(upload_kind(name, value), data, 1.0, name))
        else:
            raise bad_request(f"unknown form field {name!r} ({'file' if isinstance(value, UploadFile) else 'text'}); "
                              f"expected file, {', '.join(INPUT_KINDS)}, id, top_k or kinds")
    if not query.terms:
        raise bad_request("nothing to search for: send a file, a text or an id field")
    if len(query.terms) > MAX_TERMS:
        raise bad_request(f"query: at most {MAX_TERMS} terms, got {len(query.terms)}")
    query.top_k = top_k_of(options.get("top_k", DEFAULT_TOP_K))
    query.kinds = kinds_of(options.get("kinds") or None)
    return query
