"""What the page's server knows besides the model: the catalog once built, and indexing progress."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..server.errors import ApiError
from .catalog import Catalog


@dataclass
class Progress:
    """Indexing progress, as ``GET /v1/app/status`` reports it (updated from the indexing thread)."""

    stage: str = "starting"  # starting, loading, indexing, ready, failed
    done: int = 0
    total: int = 0
    message: str = ""
    started: float = field(default_factory=time.monotonic)


class AppState:
    """The catalog (None until indexed) and the progress; thread-safe updates."""

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog
        self.progress = Progress(stage="ready" if catalog is not None else "starting")
        self._lock = threading.Lock()

    def update(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                setattr(self.progress, name, value)

    def ready(self, catalog: Catalog) -> None:
        with self._lock:
            self.catalog = catalog
            self.progress.stage = "ready"
            self.progress.message = f"{len(catalog)} items"

    def status(self) -> dict[str, Any]:
        with self._lock:
            p = self.progress
            return {"stage": p.stage, "done": p.done, "total": p.total, "message": p.message,
                    "elapsed_s": round(time.monotonic() - p.started, 3),
                    "items": len(self.catalog) if self.catalog is not None else 0,
                    "kinds": self.catalog.kinds if self.catalog is not None else []}

    def require_catalog(self) -> Catalog:
        """The catalog, or 503 while the files are being indexed (409 if indexing failed)."""
        if self.catalog is None:
            if self.progress.stage == "failed":
                raise ApiError(409, f"indexing failed: {self.progress.message}")
            raise ApiError(503, f"not ready: indexing files ({self.progress.done}/{self.progress.total})",
                           {"Retry-After": "1"})
        return self.catalog
