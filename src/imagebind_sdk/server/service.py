"""What the routes call: the model's state (loading / ready), embedding of whole requests, timeouts."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Sequence, TypeVar

import torch

from ..kinds import ENCODER_OF, INPUT_KINDS
from ..pipeline import Rows, finish, text_rows, warn_cut
from ..preprocess.sources import InputError
from .budget import MemoryBudget, decoded_bytes, describe
from .cache import Cached, ContentCache, content_key
from .engine import Engine
from .errors import ApiError, bad_request
from .metrics import Metrics
from .settings import Settings

if TYPE_CHECKING:
    from ..vectors.compact import Ranges

logger = logging.getLogger(__name__)

T = TypeVar("T")
LABEL_CACHE_SIZE = 32


@dataclass
class Embedded:
    """A request's vectors by kind (unit or raw model outputs, as asked), the items left out, and its text tokens."""

    vectors: dict[str, torch.Tensor]
    kept: dict[str, list[int]] = field(default_factory=dict)  # input index of each row
    skipped: list[dict[str, Any]] = field(default_factory=list)
    text_tokens: int = 0
    item_tokens: dict[int, int] = field(default_factory=dict)  # text tokens of each embedded text, by index


class Service:
    """The model and its engine, created when the model is ready."""

    def __init__(self, settings: Settings, metrics: Metrics, model: Any) -> None:
        self.settings = settings
        self.metrics = metrics
        self._model_or_loader = model
        self.model: Any = None
        self.engine: Engine | None = None
        self.default_adapter: str | None = None  # requests without a "model" field get this one
        self.load_error: BaseException | None = None
        self._labels: dict[tuple, torch.Tensor] = {}
        self.cache = ContentCache(settings.cache_bytes, metrics) if settings.cache_bytes else None
        self._ranges: dict[str | None, "asyncio.Task[Ranges]"] = {}  # per adapter: each is its own space
        self._given_ranges: dict[str | None, Ranges] = {}
        self.budget = MemoryBudget(settings.max_inflight_bytes, settings.retry_after_s, metrics.inflight_bytes)

    # -- lifecycle --------------------------------------------------------------
    async def start(self) -> None:
        """Take the model, or load it in a thread (so /.well-known/live answers meanwhile)."""
        source = self._model_or_loader
        if callable(source) and not hasattr(source, "encode"):
            self._loading = asyncio.get_running_loop().run_in_executor(None, source)
            self._loading.add_done_callback(self._loaded)
        else:
            self._ready(source)

    def _loaded(self, future: "asyncio.Future[Any]") -> None:
        if future.cancelled():
            return
        if future.exception() is not None:
            self.load_error = future.exception()
            logger.error("loading the model failed: %s", self.load_error)
            return
        self._ready(future.result())

    def _ready(self, model: Any) -> None:
        self.model = model
        self.default_adapter = getattr(model, "active_adapter", None)
        try:
            self._given_ranges = self._check_ranges()
        except ValueError as exc:  # never ready: every request says why
            self.load_error = exc
            logger.error("%s", exc)
            return
        self.engine = Engine(model, self.settings, self.metrics)
        logger.info("model ready: %r", model)

    def _check_ranges(self) -> dict[str | None, "Ranges"]:
        """The user's int8/uint8 ranges by adapter (None: the base), checked against the loaded model."""
        given = {}
        for name, ranges in self.settings.ranges.items():
            adapter = None if name in (None, self.name) else name
            if adapter is not None and adapter not in self.adapters:
                raise ValueError(f"ranges: no model named {name!r} here (this server serves "
                                 f"{[self.name, *self.adapters]})")
            if ranges.dim != self.model.embedding_dim:
                raise ValueError(f"ranges of {name or self.name}: {ranges.dim} dimensions, the model has "
                                 f"{self.model.embedding_dim}")
            given[adapter] = ranges
        return given

    @property
    def ready(self) -> bool:
        return self.engine is not None

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()

    @property
    def name(self) -> str:
        return self.settings.model_name or getattr(self.model, "source", "") or "imagebind"

    @property
    def logit_scale_text(self) -> float:
        """The text logit scale: zero-shot probabilities are softmax(scale * cosine)."""
        return float(self.model.logit_scale("text"))

    @property
    def adapters(self) -> list[str]:
        """The LoRA adapters served beside the base (``model`` names of requests)."""
        return list(getattr(self.model, "adapters", []) or [])

    def adapter_for(self, model: Any, lenient: bool = False) -> str | None:
        """A request's ``model`` field -> the adapter to run (None: the base). Absent: the
        adapter active when the model was handed over; the served name: the base. An unknown
        name is a 404 naming the known ones (``lenient``, for OpenAI clients that must send
        some name: served by the default when the server has no adapters)."""
        self.require_engine()
        if model is None:
            return self.default_adapter
        if not isinstance(model, str):
            raise bad_request(f"model: expected a string, got {type(model).__name__}")
        if model == self.name:
            return None
        if model in self.adapters:
            return model
        if lenient and not self.adapters:
            return self.default_adapter
        known = [self.name, *self.adapters]
        raise ApiError(404, f"model: no model named {model!r} here; this server serves {known} "
                            f"(the base, then its LoRA adapters)")

    def require_engine(self) -> Engine:
        if self.engine is None:
            what = f"the model failed to load: {self.load_error}" if self.load_error else "the model is loading"
            raise ApiError(503, f"not ready: {what}", {"Retry-After": str(self.settings.retry_after_s)})
        return self.engine

    # -- requests ---------------------------------------------------------------
    async def run(self, work: Awaitable[T]) -> T:
        """Await a request's work with the per-request timeout; unexpected errors become 500."""
        try:
            return await asyncio.wait_for(work, self.settings.request_timeout_s)
        except ApiError:
            raise
        except asyncio.TimeoutError:
            raise ApiError(504, f"request timed out after {self.settings.request_timeout_s:g} s") from None
        except Exception as exc:
            logger.exception("request failed")
            raise ApiError(500, f"internal error: {type(exc).__name__}: {exc}") from exc

    async def embed(
        self, inputs: dict[str, list[Any]], fields: dict[str, str], *, skip_bad: bool = False, normalize: bool = False,
        adapter: str | None = None, text_overflow: str = "truncate",
    ) -> Embedded:
        """Embed a request's items by kind (text: str, others: file bytes) -> unit vectors
        (``normalize``) or raw model outputs, under LoRA ``adapter`` (None: the base; see
        :meth:`adapter_for`). A bad item (unreadable, or no finite vector) is a 400 naming
        ``field[index]`` of this request, or is skipped (``skip_bad``); so is a text too long
        for ``text_overflow="error"``. Items found in the content cache (``--cache-mb``) are
        answered before admission."""
        engine = self.require_engine()
        self._check_loaded(inputs, fields)
        kinds = [kind for kind in INPUT_KINDS if inputs.get(kind)]
        out = Embedded({kind: torch.empty(0, self.model.embedding_dim) for kind in inputs})
        how = (adapter, text_overflow)
        found = {kind: self._look_up(kind, inputs[kind], normalize, how) for kind in kinds}
        todo = {kind: [i for i in range(len(inputs[kind])) if i not in found[kind][1]] for kind in kinds}
        asked = {kind: [inputs[kind][i] for i in todo[kind]] for kind in kinds if todo[kind]}
        fresh: dict[str, torch.Tensor] = {}
        if asked:  # reserved against the budget before any decoding
            with engine.admit(sum(map(len, asked.values()))), self.budget.hold(decoded_bytes(asked), describe(asked)):
                results = await asyncio.gather(
                    *(self._embed_kind(engine, kind, asked[kind], todo[kind], fields[kind], skip_bad, out, how)
                      for kind in asked),
                    return_exceptions=True,
                )
            for kind, result in zip(asked, results):  # the first failing kind, in a fixed order
                if isinstance(result, BaseException):
                    raise result
                fresh[kind] = finish(result, normalize)
        for kind in kinds:
            out.vectors[kind] = self._merge(kind, fresh.get(kind), *found[kind], out)
        return out

    def _look_up(self, kind: str, items: list[Any], normalize: bool, how: tuple[str | None, str]
                 ) -> tuple[list[bytes], dict[int, Cached]]:
        """Each item's cache key (adapter and, for text, ``text_overflow`` included), and the
        items found (by index); nothing without a cache."""
        if self.cache is None:
            return [], {}
        context = f"{how[0]}\0{how[1] if kind == 'text' else ''}"
        keys = [content_key(kind, item, normalize, context) for item in items]
        hits = {i: entry for i, key in enumerate(keys) if (entry := self.cache.get(kind, key)) is not None}
        return keys, hits

    def _merge(self, kind: str, fresh: torch.Tensor | None, keys: list[bytes], hits: dict[int, Cached],
               out: Embedded) -> torch.Tensor:
        """The fresh rows (cached now) and the cached ones, in the request's order."""
        if self.cache is None or fresh is None and not hits:
            return fresh if fresh is not None else out.vectors[kind]
        rows = dict(zip(out.kept.get(kind, []), fresh if fresh is not None else []))
        for index, row in rows.items():
            self.cache.put(keys[index], row, out.item_tokens.get(index, 0) if kind == "text" else 0)
        for index, entry in hits.items():
            rows[index] = entry.vector
            out.text_tokens += entry.tokens
        out.kept[kind] = sorted(rows)
        return torch.stack([rows[i] for i in out.kept[kind]]) if rows else out.vectors[kind]

    def _check_loaded(self, inputs: dict[str, list[Any]], fields: dict[str, str]) -> None:
        for kind, items in inputs.items():
            if items and ENCODER_OF[kind] not in self.model.modalities:
                raise bad_request(
                    f"{fields[kind]}: the {ENCODER_OF[kind]} encoder is not loaded by this server "
                    f"(loaded: {', '.join(self.model.modalities)}; see --modalities)"
                )

    async def _embed_kind(
        self, engine: Engine, kind: str, items: list[Any], positions: list[int], field_name: str, skip_bad: bool,
        out: Embedded, how: tuple[str | None, str],
    ) -> torch.Tensor:
        """Embed ``items``, the request's items at ``positions`` (errors name those)."""
        if kind == "text":
            return await self._embed_text(engine, items, positions, field_name, skip_bad, out, how)
        results = await asyncio.gather(*(engine.in_pool(_preprocess, kind, item) for item in items))
        tensors, kept = [], []
        for index, result in enumerate(results):
            if isinstance(result, Exception):
                where = positions[index]
                _skip(out, kind, where, f"{field_name}[{where}]: could not read this {kind} input: {result}", skip_bad)
                continue
            tensors.append(result)
            kept.append(positions[index])
        rows = await engine.encode(kind, tensors, how[0])
        return _kept_rows(out, kind, kept, field_name, skip_bad, rows)

    async def _embed_text(
        self, engine: Engine, texts: list[str], positions: list[int], field_name: str, skip_bad: bool, out: Embedded,
        how: tuple[str | None, str],
    ) -> torch.Tensor:
        """Texts through the pipeline's :func:`text_rows` (``text_overflow``), encoded, then merged per text."""
        adapter, text_overflow = how
        try:
            prepared = await engine.in_pool(text_rows, engine.pipeline.tokenizer, list(texts), text_overflow,
                                            positions, field_name)
        except InputError as exc:  # text_overflow="error": names field[index] and its token count
            raise bad_request(str(exc)) from None
        if len(prepared.owner) > self.settings.max_queue:
            raise ApiError(413, f"{field_name}: the texts make {len(prepared.owner)} windows of the text encoder "
                                f"(text_overflow={text_overflow!r}), more than the server queues at once "
                                f"({self.settings.max_queue}, --max-queue); split them")
        warn_cut(prepared.cut, len(texts))
        counts = (prepared.ids != 0).sum(dim=1)
        out.text_tokens += int(counts.sum())
        per_text = torch.zeros(len(texts), dtype=torch.long).index_add_(0, torch.as_tensor(prepared.owner), counts)
        out.item_tokens.update(zip(positions, per_text.tolist()))
        rows = await engine.encode("text", list(prepared.ids.unbind(0)), adapter)
        rows = prepared.merge(rows, len(texts), normalize=False)
        return _kept_rows(out, "text", list(positions), field_name, skip_bad, rows)

    # -- compact vectors ------------------------------------------------------------
    async def ranges(self, adapter: str | None = None) -> "Ranges":
        """The int8/uint8 ranges of the base or an ``adapter`` (each is its own space): the user's
        (``ranges``), else calibrated once per process on the documented prompts
        (:data:`~imagebind_sdk.vectors.compact.CALIBRATION_PROMPTS`), never on a request's vectors."""
        from ..vectors.compact import CALIBRATION_PROMPTS, calibrate

        if adapter in self._given_ranges:  # the user's, instead of the calibration
            return self._given_ranges[adapter]
        if "text" not in self.model.modalities:
            raise bad_request("encoding: int8/uint8 are calibrated on text prompts, and this server does not "
                              "load the text encoder (see --modalities); give --ranges, or use float16 or binary")
        task = self._ranges.get(adapter)
        if task is None or (task.done() and task.exception() is not None):
            async def run() -> Ranges:
                step = self.settings.max_batch_size
                texts = list(CALIBRATION_PROMPTS)
                unit = torch.cat([(await self.embed({"text": texts[i:i + step]}, {"text": "calibration"},
                                                    normalize=True, adapter=adapter)).vectors["text"]
                                  for i in range(0, len(texts), step)])
                logger.info("calibrated int8 ranges on %d prompts (model %s)", len(texts), adapter or self.name)
                return calibrate(_given(unit), texts)
            task = self._ranges[adapter] = asyncio.ensure_future(run())
        return await asyncio.shield(task)

    # -- zero-shot ----------------------------------------------------------------
    async def label_embeddings(self, labels: Sequence[str], templates: Sequence[str], adapter: str | None = None
                               ) -> torch.Tensor:
        """(L, D) unit label embeddings (templates averaged) under ``adapter``, cached; same math
        as ``ImageBind.zero_shot``."""
        from ..vectors.zero_shot import build_label_embeddings

        key = (adapter, tuple(labels), tuple(templates))
        if key not in self._labels:
            texts = [template.format(label) for label in labels for template in templates]
            step = self.settings.max_batch_size  # labels x templates may exceed --max-queue: one batch at a time
            unit = torch.cat([(await self.embed({"text": texts[i:i + step]}, {"text": "labels"}, normalize=True,
                                                adapter=adapter)).vectors["text"]
                              for i in range(0, len(texts), step)])
            if len(self._labels) >= LABEL_CACHE_SIZE:
                self._labels.pop(next(iter(self._labels)))
            self._labels[key] = build_label_embeddings(list(labels), list(templates), _given(unit))
        return self._labels[key]


def _kept_rows(out: Embedded, kind: str, kept: list[int], field_name: str, skip_bad: bool, rows: Rows
               ) -> torch.Tensor:
    """The rows that hold a vector; the failed ones fail the request naming ``field[index]``, or are skipped."""
    for position in sorted(rows.failed):  # this request's own items only, named by its own field
        _skip(out, kind, kept[position], f"{field_name}[{kept[position]}]: {rows.failed[position]}", skip_bad)
    good = rows.good()
    out.kept[kind] = [kept[p] for p in good]
    return rows.vectors[good]


def _skip(out: Embedded, kind: str, index: int, message: str, skip_bad: bool) -> None:
    """A bad item: the request fails with 400 naming it, or (``skip_bad``) it is listed as skipped."""
    if not skip_bad:
        raise bad_request(message)
    out.skipped.append({"kind": kind, "index": index, "error": message})


def _given(vectors: torch.Tensor) -> Callable[[list[str]], torch.Tensor]:
    """An ``encode_text`` that returns vectors already computed for exactly these texts."""
    return lambda texts: vectors[: len(texts)]


def _preprocess(kind: str, data: bytes) -> torch.Tensor | Exception:
    """One item's model input, or the exception explaining why the bytes are unusable.

    Every failure on untrusted bytes is the client's problem (4xx), whatever the
    decoder raises, so it is returned rather than raised.
    """
    from ..preprocess import preprocess_one

    try:
        return preprocess_one(kind, data)
    except Exception as exc:  # noqa: BLE001 - decoders raise many types for bad bytes
        return exc
