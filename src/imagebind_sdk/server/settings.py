"""Server settings: one frozen dataclass, shared by ``create_app`` and ``imagebind-sdk serve``."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

API_KEY_ENV = "IMAGEBIND_API_KEY"
DEFAULT_MODEL_NAME = "imagebind"
# Upper bounds that only catch typos and overflows (1e308 seconds, 10**9 items); any real
# deployment is far below them.
MAX_SECONDS = 7 * 24 * 3600.0
MAX_MB = 1024.0 * 1024  # one TiB
MAX_COUNT = 10**7
MAX_GFLOPS = 1e9  # an exaFLOP per encoder call
# A body is held this many times while served: the bytes, the parsed JSON, the decoded files.
BODY_COPIES = 3

# field -> (the CLI option naming it, integer?, lowest value, whether the lowest is allowed, highest)
_NUMBERS: dict[str, tuple[str, bool, float, bool, float]] = {
    "max_batch_size": ("--max-batch-size", True, 1, True, MAX_COUNT),
    "max_wait_ms": ("--max-wait-ms", False, 0, True, MAX_SECONDS * 1000),
    "max_batch_gflops": ("--max-batch-gflops", False, 0, False, MAX_GFLOPS),
    "bulk_every": ("--bulk-every", True, 2, True, MAX_COUNT),
    "max_queue": ("--max-queue", True, 1, True, MAX_COUNT),
    "max_request_mb": ("--max-request-mb", False, 0, False, MAX_MB),
    "max_inflight_mb": ("--max-inflight-mb", False, 0, False, MAX_MB),
    "max_labels": ("--max-labels", True, 1, True, MAX_COUNT),
    "workers_preprocess": ("--workers-preprocess", True, 1, True, 1024),
    "request_timeout_s": ("--request-timeout", False, 0, False, MAX_SECONDS),
    "shutdown_timeout_s": ("--shutdown-timeout", False, 0, False, MAX_SECONDS),
    "retry_after_s": ("retry_after_s", True, 1, True, 3600),
    "cache_mb": ("--cache-mb", False, 0, True, MAX_MB),
}


@dataclass(frozen=True)
class Settings:
    """Knobs of the batching engine, the request limits and security."""

    max_batch_size: int = 32  # items per encoder call
    # Estimated compute per encoder call (model/cost.py): ~6 images or video views of
    # imagebind-huge, so a video's 15 views go in 3 calls; 32 texts of any length fit.
    max_batch_gflops: float = 2048.0
    bulk_every: int = 4  # while bulk work waits, every Nth encoder call is bulk's (no starvation)
    max_wait_ms: float = 10.0  # how long the first queued item waits for companions
    max_queue: int = 1024  # items admitted and not yet answered; more -> 503
    max_request_mb: float = 64.0  # request bodies above this -> 413
    # Request bodies and decoded inputs held at once, server-wide; more -> 503 (see budget.py).
    max_inflight_mb: float = 256.0
    max_labels: int = 1000  # zero-shot labels per request (each is embedded once per template)
    api_key: str | None = None  # Bearer key for every endpoint but health
    workers_preprocess: int = 2  # threads decoding and preprocessing media
    request_timeout_s: float = 120.0  # per request -> 504
    cors_origins: tuple[str, ...] = ()  # no CORS headers unless given
    shutdown_timeout_s: float = 30.0  # SIGTERM: time to finish in-flight requests
    model_name: str = DEFAULT_MODEL_NAME  # the name reported by /meta, /v1/embed, /v1/embeddings
    retry_after_s: int = 1  # Retry-After of 503 answers
    cache_mb: float = 0.0  # the content cache's bound (0: no cache), see cache.py
    # int8/uint8 ranges given by the user instead of the calibration: one for the base model, or
    # {model name: ranges} (the base's name or an adapter's); each a Ranges, (2, dim) rows or a file.
    ranges: Any = None

    @property
    def cache_bytes(self) -> int:
        return int(self.cache_mb * 1024 * 1024)

    def __post_init__(self) -> None:
        for name, (option, integer, low, low_ok, high) in _NUMBERS.items():
            check_number(getattr(self, name), option, low, low_ok, high, integer=integer)
        if self.max_wait_ms >= self.request_timeout_s * 1000:  # every request would time out waiting
            raise ValueError(f"--max-wait-ms ({self.max_wait_ms:g}) must be shorter than --request-timeout "
                             f"({self.request_timeout_s:g} s)")
        if self.max_request_mb * BODY_COPIES > self.max_inflight_mb:
            raise ValueError(f"--max-request-mb ({self.max_request_mb:g}) x {BODY_COPIES} (a body is held that many "
                             f"times while parsed) must not exceed --max-inflight-mb ({self.max_inflight_mb:g}): "
                             "a body that large could never be admitted")
        object.__setattr__(self, "ranges", _given_ranges(self.ranges))
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError(f"--api-key (or ${API_KEY_ENV}) must not be empty: leave it unset for no authentication")

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)

    @property
    def max_inflight_bytes(self) -> int:
        return int(self.max_inflight_mb * 1024 * 1024)

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


def _given_ranges(value: Any) -> dict[str | None, Any]:
    """``ranges`` as {model name (None: the base): Ranges}; a bad one is a ValueError naming it."""
    if value is None or isinstance(value, dict) and not value:
        return {}
    from ..vectors.compact import Ranges

    pairs = value.items() if isinstance(value, dict) and not {"low", "high"} <= set(value) else [(None, value)]
    given = {}
    for name, ranges in pairs:
        try:
            given[name] = Ranges.of(ranges)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"ranges{'' if name is None else f' of model {name!r}'}: {exc}") from None
    return given


def check_number(value: object, option: str, low: float, low_ok: bool, high: float, *, integer: bool) -> None:
    """A finite number in range, else ``ValueError`` naming the option (NaN and inf included)."""
    ok_type = (int,) if integer else (int, float)
    bound = f"{'>=' if low_ok else '>'} {low:g} and <= {high:g}"
    if isinstance(value, bool) or not isinstance(value, ok_type):
        raise ValueError(f"{option} must be {'an integer' if integer else 'a number'} {bound}, got {value!r}")
    if not math.isfinite(value) or not (value >= low if low_ok else value > low) or value > high:
        raise ValueError(f"{option} must be a finite number {bound}, got {value!r}")


def public_name(source: str) -> str:
    """What answers may say about a checkpoint: an alias or Hub repo id as given, a local
    path by its last component only (an absolute path tells clients about the host)."""
    path = Path(source).expanduser()
    if path.is_absolute() or source.startswith((".", "~")) or path.exists():
        resolved = path.resolve()
        return (resolved.stem if resolved.is_file() else resolved.name) or DEFAULT_MODEL_NAME
    return source or DEFAULT_MODEL_NAME


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: assume it can be reached from outside
        return False
