"""LanceDB: the embedding function ``"imagebind-sdk"`` in LanceDB's registry.

>>> import imagebind_sdk.integrations.lancedb                                     # doctest: +SKIP
>>> from lancedb.embeddings import get_registry                                   # doctest: +SKIP
>>> func = get_registry().get("imagebind-sdk").create(checkpoint="imagebind-huge") # doctest: +SKIP

Unlike LanceDB's built-in ``"imagebind"`` function (text, image and audio through the
reference package), this one covers every input kind: text, images, audio and video
by path or bytes, depth, thermal and IMU. Text is text unless the column or the call
says otherwise, so a search box can never make the function read a file: ``kind=``
names the source column's kind (``"vision"``, ``"audio"``, ...: its strings are paths);
``kind="auto"`` lets each value of the column decide (a string ending in a known file
extension, ``kinds.KIND_OF_EXTENSION``, is that file, any other string is text); with
``kind=None`` (the default) strings are text. A query string is always text, whatever
the column holds; a file is queried as ``{"audio": "bark.wav"}``, a PIL image or bytes
(of the column's ``kind``). The function's arguments are stored in the table's metadata:
reopening the table (in any process) recreates it, and a table built with ``model=``
records that model's checkpoint, modalities, device, dtype, quantisation and backend.
The metadata also records the model's space (``space``, see :mod:`imagebind_sdk.vectors.space`):
a table reopened with a model of another space (the checkpoint's files changed, another
adapter) refuses to embed with ``SpaceMismatchError`` unless created with ``allow_other_space=True``.
Tables written before spaces record none: nothing is checked.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any, Optional

from ..kinds import INPUT_KINDS, infer_kind
from ..pipeline.overflow import check_text_overflow
from ..vectors.space import check_space
from .shared import LoadOptions, embed_rows, require, resolve_model

_lancedb_embeddings = require("lancedb.embeddings", "lancedb")
_pydantic = require("pydantic", "lancedb")
_np = require("numpy", "lancedb")

__all__ = ["ImageBindSDKEmbeddings"]

BYTES = (bytes, bytearray, memoryview)
AUTO = "auto"  # kind= for a column mixing texts and file paths: each value's extension decides


@_lancedb_embeddings.register("imagebind-sdk")
class ImageBindSDKEmbeddings(_lancedb_embeddings.EmbeddingFunction):
    """ImageBind (imagebind-sdk) vectors for a LanceDB table's vector column."""

    model_config = _pydantic.ConfigDict(ignored_types=(cached_property,), arbitrary_types_allowed=True)

    model: Any = None  # an already loaded ImageBind (shared); or checkpoint= and the options below
    checkpoint: Optional[str] = None
    modalities: Optional[tuple[str, ...]] = None
    device: Optional[str] = None
    dtype: Optional[str] = None
    quantize: Optional[str] = None
    backend: Optional[str] = None  # "torch" (None) or "onnxruntime"
    adapters: Any = None  # LoRA adapters, as ImageBind.load(adapters=...): a source, a list, or {name: source}
    text_overflow: str = "truncate"  # texts past 77 tokens: "truncate", "chunk_mean" or "error"
    kind: Optional[str] = None  # input kind of the source column; None: text; "auto": each value decides
    normalize: bool = True  # unit vectors; False: the reference model's raw output
    batch_size: int = 32
    max_retries: int = 0  # local inference: a failure is not transient, retrying only repeats it
    space: Optional[str] = None  # the space id of the table's vectors (recorded in its metadata)
    allow_other_space: bool = False  # embed with a model of another space anyway (not recorded)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.kind is not None and self.kind not in (*INPUT_KINDS, AUTO):
            raise ValueError(f"kind must be one of {list(INPUT_KINDS)}, {AUTO!r} or None, got {self.kind!r}")
        check_text_overflow(self.text_overflow)
        self._ndims = None

    @cached_property
    def imagebind(self) -> Any:
        """The ImageBind model, loaded (or shared) on first use, not when a table is opened."""
        options = LoadOptions.of(self.checkpoint, self.modalities, self.device, self.dtype, self.quantize, self.backend,
                                 self.adapters)
        model = resolve_model(self.model, options)
        check_space(self.space, model.space, what="embedding for this LanceDB table", allow_other_space=self.allow_other_space)
        return model

    def ndims(self) -> int:
        return self.imagebind.embedding_dim

    def compute_source_embeddings(self, values: Any, *args: Any, **kwargs: Any) -> list:
        """One vector per value of the source column, in order."""
        return self._embed([self._split(v, i, self.kind) for i, v in enumerate(self.sanitize_input(values))])

    def compute_query_embeddings(self, query: Any, *args: Any, **kwargs: Any) -> list:
        """The vector of one query: text (a string is never read as a path), bytes (of ``kind``),
        a PIL image or ``{kind: item}``."""
        # Queries come from users (a search box): only bytes take the column's kind.
        kind = self.kind if isinstance(query, BYTES) and self.kind != AUTO else None
        return self._embed([self._split(query, 0, kind)])

    def sanitize_input(self, values: Any) -> list:
        pa = require("pyarrow", "lancedb")
        if isinstance(values, (str, *BYTES)):
            return [values]
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if isinstance(values, pa.Array):
            return values.to_pylist()
        return list(values)

    @classmethod
    def create(cls, **kwargs: Any) -> "ImageBindSDKEmbeddings":
        """As LanceDB's ``create``, but ``model=`` is shared, not deep-copied with the other arguments."""
        model = kwargs.pop("model", None)
        instance = super().create(**kwargs)
        instance.model = model
        return instance

    def safe_model_dump(self) -> dict:
        """The arguments stored in the table's metadata; ``model=`` becomes where it came from."""
        args = dict(super().safe_model_dump())
        args.pop("allow_other_space", None)
        space = self.space or self.imagebind.space  # the model is loaded for ndims() anyway
        args["space"] = str(space) if space is not None else None
        model = self.model
        if model is not None:
            args.update(
                checkpoint=model.source,
                modalities=list(model.modalities),
                device=str(model.device),
                dtype=str(model.dtype).removeprefix("torch."),
                quantize=model.quantize,
                backend=None if model.backend == "torch" else model.backend,
            )
        return args

    def _split(self, value: Any, index: int, kind: str | None) -> tuple[str, Any]:
        """(kind, item) of one value, by the rules in the module docstring."""
        if kind not in (None, AUTO):
            return kind, value
        if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in INPUT_KINDS:
            return next(iter(value.items()))
        if isinstance(value, str):
            return (infer_kind(value) if kind == AUTO else None) or "text", value
        if type(value).__module__.startswith("PIL."):
            return "vision", value
        raise TypeError(
            f"value {index}: cannot tell the input kind of a {type(value).__name__}; create the function "
            f"with kind=... (one of {list(INPUT_KINDS)}) or give {{kind: item}}"
        )

    def _embed(self, pairs: list[tuple[str, Any]]) -> list:
        """Vectors of (kind, item) pairs: one embed() call per kind, results back in order."""
        by_kind: dict[str, list[int]] = {}
        for position, (kind, _) in enumerate(pairs):
            by_kind.setdefault(kind, []).append(position)
        out: list = [None] * len(pairs)
        for kind, positions in by_kind.items():
            items = [pairs[p][1] for p in positions]
            rows = embed_rows(self.imagebind, kind, items, normalize=self.normalize, batch_size=self.batch_size,
                              text_overflow=self.text_overflow)
            for position, row in zip(positions, rows):
                out[position] = _np.asarray(row, dtype=_np.float32)
        return out
