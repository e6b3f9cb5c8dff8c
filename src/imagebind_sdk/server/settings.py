"""Server settings: one frozen dataclass, shared by ``create_app`` and ``imagebind-sdk serve``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

@dataclass(frozen=True)
class Settings:
    """Knobs of the batching engine, the request limits and security."""

    max_batch_size: int = 32  # items per encoder call
    max_wait_ms: float = 10.0  # how long the first queued item waits for companions
    max_queue: int = 1024  # items admitted and not yet answered; more -> 503
    max_request_mb: float = 64.0  # request bodies above this -> 413
    api_key: str | None = None  # Bearer key for every endpoint but health
    workers_preprocess: int = 2  # threads decoding and preprocessing media
    request_timeout_s: float = 120.0  # per request -> 504
    cors_origins: tuple[str, ...] = ()  # no CORS headers unless given
    shutdown_timeout_s: float = 30.0  # SIGTERM: time to finish in-flight requests
    model_name: str = "imagebind"  # the name reported by /meta, /v1/embed, /v1/embeddings
    retry_after_s: int = 1  # Retry-After of 503 answers

    def __post_init__(self) -> None:
        positive = {
            "max_batch_size": self.max_batch_size, "max_queue": self.max_queue,
            "max_request_mb": self.max_request_mb, "workers_preprocess": self.workers_preprocess,
            "request_timeout_s": self.request_timeout_s, "shutdown_timeout_s": self.shutdown_timeout_s,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms!r}")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be empty (leave it unset for no authentication)")

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)

    @classmethod
    def from_kwargs(cls, **kwargs: object) -> "Settings":
        """Settings from keyword arguments; unknown names are an error naming the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown server settings {unknown}; expected some of {sorted(known)}")
        if "cors_origins" in kwargs:
            kwargs["cors_origins"] = tuple(kwargs["cors_origins"] or ())  # type: ignore[arg-type]
        return cls(**kwargs)  # type: ignore[arg-type]
