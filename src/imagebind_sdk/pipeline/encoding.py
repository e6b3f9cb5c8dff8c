"""Model inputs -> vectors: the one place that calls an encoder, normalises (or not) and
checks every row for NaN/inf.

:class:`Pipeline` wraps a loaded model (``ImageBindModel``, or any object with its
``encoders``, ``config``, ``modalities`` and ``parameters()``, such as the onnxruntime
backend's) with the device its inputs go to and the text tokenizer. It never imports
the facade (``ImageBind`` holds one and delegates to it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..model.config import MODALITIES, ImageBindConfig
from ..vectors.ops import normalize_rows
from ..preprocess.sources import InputError
from ..preprocess.tokenizer import Tokenizer, default_tokenizer
from .model_inputs import check_model_input, nonfinite_message, nonfinite_rows

logger = logging.getLogger(__name__)

# ImageBind.encode(output=...) values other than the embedding: the trunk's features.
FEATURE_OUTPUTS = ("pooled", "tokens")


def unit_rows(raw: torch.Tensor) -> torch.Tensor:
    """Raw model outputs (unit x logit scale, clip means) -> unit vectors: the one
    normalisation of the SDK (the facade, the server's answers and zero-shot use it)."""
    return normalize_rows(raw)


def finish(raw: torch.Tensor, normalize: bool) -> torch.Tensor:
    """``raw`` as asked: unit vectors when ``normalize``, else the raw outputs themselves."""
    return unit_rows(raw) if normalize else raw


@dataclass
class Rows:
    """Per-row outcomes of one encoder call: ``vectors`` (N, D) and, by position, why a row
    has no vector (its row in ``vectors`` is zeros then, never NaN)."""

    vectors: torch.Tensor
    failed: dict[int, str]

    def good(self) -> list[int]:
        """Positions of the rows that hold a vector."""
        return [i for i in range(len(self.vectors)) if i not in self.failed]


def failure(exc: BaseException) -> str:
    """Why an item failed inside the encoder, as told to whoever sent it."""
    return f"the encoder failed on this input: {type(exc).__name__}: {exc}"


class Pipeline:
    """Encoders of a loaded model, the device they run on and the tokenizer."""

    def __init__(self, model: Any, *, device: torch.device, tokenizer: Tokenizer | None = None) -> None:
        self.model = model
        self.device = device
        self.tokenizer = tokenizer if tokenizer is not None else default_tokenizer()

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

    def loaded(self, modality: str) -> Any:
        """The encoder of ``modality``; ValueError saying how to load it when it is not loaded."""
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {list(MODALITIES)}")
        if modality not in self.model.encoders:
            raise ValueError(
                f"the {modality} encoder is not loaded (loaded: {list(self.modalities)}); "
                f"load it with ImageBind.load(..., modalities=[..., {modality!r}]) or modalities=None for all"
            )
        return self.model.encoders[modality]

    def encoder(self, modality: str) -> Any:
        """:meth:`loaded`, once its weights are checked finite (the onnxruntime backend has no check)."""
        encoder = self.loaded(modality)
        if hasattr(self.model, "check_weights"):
            self.model.check_weights(modality)
        return encoder

    def logit_scale(self, modality: str) -> float:
        return self.encoder(modality).logit_scale()

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts -> (N, 77) token ids."""
        return self.tokenizer(list(texts))

    def _batches(self, modality: str, x: torch.Tensor, batch_size: int | None, **call: Any) -> tuple[bool, list]:
        """(several clips per item?, the encoder's outputs on the CPU for ``x`` checked, flattened
        over clips, cast to the model's dtype and cut into ``batch_size`` rows)."""
        encoder = self.encoder(modality)
        clips = check_model_input(modality, x, self.config)
        flat = x.reshape(-1, *x.shape[2:]) if clips else x
        if flat.is_floating_point():
            flat = flat.to(self.dtype)
        step = batch_size or max(len(flat), 1)
        return clips, [encoder(flat[i : i + step].to(self.device), **call).cpu() for i in range(0, len(flat), step)]

    @torch.inference_mode()
    def run(self, modality: str, x: torch.Tensor, batch_size: int | None, normalize: bool) -> torch.Tensor:
        """Model inputs -> (N, D) float32 rows on the CPU, unchecked (may hold NaN/inf).

        Multi-clip inputs average their clip vectors; ``normalize``: unit vectors (the clip
        mean renormalised), else each clip's unit vector x the logit scale, then the mean.
        """
        clips, parts = self._batches(modality, x, batch_size)
        out = torch.cat(parts) if parts else torch.empty(0, self.embedding_dim)
        if not normalize:
            out = out * self.logit_scale(modality)
        if clips:
            out = finish(out.view(x.shape[0], x.shape[1], -1).mean(dim=1), normalize)
        return out

    @torch.inference_mode()
    def features(self, modality: str, x: torch.Tensor, output: str, batch_size: int | None = None) -> torch.Tensor:
        """The trunk's features (``ImageBind.encode(output=...)``), finite, float32 on the CPU:
        ``"pooled"`` (N, width) or ``"tokens"`` (N, L, width); multi-clip inputs keep their clips."""
        if output not in FEATURE_OUTPUTS:
            raise ValueError(f"output must be one of {['embedding', *FEATURE_OUTPUTS]}, got {output!r}")
        clips, parts = self._batches(modality, x, batch_size, output=output)
        out = torch.cat(parts).float() if parts else torch.empty(0, self.config.encoder(modality).width)
        bad = nonfinite_rows(out.flatten(1))
        if bad:
            raise InputError(f"{modality}[{bad[0] // (x.shape[1] if clips else 1)}]: {nonfinite_message(self.dtype)}")
        return out.view(x.shape[0], x.shape[1], *out.shape[1:]) if clips else out

    def encode(
        self, modality: str, x: torch.Tensor, *, batch_size: int | None = None, normalize: bool = True
    ) -> torch.Tensor:
        """:meth:`run`, strict: a NaN/inf row raises :class:`InputError` naming its index."""
        rows = self.encode_rows(modality, x, batch_size=batch_size, normalize=normalize)
        if rows.failed:
            bad = sorted(rows.failed)
            more = f" (and {len(bad) - 1} more rows: {bad[1:11]})" if len(bad) > 1 else ""
            raise InputError(f"{modality}[{bad[0]}]: {rows.failed[bad[0]]}{more}")
        return rows.vectors

    @torch.inference_mode()
    def encode_rows(
        self, modality: str, x: torch.Tensor, *, batch_size: int | None = None, normalize: bool = True,
        isolate: bool = False,
    ) -> Rows:
        """:meth:`run` with an outcome per row: a NaN/inf row is a failed row.

        ``isolate``: an exception from the encoder on the batch is retried item by item, so
        only the items that fail alone are failed (with the error); otherwise it propagates.
        An encoder that is not loaded or whose weights are not finite is never an item's fault.
        """
        self.encoder(modality)  # raises outside the isolation below
        try:
            out = self.run(modality, x, batch_size, normalize)
        except Exception as exc:  # noqa: BLE001 - any encoder error is an item's outcome when isolating
            if not isolate:
                raise
            if len(x) == 1:
                return Rows(torch.zeros(1, self.embedding_dim), {0: failure(exc)})
            logger.warning("encoding a %s batch of %d failed (%s); encoding its items one by one",
                           modality, len(x), exc)
            parts = [self.encode_rows(modality, x[i : i + 1], batch_size=batch_size, normalize=normalize,
                                      isolate=True) for i in range(len(x))]
            failed = {i: message for i, part in enumerate(parts) for message in part.failed.values()}
            return Rows(torch.cat([part.vectors for part in parts]), failed)
        bad = nonfinite_rows(out)
        if bad:
            out[bad] = 0.0  # no NaN leaves, even by mistake
        return Rows(out, dict.fromkeys(bad, nonfinite_message(self.dtype)))
