"""Spaces: which model made a vector, so vectors of different models never mix silently.

Every fine-tune of ImageBind makes 1024-d unit vectors, and a similarity between two
models' vectors is meaningless. A model's *space* is the identity of the weights that
made its vectors: the base checkpoint (SHA-256 of its weight files' contents, plus its
config) and the active LoRA adapter (SHA-256 of its files), hashed into a short id
``ib-<16 hex>``. The same files give the same id on every machine; dtype, device,
backend and int8 quantisation do not change it (they approximate the same numbers).

``Embeddings``, bulk outputs, ``EmbeddingIndex`` files, the FAISS and LanceDB
metadata and the server's ``/meta`` carry it. Joining or searching vectors of another
space raises :class:`SpaceMismatchError` naming both, unless ``allow_other_space=True``.
A file written before spaces existed has none: its space is unknown, and nothing is
checked against it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Union

__all__ = ["Space", "SpaceMismatchError", "as_space", "check_space", "deferred_space", "model_space", "space_of"]

PREFIX = "ib-"
_ID = re.compile(r"^ib-[0-9a-f]{16}$")


class SpaceMismatchError(ValueError):
    """Vectors of one model's space were about to meet vectors of another's."""


@dataclass(frozen=True)
class Space:
    """A model's space: ``id`` (``ib-<16 hex>``), and what it was made of (may be empty
    when only the id was recorded)."""

    id: str
    checkpoint: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    adapter: dict[str, Any] | None = field(default=None, compare=False, hash=False)

    def __str__(self) -> str:
        return self.id

    def describe(self) -> str:
        """The id and, when known, the adapter that distinguishes it (for error messages)."""
        if self.adapter:
            return f"{self.id} (adapter {self.adapter.get('name')!r})"
        return f"{self.id} (base model)" if self.checkpoint else self.id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "checkpoint": self.checkpoint, "adapter": self.adapter}


SpaceLike = Union[Space, str, dict, Callable[[], Any], None]


def as_space(value: SpaceLike) -> Space | None:
    """A :class:`Space` from what files and callers hold: a Space, an id, a ``to_dict()``
    dict, a callable returning one of these (computed when first needed), or None."""
    if callable(value) and not isinstance(value, Space):
        value = value()
    if value is None or isinstance(value, Space):
        return value
    if isinstance(value, str) and _ID.match(value):
        return Space(value)
    if isinstance(value, dict) and isinstance(value.get("id"), str) and _ID.match(value["id"]):
        checkpoint, adapter = value.get("checkpoint") or {}, value.get("adapter")
        if isinstance(checkpoint, dict) and (adapter is None or isinstance(adapter, dict)):
            return Space(value["id"], copy.deepcopy(checkpoint), copy.deepcopy(adapter))
    shown = repr(value) if len(repr(value)) <= 200 else repr(value)[:200] + "..."
    raise ValueError(f"space: expected an id 'ib-<16 hex>', a Space or its to_dict() (checkpoint and adapter "
                     f"objects), got {type(value).__name__}: {shown}")


def check_space(have: SpaceLike, got: SpaceLike, *, what: str, allow_other_space: bool = False) -> None:
    """Refuse ``got`` meeting ``have`` (``what`` names the action) unless both are known
    and equal, or ``allow_other_space``. An unknown space (None) is not checked."""
    if allow_other_space:
        return
    have, got = as_space(have), as_space(got)
    if have is None or got is None or have.id == got.id:
        return
    raise SpaceMismatchError(
        f"{what}: vectors of space {got.describe()} would meet vectors of space {have.describe()}; "
        "vectors of different models are not comparable. Use the same checkpoint and adapter, "
        "or pass allow_other_space=True (CLI: --allow-other-space) if you know they are."
    )


def space_of(vectors: Any, space: SpaceLike = None) -> Space | None:
    """``space`` if given, else the space ``vectors`` carry (an ``Embeddings``), else None."""
    return as_space(space) if space is not None else getattr(vectors, "space", None)


def deferred_space(config: Any, weights: list[Path] | None, adapters: Mapping[str, Any], adapter: str | None,
                   fixed: Space | None = None) -> Callable[[], Space | None]:
    """The space of a model's ``weights`` (None: no torch checkpoint, the ``fixed`` space an ONNX
    export recorded) under the loaded adapter named ``adapter`` (None: the base), computed when
    first called: embed() hands it to its result, so nothing is hashed unless someone asks."""
    if adapter is not None and adapter not in adapters:
        raise ValueError(f"no adapter named {adapter!r}; loaded: {sorted(adapters) or 'none'}")
    if weights is None:
        return lambda: fixed
    chosen = adapters[adapter] if adapter is not None else None
    return lambda: model_space(config.to_dict(), weights, chosen)


def model_space(config: dict[str, Any], weight_files: list[Path], adapter: Any = None) -> Space:
    """The space of a checkpoint's weights under ``adapter`` (a ``model.lora.Adapter`` or None)."""
    stamps = tuple((str(p), *_stamp(Path(p))) for p in weight_files)  # a file changed in place is hashed again
    checkpoint = _checkpoint_identity(json.dumps(config, sort_keys=True, default=str), stamps)
    details = {"name": adapter.name, "identity": adapter.identity} if adapter is not None else None
    key = json.dumps({"checkpoint": checkpoint["sha256"], "config": checkpoint["config"],
                      "adapter": details and details["identity"]}, sort_keys=True)
    return Space(PREFIX + hashlib.sha256(key.encode()).hexdigest()[:16], copy.deepcopy(checkpoint), details)


def _stamp(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


@lru_cache(maxsize=16)
def _checkpoint_identity(config_json: str, stamps: tuple[tuple[str, int, int], ...]) -> dict[str, Any]:
    from ..weights.identity import weights_sha256

    return {"sha256": weights_sha256([Path(p) for p, _, _ in stamps]), "config": json.loads(config_json)}
