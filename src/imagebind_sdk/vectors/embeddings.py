"""``Embeddings``: what ``model.embed(...)`` returns, a read-only mapping modality -> (N, D) tensor.

>>> out = model.embed(text=["a dog", "a cat"], audio=["bark.wav"])  # doctest: +SKIP
>>> out
Embeddings(text=(2, 1024), audio=(1, 1024))
>>> out["text"].shape, out.audio.shape, out.sources["audio"]  # doctest: +SKIP
(torch.Size([2, 1024]), torch.Size([1, 1024]), ['bark.wav'])
>>> out.save("emb.safetensors"); Embeddings.load("emb.safetensors")  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..preprocess import Skipped
from .space import Space, SpaceLike, as_space

__all__ = ["Embeddings", "FORMAT_VERSION"]

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_METADATA_KEY = "imagebind_sdk.vectors.embeddings"


def _as_tensor(name: str, value: Any) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"embeddings[{name!r}] must be a torch.Tensor, got {type(value).__name__}")
    if value.ndim != 2:
        raise ValueError(f"embeddings[{name!r}] must be 2-D (N, D), got shape {tuple(value.shape)}")
    return value


def _check_sources(data: dict[str, torch.Tensor], sources: Mapping[str, Any] | None) -> dict[str, list[str]]:
    sources = dict(sources or {})
    unknown = sorted(set(sources) - set(data))
    if unknown:
        raise ValueError(f"sources given for modalities without embeddings: {unknown}")
    out = {}
    for name, tensor in data.items():
        src = [str(s) for s in sources.get(name, range(tensor.shape[0]))]
        if len(src) != tensor.shape[0]:
            raise ValueError(
                f"sources[{name!r}] has {len(src)} entries but embeddings[{name!r}] has "
                f"{tensor.shape[0]} rows"
            )
        out[name] = src
    return out


def _check_skipped(skipped: Mapping[str, Any] | None) -> dict[str, list[Skipped]]:
    out = {}
    for name, items in (skipped or {}).items():
        items = list(items)
        bad = [s for s in items if not isinstance(s, Skipped)]
        if bad:
            raise TypeError(f"skipped[{name!r}] must hold Skipped items, got {type(bad[0]).__name__}")
        out[str(name)] = items
    return out


class Embeddings(Mapping[str, torch.Tensor]):
    """Embeddings per modality: a read-only mapping ``modality -> (N, D) tensor``.

    Rows are the unit-norm embeddings of the inputs in order (skipped inputs left
    out). ``sources[modality][i]`` names the input of row ``i``; ``skipped`` lists the
    inputs dropped with ``on_error="skip"``. Modalities read as attributes too.
    ``space`` is the model's space that made them (None: unknown; see ``vectors/space.py``).

    >>> out = Embeddings({"text": torch.eye(3)}, sources={"text": ["a", "b", "c"]})
    >>> out.text.shape, list(out), out.sources["text"]
    (torch.Size([3, 3]), ['text'], ['a', 'b', 'c'])
    """

    def __init__(
        self,
        data: Mapping[str, torch.Tensor],
        sources: Mapping[str, list[str]] | None = None,
        skipped: Mapping[str, list[Skipped]] | None = None,
        space: SpaceLike = None,
    ) -> None:
        if not isinstance(data, Mapping):
            raise TypeError(f"data must be a mapping modality -> tensor, got {type(data).__name__}")
        self._data: dict[str, torch.Tensor] = {str(k): _as_tensor(str(k), v) for k, v in data.items()}
        self._sources = _check_sources(self._data, sources)
        self._skipped = _check_skipped(skipped)
        self._space = space if callable(space) and not isinstance(space, Space) else as_space(space)

    # Mapping protocol -------------------------------------------------------
    def __getitem__(self, modality: str) -> torch.Tensor:
        try:
            return self._data[modality]
        except KeyError:
            raise KeyError(
                f"no embeddings for {modality!r}; available: {', '.join(self._data) or 'none'}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, name: str) -> torch.Tensor:
        data = self.__dict__.get("_data")
        if data is None or name.startswith("_"):
            raise AttributeError(name)
        if name in data:
            return data[name]
        raise AttributeError(
            f"'Embeddings' object has no attribute {name!r}; "
            f"available modalities: {', '.join(data) or 'none'}"
        )

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._data))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Embeddings):
            return NotImplemented
        return (
            list(self._data) == list(other._data)
            and all(torch.equal(self._data[k], other._data[k].to(self._data[k].device)) for k in self._data)
            and self._sources == other._sources
            and self.skipped == other.skipped
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"{k}={tuple(v.shape)}" for k, v in self._data.items()]
        counts = {k: len(v) for k, v in self._skipped.items() if v}
        if counts:
            parts.append(f"skipped={counts}")
        return f"Embeddings({', '.join(parts)})"

    # Accessors --------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        """The modality names, in insertion order."""
        return list(self._data)

    @property
    def space(self) -> Space | None:
        """The space of the model that made these vectors (computed when first read), None if unknown."""
        if callable(self._space) and not isinstance(self._space, Space):
            self._space = as_space(self._space)
        return self._space

    @property
    def sources(self) -> dict[str, list[str]]:
        """Modality -> source id of each row (``"0", "1", ...`` unless given)."""
        return {k: list(v) for k, v in self._sources.items()}

    @property
    def skipped(self) -> dict[str, list[Skipped]]:
        """Modality -> inputs skipped with ``on_error="skip"`` (``[]`` for none).

        May also hold a modality whose every input was skipped.
        """
        out: dict[str, list[Skipped]] = {k: [] for k in self._data}
        out.update({k: list(v) for k, v in self._skipped.items()})
        return out

    # Conversion -------------------------------------------------------------
    def numpy(self) -> dict[str, np.ndarray]:
        """Modality -> numpy array on CPU (bfloat16 is widened to float32).

        >>> arrays = out.numpy(); arrays["text"].dtype  # doctest: +SKIP
        dtype('float32')
        """
        return {k: _to_numpy(v) for k, v in self._data.items()}

    def to(self, *args: Any, **kwargs: Any) -> Embeddings:
        """A new ``Embeddings`` with every tensor moved/cast by ``Tensor.to(*args, **kwargs)``.

        >>> out.to("cuda"); out.to(torch.float16)  # doctest: +SKIP
        """
        return Embeddings(
            {k: v.to(*args, **kwargs) for k, v in self._data.items()},
            sources=self._sources,
            skipped=self._skipped,
            space=self._space,
        )

    # Persistence ------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write one ``.safetensors`` file: a tensor per modality, sources/skipped in its metadata.

        >>> out.save("emb.safetensors")  # doctest: +SKIP
        PosixPath('emb.safetensors')
        """
        path = Path(path)
        info = {
            "format_version": FORMAT_VERSION,
            "modalities": list(self._data),
            "sources": self._sources,
            "skipped": {k: [dataclasses.asdict(s) for s in v] for k, v in self._skipped.items()},
        }
        if self.space is not None:
            info["space"] = self.space.to_dict()
        # Clone: safetensors refuses tensors that share storage (e.g. views of one batch).
        tensors = {
            k: v.detach().cpu().clone(memory_format=torch.contiguous_format)
            for k, v in self._data.items()
        }
        save_file(tensors, str(path), metadata={_METADATA_KEY: json.dumps(info)})
        logger.info("saved %r to %s", self, path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Embeddings:
        """Read a file written by :meth:`save` (tensors placed on ``device``).

        A plain safetensors file of 2-D tensors also loads, with default sources; a file
        written before spaces existed loads with ``space=None`` (unknown).

        >>> out = Embeddings.load("emb.safetensors")  # doctest: +SKIP
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"embeddings file not found: {path}")
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        info = _parse_info(path, meta.get(_METADATA_KEY))
        order = info.get("modalities") or sorted(tensors)
        if sorted(order) != sorted(tensors):
            raise ValueError(f"{path}: metadata lists {order} but the file holds {sorted(tensors)}")
        skipped = {k: [Skipped(**s) for s in v] for k, v in info.get("skipped", {}).items()}
        return cls({k: tensors[k] for k in order}, sources=info.get("sources"), skipped=skipped,
                   space=info.get("space"))


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    t = t.detach().cpu()
    if t.dtype == torch.bfloat16:
        t = t.float()
    return t.numpy()


def _parse_info(path: Path, raw: str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        info = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: malformed {_METADATA_KEY} metadata: {exc}") from None
    version = info.get("format_version") if isinstance(info, dict) else None
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{path}: embeddings format_version {version!r} is not supported "
            f"(this imagebind_sdk reads version {FORMAT_VERSION})"
        )
    return info
