"""The facade: ``ImageBind.load()`` and ``model.embed(...)``."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import torch

from .weights import hub
from .weights.adapters import named_sources
from .weights.quantize import check_quantize, compile_mode, is_quantized, quantize_int8
from .preprocess import OnError, checked_options
from .kinds import ENCODER_OF, INPUT_KINDS, unexpected_kinds
from .weights.checkpoint import load_model
from .model.config import ImageBindConfig, check_modalities
from .weights.dtypes import as_dtype
from .vectors.embeddings import Embeddings
from .vectors.space import Space, deferred_space
from .model import ImageBindModel
from .pipeline import Pipeline, check_on_error, check_text_overflow, embed_kind, text_list
from .vectors.templates import templates_for
from .vectors.zero_shot import ZeroShotResult, build_label_embeddings, parse_labels, zero_shot_probs

if TYPE_CHECKING:
    from .bulk.files import BulkResult
    from .bulk.windowed import WindowFilesResult
    from .windows.embed import WindowEmbeddings

logger = logging.getLogger(__name__)

LABEL_CACHE_SIZE = 32
def default_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class ImageBind:
    """ImageBind for inference: six modalities into one space of unit vectors.

    >>> model = ImageBind.load("imagebind-huge", modalities=["text", "audio"])
    >>> out = model.embed(text=["a dog", "a car"], audio=["bark.wav"])
    >>> out.text @ out.audio.T
    """

    def __init__(self, model: ImageBindModel, *, device: torch.device, source: str = "", weights: Any = None) -> None:
        self.pipeline = Pipeline(model, device=device)  # every embedding goes through it
        self.source = source
        self._adapters: Any = None  # model.lora.AdapterSet once an adapter is loaded
        self._weights = list(weights) if weights is not None else None  # the checkpoint's files: its space
        self._label_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], torch.Tensor] = {}

    @property
    def checkpoint(self) -> str:
        """The checkpoint loaded (alias, Hub id, folder or file); ``source`` is its 0.1 name."""
        return self.source

    @classmethod
    def load(
        cls,
        source: str | os.PathLike[str] = hub.DEFAULT_SOURCE,
        *,
        modalities: Iterable[str] | None = None,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        local_files_only: bool | None = None,
        quantize: str | None = None,
        compile: bool | str = False,
        trim_text: bool = True,
        backend: str = "torch",
        adapters: Any = None,
    ) -> "ImageBind":
        """Load a checkpoint: alias (``imagebind-huge``), Hub repo id, directory or file.

        Only the encoders in ``modalities`` (default: all six) are built and only their
        tensors are read. ``device`` defaults to CUDA, then MPS, then CPU; ``dtype`` to
        float32 (bfloat16/float16 supported). ``quantize="int8"`` converts every Linear
        layer to dynamic int8 after loading (CPU and float32 only; see
        :mod:`imagebind_sdk.weights.quantize`). ``compile=True`` (or a ``torch.compile`` mode
        such as ``"reduce-overhead"``, which uses CUDA graphs) compiles each encoder;
        the first call per input shape is slow. ``trim_text=False`` runs every text
        through all 77 positions as the reference does (same numbers, slower).
        ``backend="onnxruntime"`` runs an ``export-onnx`` folder, or any torch checkpoint exported
        once into a cache (:mod:`imagebind_sdk.export.cache`); ``quantize="int8"``: int8 graphs.
        ``adapters``: LoRA adapters in ImageBind-LoRA's format (a folder, file or Hub repo,
        a list of them, or a dict name -> source), loaded with :meth:`load_adapter`; the
        first becomes active.
        """
        if backend != "torch":
            if adapters is not None:
                raise ValueError(f"adapters need backend='torch' (LoRA paths are not exported), got {backend!r}")
            from .export import load_backend

            onnx_model = load_backend(backend, source, modalities=modalities, device=device, dtype=dtype, quantize=quantize,
                                      compile=compile, trim_text=trim_text, revision=revision, cache_dir=cache_dir,
                                      local_files_only=local_files_only)
            return cls(onnx_model, device=torch.device("cpu"), source=os.fspath(source))
        wanted = check_modalities(modalities)
        target = torch.device(device) if device is not None else default_device()
        weights_dtype = as_dtype(dtype)
        check_quantize(quantize, target, weights_dtype)
        mode = compile_mode(compile, quantize)
        resolved = hub.resolve(source, modalities=wanted, revision=revision, cache_dir=cache_dir,
                               local_files_only=local_files_only)
        model = load_model(resolved.config, resolved.weight_files, wanted, weights_dtype)
        if quantize is not None:
            model = quantize_int8(model)
        model = model.to(target)
        for encoder in model.encoders.values():
            encoder.trim_text = trim_text
            if mode is not None:
                encoder.compile(mode=mode)
        loaded = cls(model, device=target, source=resolved.source, weights=resolved.weight_files)
        for i, (name, adapter) in enumerate(named_sources(adapters)):
            loaded.load_adapter(adapter, name=name, activate=i == 0, cache_dir=cache_dir, local_files_only=local_files_only)
        return loaded

    # -- properties ---------------------------------------------------------
    @property
    def model(self) -> ImageBindModel:
        return self.pipeline.model

    @property
    def device(self) -> torch.device:
        return self.pipeline.device

    @property
    def tokenizer(self) -> Any:
        return self.pipeline.tokenizer

    @property
    def config(self) -> ImageBindConfig:
        return self.pipeline.config

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.pipeline.modalities

    @property
    def embedding_dim(self) -> int:
        return self.pipeline.embedding_dim

    @property
    def dtype(self) -> torch.dtype:
        return self.pipeline.dtype

    @property
    def backend(self) -> str:  # "torch", or "onnxruntime" (an OnnxModel says so)
        return getattr(self.model, "backend", "torch")

    @property
    def quantize(self) -> str | None:  # "int8" when the encoders run int8 weights (either backend)
        return getattr(self.model, "quantize", None) or ("int8" if self.backend == "torch" and is_quantized(self.model) else None)

    def __repr__(self) -> str:
        q = f", quantize={self.quantize!r}" if self.quantize else ""
        a = f", adapter={self.active_adapter!r}" if self.active_adapter is not None else ""
        return (f"ImageBind(source={self.source!r}, backend={self.backend!r}, modalities={list(self.modalities)}, "
                f"dim={self.embedding_dim}, device={self.device}, dtype={self.dtype}{q}{a})")

    # -- LoRA adapters --------------------------------------------------------
    @property
    def active_adapter(self) -> str | None:
        """The name of the active LoRA adapter, None for the base model."""
        return self._adapters.active if self._adapters is not None else None

    @property
    def adapters(self) -> list[str]:
        """Names of the loaded LoRA adapters."""
        return list(self._adapters.adapters) if self._adapters is not None else []

    @property
    def space(self) -> Space | None:
        """The space of this model's vectors now: checkpoint content + active adapter, hashed when first
        asked (:mod:`imagebind_sdk.vectors.space`); onnxruntime: the one its ``onnx.json`` records."""
        return self.space_of(self.active_adapter)

    def space_of(self, adapter: str | None) -> Space | None:
        """The space of the vectors made with ``adapter`` active (None: the base), not switching to it."""
        return self._space_later(adapter)()

    def _space_later(self, adapter: str | None) -> Callable[[], Space | None]:
        loaded = self._adapters.adapters if self._adapters is not None else {}
        return deferred_space(self.config, self._weights, loaded, adapter, getattr(self.model, "space", None))

    def load_adapter(
        self, source: str | os.PathLike[str], name: str | None = None, *, postfix: str | None = None,
        layers: Mapping[str, list[int]] | None = None, activate: bool = True, revision: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None, local_files_only: bool | None = None,
    ) -> str:
        """Load a LoRA adapter in ImageBind-LoRA's format (folder, one of its files, or Hub repo)
        beside the others; it becomes active unless ``activate=False``. Returns its name
        (default: the postfix without its leading ``_``, or the folder's name).

        A text adapter makes the text trunk run WITHOUT its causal mask, as ImageBind-LoRA's
        code does (text vectors change even for an all-zero adapter).
        """
        from .weights.adapters import load_adapter

        if not hasattr(self.model, "check_weights"):
            raise ValueError("LoRA adapters need the torch backend")
        if self._adapters is None:
            from .model.lora import AdapterSet

            self._adapters = AdapterSet(self.model)
        name = load_adapter(self._adapters, source, name, postfix=postfix, layers=layers, device=self.device,
                            dtype=self.dtype, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only)
        if activate:
            self.set_adapter(name)
        return name

    def set_adapter(self, name: str | None) -> None:
        """Make a loaded adapter active (None: the base model); nothing is reloaded."""
        if self._adapters is None:
            if name is None:
                return
            raise ValueError(f"no adapter named {name!r}; none is loaded (see load_adapter)")
        self._adapters.activate(name)

    def encoder(self, modality: str) -> torch.nn.Module:
        """The loaded encoder of a modality, once its weights are checked finite (CheckpointError
        naming the tensor otherwise, see :meth:`check_weights`); a clear error if it was not loaded."""
        return self.pipeline.encoder(modality)

    def check_weights(self) -> None:
        """Scan every loaded weight for NaN/inf now (``load()`` defers it to each encoder's
        first use); raise ``CheckpointError`` naming the first bad tensor."""
        if hasattr(self.model, "check_weights"):
            self.model.check_weights()

    def logit_scale(self, modality: str) -> float:
        """The reference's per-modality output scale (text: learned, clipped at 100)."""
        return self.encoder(modality).logit_scale()

    # -- embedding ----------------------------------------------------------
    def encode(
        self, modality: str, x: torch.Tensor, *, batch_size: int | None = None, normalize: bool = True,
        output: str = "embedding",
    ) -> torch.Tensor:
        """Preprocessed model inputs -> (N, D) float32 vectors on the CPU.

        ``output`` (features for LLM apps such as PandaGPT or ImageBind-LLM):
        ``"embedding"`` (default) the vectors below; ``"pooled"`` the selected token
        (CLS; text: end-of-text) after the trunk's final norm, before the projection,
        (N, width); ``"tokens"`` the whole token sequence after that norm, (N, L, width).
        Multi-clip inputs keep their clips: (N, S, width) / (N, S, L, width).
        ``normalize`` applies to embeddings only.

        Multi-clip inputs (audio (B,S,1,128,204), video (B,S,3,T,224,224)) average the
        clip vectors. ``normalize=True``: unit vectors (the clip mean renormalised).
        ``normalize=False``: exactly the reference model's output, each clip's unit vector
        times :meth:`logit_scale`, then the mean over clips (not unit length).
        Every row is finite: an input whose row comes out NaN/inf (finite values too large
        for the encoder) raises :class:`InputError` naming its index.
        """
        if output != "embedding":
            return self.pipeline.features(modality, x, output, batch_size)
        return self.pipeline.encode(modality, x, batch_size=batch_size, normalize=normalize)

    def embed(
        self,
        text: str | Sequence[str] | None = None,
        vision: Any = None,
        audio: Any = None,
        video: Any = None,
        depth: Any = None,
        thermal: Any = None,
        imu: Any = None,
        *,
        batch_size: int = 32,
        on_error: OnError = "raise",
        progress: bool | None = None,
        preprocess: Mapping[str, Mapping[str, Any]] | None = None,
        normalize: bool = True,
        text_overflow: str = "truncate",
        **unexpected: Any,
    ) -> Embeddings:
        """Embed any mix of modalities; each argument is one item or a list.

        Returns ``Embeddings``: modality -> (N, D) unit vectors in input order, with the
        source of each row. ``normalize=False`` returns the reference model's raw output
        instead (unit vector x per-modality logit scale, averaged over clips; see
        :meth:`encode`): the numbers Weaviate's multi2vec-bind container serves. ``preprocess`` passes options per modality, e.g.
        ``{"vision": {"exif_transpose": True}}``. With ``on_error="skip"`` bad items are
        left out and reported in ``.skipped``; by default the first one raises. Every
        returned row is finite (a NaN/inf embedding is a bad item). Invalid options raise
        ValueError before any item is read, whatever ``on_error`` says.

        ``text_overflow``: texts longer than the encoder's 77 tokens are ``"truncate"``-d
        (default; one warning per call counts them), embedded whole as the renormalised
        mean of their 77-token windows (``"chunk_mean"``), or refused (``"error"``).
        """
        if unexpected:
            raise unexpected_kinds("embed", unexpected)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        given = dict(text=text, vision=vision, audio=audio, video=video, depth=depth, thermal=thermal, imu=imu)
        given = {k: v for k, v in given.items() if v is not None}
        if not given:
            raise ValueError(f"nothing to embed: pass at least one of {', '.join(INPUT_KINDS)}")
        for kind in given:  # fail fast on an unloaded encoder (its weights are scanned at first use)
            self.pipeline.loaded(ENCODER_OF[kind])
        check_on_error(on_error)
        check_text_overflow(text_overflow)
        options = checked_options(preprocess)
        if "text" in given:
            given["text"] = text_list(given["text"])
        results = {
            kind: embed_kind(self.pipeline, kind, value, batch_size=batch_size, on_error=on_error,
                             progress=progress, options=options.get(kind), normalize=normalize,
                             text_overflow=text_overflow)
            for kind, value in given.items()
        }
        return Embeddings(
            {kind: r.vectors for kind, r in results.items()},
            sources={kind: r.sources for kind, r in results.items()},
            skipped={kind: r.skipped for kind, r in results.items() if r.skipped},
            space=self._space_later(self.active_adapter),
        )

    def label_embeddings(self, labels: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        """(L, D) text embeddings of labels averaged over prompt templates (cached)."""
        key = (self.active_adapter, tuple(labels), tuple(templates))
        if key not in self._label_cache:
            if len(self._label_cache) >= LABEL_CACHE_SIZE:
                self._label_cache.pop(next(iter(self._label_cache)))
            self._label_cache[key] = build_label_embeddings(
                list(labels), list(templates), lambda texts: self.embed(text=texts).text
            )
        return self._label_cache[key]

    def zero_shot(
        self,
        candidate_labels: Sequence[str],
        *,
        templates: str | Sequence[str] | None = None,
        top_k: int | None = None,
        batch_size: int = 32,
        on_error: OnError = "raise",
        **inputs: Any,
    ) -> ZeroShotResult:
        """Zero-shot labels for inputs of one kind, e.g. ``zero_shot(["dog", "cat"], audio=[...])``.

        Probabilities are ``softmax(logit_scale * cosine)`` between each input and the
        labels' text embeddings (averaged over ``templates``; default: per-kind prompt
        sets in ``imagebind_sdk.vectors.templates``), with the checkpoint's text logit scale.
        ``top_k`` limits what the result prints and serialises. ``on_error`` as in
        :meth:`embed` (skipped inputs have no row). ``candidate_labels`` is a list of at
        least 2 labels, or one string split on commas (``"dog,cat"``).
        """
        unexpected = [k for k in inputs if k not in INPUT_KINDS]
        if unexpected:
            raise unexpected_kinds("zero_shot", unexpected)
        given = {k: v for k, v in inputs.items() if v is not None}
        if len(given) != 1 or next(iter(given)) not in INPUT_KINDS or "text" in given:
            raise ValueError(
                f"zero_shot takes inputs of exactly one kind other than text "
                f"({', '.join(k for k in INPUT_KINDS if k != 'text')}), got {sorted(inputs) or 'none'}"
            )
        kind, value = next(iter(given.items()))
        labels = parse_labels(candidate_labels)
        if top_k is not None and not 1 <= top_k <= len(labels):
            raise ValueError(f"top_k must lie in [1, {len(labels)}] for {len(labels)} labels, got {top_k}")
        label_emb = self.label_embeddings(labels, templates_for(kind, templates))
        out = self.embed(**{kind: value}, batch_size=batch_size, on_error=on_error)
        probs = zero_shot_probs(label_emb, out[kind], self.logit_scale("text"))
        return ZeroShotResult(labels, probs, out.sources[kind], top_k=top_k)

    def embed_files(self, paths_or_dir: Any, kind: str | None = None, **kwargs: Any) -> "BulkResult | WindowFilesResult":
        """Embed many files (a directory, glob, path or list) in batches; see :func:`imagebind_sdk.bulk.files.embed_files`.

        >>> result = model.embed_files("photos/", batch_size=32, num_workers=2, out="photos.emb")
        >>> result.embeddings.vision.shape

        ``windows=True``: audio/video/IMU files as windows with timestamps, also to ``out``
        (:mod:`imagebind_sdk.bulk.windowed`).
        """
        from .bulk.files import embed_files

        return embed_files(self, paths_or_dir, kind, **kwargs)

    def embed_windows(self, audio: Any = None, video: Any = None, imu: Any = None, **options: Any) -> "WindowEmbeddings":
        """Long recordings -> one vector per window with ``start_s``/``end_s``; see :func:`imagebind_sdk.windows.embed.embed_windows`."""
        from .windows.embed import embed_windows

        return embed_windows(self, audio=audio, video=video, imu=imu, **options)

    def find_moments(self, text: str | None = None, **options: Any) -> list[dict[str, Any]]:
        """Where ``text`` happens in recordings, e.g. ``find_moments(text="applause", audio="talk.mp3")``;
        see :func:`imagebind_sdk.windows.moments.find_moments_in`."""
        from .windows.moments import find_moments_in

        return find_moments_in(self, text, **options)
