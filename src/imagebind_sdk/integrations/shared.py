"""What every adapter needs: one way to get a model, to import a framework, to embed.

Adapters take ``model=`` (an already loaded ``ImageBind``, used as is) or
``checkpoint=`` plus load options. Loads are shared: two adapters asking for the same
checkpoint with the same options get the same ``ImageBind`` while either is alive
(LanceDB, for one, recreates its embedding function every time a table is opened).
"""

from __future__ import annotations

import importlib
import logging
import threading
import weakref
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    import torch

    from ..api import ImageBind

logger = logging.getLogger(__name__)

# (checkpoint, modalities, device, dtype, quantize, backend, adapters) -> ImageBind, kept while someone holds it.
_LOADED: "weakref.WeakValueDictionary[tuple, ImageBind]" = weakref.WeakValueDictionary()
_LOCK = threading.Lock()
# Keyword arguments every adapter takes besides model=.
LOAD_ARGUMENTS = ("checkpoint", "modalities", "device", "dtype", "quantize", "backend", "adapters")


def require(module: str, extra: str) -> ModuleType:
    """Import an optional framework, or ImportError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{module} is not installed; install it with: pip install 'imagebind-sdk[{extra}]'"
        ) from exc


@dataclass(frozen=True)
class LoadOptions:
    """``checkpoint=`` and the ``ImageBind.load`` options an adapter passes on."""

    checkpoint: str | None = None
    modalities: tuple[str, ...] | None = None
    device: str | None = None
    dtype: str | None = None
    quantize: str | None = None
    backend: str | None = None  # None: torch
    adapters: tuple[tuple[str | None, str], ...] | None = None  # LoRA adapters: (name or None, source); first active

    @classmethod
    def of(
        cls,
        checkpoint: Any = None,
        modalities: Iterable[str] | None = None,
        device: "str | torch.device | None" = None,
        dtype: "str | torch.dtype | None" = None,
        quantize: str | None = None,
        backend: str | None = None,
        adapters: Any = None,
    ) -> "LoadOptions":
        from ..weights.adapters import named_sources

        pairs = tuple((name, str(source)) for name, source in named_sources(adapters)) or None
        return cls(
            None if checkpoint is None else str(checkpoint),
            None if modalities is None else tuple([modalities] if isinstance(modalities, str) else modalities),
            None if device is None else str(device),
            None if dtype is None else str(dtype).removeprefix("torch."),
            quantize,
            None if backend in (None, "torch") else backend,
            pairs,
        )

    @classmethod
    def pop_from(cls, kwargs: dict[str, Any]) -> "LoadOptions":
        """The load options among an adapter's keyword arguments (removed from ``kwargs``)."""
        return cls.of(**{name: kwargs.pop(name) for name in LOAD_ARGUMENTS if name in kwargs})

    def is_default(self) -> bool:
        return self == LoadOptions()


def resolve_model(model: "ImageBind | None" = None, options: LoadOptions = LoadOptions()) -> "ImageBind":
    """``model`` itself, or the (shared) model that ``options`` load."""
    from ..api import ImageBind  # the core package: imported only when an adapter is built
    from ..weights.hub import DEFAULT_SOURCE

    if model is not None:
        if not isinstance(model, ImageBind):
            raise TypeError(f"model must be an imagebind_sdk.ImageBind, got {type(model).__name__}")
        if not options.is_default():
            raise ValueError(
                "pass either model= (an already loaded ImageBind) or checkpoint= with load options "
                f"(modalities, device, dtype, quantize, backend, adapters), not both; got model= and {_given(options)}"
            )
        return model
    source = options.checkpoint or DEFAULT_SOURCE
    key = (source, options.modalities, options.device, options.dtype, options.quantize, options.backend,
           options.adapters)
    with _LOCK:  # one load per key even when two threads build adapters at once
        loaded = _LOADED.get(key)
        if loaded is None:
            logger.info("loading %s for an integration adapter", source)
            loaded = ImageBind.load(
                source,
                modalities=options.modalities,
                device=options.device,
                dtype=options.dtype,
                quantize=options.quantize,
                backend=options.backend or "torch",
                adapters=list(options.adapters) if options.adapters else None,
            )
            _LOADED[key] = loaded
    return loaded


def _given(options: LoadOptions) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in vars(options).items() if v is not None)


def embed_rows(
    model: "ImageBind", kind: str, items: Sequence[Any], *, normalize: bool = True, batch_size: int = 32,
    text_overflow: str = "truncate",
) -> list[list[float]]:
    """Vectors of ``items`` of one input kind as plain float lists, in input order
    (the embedding pipeline's :func:`~imagebind_sdk.pipeline.embed_kind`; a bad item raises naming it)."""
    from ..pipeline import embed_kind, pipeline_of

    if isinstance(items, (str, bytes, bytearray, memoryview, Mapping)):  # one input, not a list of them
        raise TypeError(f"expected a list of {kind} inputs, got one {type(items).__name__} (it would embed "
                        f"{'each character' if isinstance(items, str) else 'each element'}); wrap it in a list")
    items = list(items)
    if not items:
        return []
    return embed_kind(pipeline_of(model), kind, items, normalize=normalize, batch_size=batch_size,
                      text_overflow=text_overflow).vectors.tolist()
