"""The facade: ``ImageBind.load()`` and ``model.embed(...)``."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

import torch

from . import hub
from .checkpoint import load_model
from .config import MODALITIES, ImageBindConfig, check_modalities
from .dtypes import as_dtype
from .embeddings import Embeddings
from .model_inputs import check_model_input
from .kinds import ENCODER_OF, INPUT_KINDS
from .model import ImageBindModel
from .progress import progress_bar
from .quantize import quantize_int8
from .preprocess import OnError, Skipped, as_item_list, preprocess_batch
from .templates import templates_for
from .tokenizer import default_tokenizer
from .zero_shot import ZeroShotResult, build_label_embeddings, zero_shot_probs

if TYPE_CHECKING:
    from .bulk import BulkResult
    from .bulk_windows import WindowFilesResult
    from .windows import WindowEmbeddings

logger = logging.getLogger(__name__)

LABEL_CACHE_SIZE = 32


def default_device() -> torch.device:
    """CUDA if available, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _chunks(items: Sequence[Any], size: int) -> Iterator[tuple[int, Sequence[Any]]]:
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


class ImageBind:
    """ImageBind for inference: six modalities into one space of unit vectors.

    >>> model = ImageBind.load("imagebind-huge", modalities=["text", "audio"])
    >>> out = model.embed(text=["a dog", "a car"], audio=["bark.wav"])
    >>> out.text @ out.audio.T
    """

    def __init__(self, model: ImageBindModel, *, device: torch.device, source: str = "") -> None:
        self.model = model
        self.device = device
        self.source = source
        self.tokenizer = default_tokenizer()
        self._label_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], torch.Tensor] = {}

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
    ) -> "ImageBind":
        """Load a checkpoint: alias (``imagebind-huge``), Hub repo id, directory or file.

        Only the encoders in ``modalities`` (default: all six) are built and only their
        tensors are read. ``device`` defaults to CUDA, then MPS, then CPU; ``dtype`` to
        float32 (bfloat16/float16 supported). ``quantize="int8"`` converts every Linear
        layer to dynamic int8 after loading (CPU and float32 only; see
        :mod:`imagebind_sdk.quantize`). ``compile=True`` (or a ``torch.compile`` mode
        such as ``"reduce-overhead"``, which uses CUDA graphs) compiles each encoder;
        the first call per input shape is slow. ``trim_text=False`` runs every text
        through all 77 positions as the reference does (same numbers, slower).
        ``backend="onnxruntime"`` loads a folder written by ``imagebind-sdk export-onnx``
        (see :mod:`imagebind_sdk.export`; ``quantize="int8"`` picks its int8 graphs).
        """
        if backend != "torch":
            from .export import load_backend

            onnx_model = load_backend(backend, source, modalities=modalities, device=device, dtype=dtype,
                                      quantize=quantize, compile=compile, trim_text=trim_text)
            return cls(onnx_model, device=torch.device("cpu"), source=str(source))
        wanted = check_modalities(modalities)
        target = torch.device(device) if device is not None else default_device()
        weights_dtype = as_dtype(dtype)
        _check_quantize(quantize, target, weights_dtype)
        compile_mode = _compile_mode(compile, quantize)
        resolved = hub.resolve(
            source, modalities=wanted, revision=revision, cache_dir=cache_dir, local_files_only=local_files_only
        )
        model = load_model(resolved.config, resolved.weight_files, wanted, weights_dtype)
        if quantize is not None:
            model = quantize_int8(model)
        model = model.to(target)
        for encoder in model.encoders.values():
            encoder.trim_text = trim_text
            if compile_mode is not None:
                encoder.compile(mode=compile_mode)
        return cls(model, device=target, source=resolved.source)

    # -- properties ---------------------------------------------------------
    @property
    def config(self) -> ImageBindConfig:
        return self.model.config

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.model.modalities

    @property
    def embedding_dim(self) -> int:
        return self.config.out_embed_dim

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def __repr__(self) -> str:
        return (
            f"ImageBind(source={self.source!r}, modalities={list(self.modalities)}, "
            f"dim={self.embedding_dim}, device={self.device}, dtype={self.dtype})"
        )

    def encoder(self, modality: str) -> torch.nn.Module:
        """The loaded encoder of a modality; a clear error if it was not loaded."""
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {list(MODALITIES)}")
        if modality not in self.model.encoders:
            raise ValueError(
                f"the {modality} encoder is not loaded (loaded: {list(self.modalities)}); "
                f"load it with ImageBind.load(..., modalities=[..., {modality!r}]) or modalities=None for all"
            )
        return self.model.encoders[modality]

    def logit_scale(self, modality: str) -> float:
        """The reference's per-modality output scale (text: learned, clipped at 100)."""
        return self.encoder(modality).logit_scale()

    # -- embedding ----------------------------------------------------------
    @torch.inference_mode()
    def encode(
        self, modality: str, x: torch.Tensor, *, batch_size: int | None = None, normalize: bool = True
    ) -> torch.Tensor:
        """Preprocessed model inputs -> (N, D) float32 vectors on the CPU.

        Multi-clip inputs (audio (B,S,1,128,204), video (B,S,3,T,224,224)) average the
        clip vectors. ``normalize=True``: unit vectors (the clip mean renormalised).
        ``normalize=False``: exactly the reference model's output, each clip's unit vector
        times :meth:`logit_scale`, then the mean over clips (not unit length).
        """
        encoder = self.encoder(modality)
        clips = check_model_input(modality, x, self.config)
        flat = x.reshape(-1, *x.shape[2:]) if clips else x
        if flat.is_floating_point():
            flat = flat.to(self.dtype)
        step = batch_size or max(len(flat), 1)
        parts = [encoder(flat[i : i + step].to(self.device)).cpu() for i in range(0, len(flat), step)]
        out = torch.cat(parts) if parts else torch.empty(0, self.embedding_dim)
        if not normalize:
            out = out * self.logit_scale(modality)
        if clips:
            out = out.view(x.shape[0], x.shape[1], -1).mean(dim=1)
            if normalize:
                out = torch.nn.functional.normalize(out, dim=-1)
        return out

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
    ) -> Embeddings:
        """Embed any mix of modalities; each argument is one item or a list.

        Returns ``Embeddings``: modality -> (N, D) unit vectors in input order, with the
        source of each row. ``normalize=False`` returns the reference model's raw output
        instead (unit vector x per-modality logit scale, averaged over clips; see
        :meth:`encode`): the numbers Weaviate's multi2vec-bind container serves. ``preprocess`` passes options per modality, e.g.
        ``{"vision": {"exif_transpose": True}}``. With ``on_error="skip"`` bad items are
        left out and reported in ``.skipped``; by default the first one raises.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        given = dict(text=text, vision=vision, audio=audio, video=video, depth=depth, thermal=thermal, imu=imu)
        given = {k: v for k, v in given.items() if v is not None}
        if not given:
            raise ValueError(f"nothing to embed: pass at least one of {', '.join(INPUT_KINDS)}")
        for kind in given:
            self.encoder(ENCODER_OF[kind])  # fail fast on an unloaded encoder
        options = dict(preprocess or {})
        unknown = sorted(set(options) - set(INPUT_KINDS))
        if unknown:
            raise ValueError(f"preprocess options for unknown input kinds {unknown}; expected {INPUT_KINDS}")
        data, sources, skipped = {}, {}, {}
        for kind, value in given.items():
            if kind == "text":
                data[kind], sources[kind] = self._embed_text(value, batch_size, progress, normalize)
            else:
                data[kind], sources[kind], skipped[kind] = self._embed_items(
                    kind, value, batch_size, on_error, progress, options.get(kind, {}), normalize
                )
        return Embeddings(data, sources=sources, skipped={k: v for k, v in skipped.items() if v})

    def label_embeddings(self, labels: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
        """(L, D) text embeddings of labels averaged over prompt templates (cached)."""
        key = (tuple(labels), tuple(templates))
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
        sets in ``imagebind_sdk.templates``), with the checkpoint's text logit scale.
        ``top_k`` limits what the result prints and serialises. ``on_error`` as in
        :meth:`embed` (skipped inputs have no row).
        """
        given = {k: v for k, v in inputs.items() if v is not None}
        if len(given) != 1 or next(iter(given)) not in INPUT_KINDS or "text" in given:
            raise ValueError(
                f"zero_shot takes inputs of exactly one kind other than text "
                f"({', '.join(k for k in INPUT_KINDS if k != 'text')}), got {sorted(inputs) or 'none'}"
            )
        kind, value = next(iter(given.items()))
        labels = [candidate_labels] if isinstance(candidate_labels, str) else list(candidate_labels)
        if top_k is not None and not 1 <= top_k <= len(labels):
            raise ValueError(f"top_k must lie in [1, {len(labels)}] for {len(labels)} labels, got {top_k}")
        label_emb = self.label_embeddings(labels, templates_for(kind, templates))
        out = self.embed(**{kind: value}, batch_size=batch_size, on_error=on_error)
        probs = zero_shot_probs(label_emb, out[kind], self.logit_scale("text"))
        return ZeroShotResult(labels, probs, out.sources[kind], top_k=top_k)

    def embed_files(self, paths_or_dir: Any, modality: str | None = None, **kwargs: Any) -> "BulkResult | WindowFilesResult":
        """Embed many files (a directory, glob, path or list) in batches; see :func:`imagebind_sdk.bulk.embed_files`.

        >>> result = model.embed_files("photos/", batch_size=32, num_workers=2, out="photos.emb")
        >>> result.embeddings.vision.shape

        ``windows=True``: audio/video/IMU files as windows with timestamps, in memory
        (:func:`imagebind_sdk.bulk_windows.embed_files_windows`).
        """
        from .bulk import embed_files, list_files

        if kwargs.pop("windows", False):  # long recordings as windows with timestamps (bulk_windows.py)
            from .bulk_windows import embed_files_windows

            return embed_files_windows(self, list_files(paths_or_dir, recursive=kwargs.pop("recursive", True)),
                                       modality, **kwargs)
        return embed_files(self, paths_or_dir, modality, **kwargs)

    def embed_windows(self, audio: Any = None, video: Any = None, imu: Any = None, **options: Any) -> "WindowEmbeddings":
        """Long recordings -> one vector per window with ``start_s``/``end_s``; see :func:`imagebind_sdk.windows.embed_windows`."""
        from .windows import embed_windows

        return embed_windows(self, audio=audio, video=video, imu=imu, **options)

    def find_moments(self, text: str | None = None, **options: Any) -> list[dict[str, Any]]:
        """Where ``text`` happens in recordings, e.g. ``find_moments(text="applause", audio="talk.mp3")``;
        see :func:`imagebind_sdk.moments.find_moments_in`."""
        from .moments import find_moments_in

        return find_moments_in(self, text, **options)

    def _embed_text(
        self, value: str | Sequence[str], batch_size: int, progress: bool | None = None, normalize: bool = True
    ) -> tuple[torch.Tensor, list[str]]:
        texts = [value] if isinstance(value, str) else list(value)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise TypeError(f"text[{i}]: expected str, got {type(t).__name__}")
        if not texts:
            return torch.empty(0, self.embedding_dim), []
        # Sorting by length keeps trimmed batches short (text trimming is exact).
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = torch.empty(len(texts), self.embedding_dim)
        bar = progress_bar(len(texts), "embedding text", "item", progress)
        for start, chunk in _chunks(order, batch_size):
            out[list(chunk)] = self.encode("text", self.tokenizer([texts[i] for i in chunk]), normalize=normalize)
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        return out, texts

    def _embed_items(
        self,
        kind: str,
        value: Any,
        batch_size: int,
        on_error: OnError,
        progress: bool | None,
        options: Mapping,
        normalize: bool = True,
    ) -> tuple[torch.Tensor, list[str], list[Skipped]]:
        items = as_item_list(kind, value)
        rows, sources, skipped = [], [], []
        bar = progress_bar(len(items), f"embedding {kind}", "item", progress)
        for start, chunk in _chunks(items, batch_size):
            batch = preprocess_batch(kind, chunk, on_error=on_error, **options)
            skipped += [Skipped(s.index + start, s.source, s.error) for s in batch.skipped]
            if batch.tensor is not None:
                rows.append(self.encode(ENCODER_OF[kind], batch.tensor, batch_size=batch_size, normalize=normalize))
                sources += batch.sources
            if bar is not None:
                bar.update(len(chunk))
        if bar is not None:
            bar.close()
        out = torch.cat(rows) if rows else torch.empty(0, self.embedding_dim)
        return out, sources, skipped


COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def _compile_mode(compile: bool | str, quantize: str | None) -> str | None:
    """The torch.compile mode for ``load(compile=...)``; None when not compiling."""
    if compile is False:
        return None
    mode = "default" if compile is True else compile
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be True, False or one of {list(COMPILE_MODES)}, got {compile!r}")
    if quantize is not None:
        raise ValueError("compile and quantize cannot be combined: dynamic int8 layers run eagerly")
    return mode


def _check_quantize(quantize: str | None, device: torch.device, dtype: torch.dtype | None) -> None:
    if quantize is None:
        return
    if quantize != "int8":
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if device.type != "cpu":
        raise ValueError(f"quantize='int8' runs on the CPU only, got device={device}; on a GPU use dtype=torch.bfloat16")
    if dtype not in (None, torch.float32):
        raise ValueError(f"quantize='int8' needs float32 weights, got dtype={dtype}; leave dtype unset")
