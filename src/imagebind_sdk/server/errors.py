"""Errors that become HTTP answers: status, a message naming the field and index, headers."""

from __future__ import annotations


class ApiError(Exception):
    """A request that cannot be served: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def overloaded(message: str, retry_after_s: int) -> ApiError:
    return ApiError(503, message, {"Retry-After": str(retry_after_s)})


def openai_error_body(status: int, message: str) -> dict:
    """OpenAI's error shape, which its client turns into ``APIStatusError.message``."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": status}}
