"""``list_pretrained()``: the checkpoints ``ImageBind.load()`` knows by alias (as open_clip and whisper offer).

>>> from imagebind_sdk import list_pretrained
>>> [p.alias for p in list_pretrained()]
['imagebind-huge']
"""

from __future__ import annotations

from dataclasses import dataclass

from .hub import registry


@dataclass(frozen=True)
class Pretrained:
    """One registry entry: load it with ``ImageBind.load(alias)``."""

    alias: str
    repo_id: str
    revision: str | None
    size_bytes: int | None  # approximate download size of the full checkpoint
    description: str
    license: str | None

    @property
    def size_gb(self) -> float | None:
        return None if self.size_bytes is None else round(self.size_bytes / 1e9, 1)


def list_pretrained() -> list[Pretrained]:
    """Every alias of the registry (``assets/checkpoints.json``) with its Hub repo, pinned revision and size."""
    return [
        Pretrained(
            alias=alias,
            repo_id=entry["repo_id"],
            revision=entry.get("revision"),
            size_bytes=entry.get("size_bytes_approx"),
            description=entry.get("description", ""),
            license=entry.get("license"),
        )
        for alias, entry in registry().items()
    ]
