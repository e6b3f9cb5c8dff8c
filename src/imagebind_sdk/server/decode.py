"""Request bodies -> Python values, with 400 errors that name the field and the index."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from .errors import bad_request

_JSON_TYPES = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number",
               float: "number", type(None): "null"}
DATA_URL_MARK = ";base64,"


def json_type(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def parse_json_object(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object."""
    if not body.strip():
        raise bad_request("empty request body: expected a JSON object")
    try:
        payload = json.loads(body)
    except UnicodeDecodeError as exc:
        raise bad_request(f"request body is not UTF-8 text: {exc}") from None
    except json.JSONDecodeError as exc:
        raise bad_request(f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:  # hostile input: 100,000 "[" in a row
        raise bad_request("request body is not usable JSON: arrays or objects nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of 5,000 digits (Python's int_max_str_digits)
        raise bad_request(f"request body is not usable JSON: {str(exc).split(';')[0]}") from None
    if not isinstance(payload, dict):
        raise bad_request(f"request body must be a JSON object, got {json_type(payload)}")
    return payload


def as_list(payload: dict[str, Any], field: str) -> list[Any]:
    """``payload[field]`` as a list: missing or null -> []; a lone value is refused."""
    value = payload.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise bad_request(f"{field}: expected an array, got {json_type(value)}")
    return value


def string_list(payload: dict[str, Any], field: str, *, allow_single: bool = False) -> list[str]:
    """An array of strings (or, with ``allow_single``, one string)."""
    value = payload.get(field)
    if allow_single and isinstance(value, str):
        return [value]
    values = as_list(payload, field)
    for index, item in enumerate(values):
        if not isinstance(item, str):
            raise bad_request(f"{field}[{index}]: expected a string, got {json_type(item)}")
    return values


def b64_bytes(value: Any, where: str) -> bytes:
    """Standard base64 (whitespace and a ``data:...;base64,`` prefix tolerated) -> bytes."""
    if not isinstance(value, str):
        raise bad_request(f"{where}: expected a base64 string, got {json_type(value)}")
    if value.startswith("data:") and DATA_URL_MARK in value[:200]:
        value = value.split(DATA_URL_MARK, 1)[1]
    text = "".join(value.split())  # line breaks, as base64.encodebytes writes them
    if not text:
        raise bad_request(f"{where}: empty string, expected the base64 of a file")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request(f"{where}: not valid base64 ({exc})") from None


def native_media(value: Any, where: str) -> bytes:
    """A native API media item: ``{"b64": ...}`` or a bare base64 string. URLs are never fetched."""
    if isinstance(value, dict):
        if "b64" in value:
            return b64_bytes(value["b64"], f"{where}.b64")
        if "url" in value:
            raise bad_request(f"{where}: URLs are not fetched by this server; send the file as {{\"b64\": ...}}")
        raise bad_request(f"{where}: expected {{\"b64\": <base64 of the file>}}, got keys {sorted(value)}")
    if isinstance(value, str):
        return b64_bytes(value, where)
    raise bad_request(f"{where}: expected {{\"b64\": ...}} or a base64 string, got {json_type(value)}")


def optional_bool(payload: dict[str, Any], field: str, default: bool) -> bool:
    value = payload.get(field, default)
    if not isinstance(value, bool):
        raise bad_request(f"{field}: expected true or false, got {json_type(value)}")
    return value


def form_bool(value: str, field: str) -> bool:
    """A boolean multipart form field."""
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise bad_request(f"{field}: expected true or false, got {value!r}")
