"""The embedding pipeline: the one place that turns items of one input kind into vectors.

Layers, bottom up: :mod:`.model_inputs` checks model-input tensors; :mod:`.encoding`
(:class:`Pipeline`) calls an encoder, normalises or not and gives every row an outcome
(a vector, or why not: NaN/inf, or an error the encoder raised on that item alone);
:mod:`.items` tokenises texts, preprocesses other items, batches them and applies
``on_error``. Everything that embeds uses it: ``ImageBind.embed``/``encode``, the
server's batching engine, bulk jobs (local and Ray), windows and the integrations.
It never imports the facade: it takes the loaded model (or an ``ImageBind``, whose
``.pipeline`` it uses, see :func:`pipeline_of`).
"""

from __future__ import annotations

from typing import Any

from .batching import chunks, closing_bar
from .encoding import Pipeline, Rows, failure, finish, unit_rows
from .items import KindResult, check_on_error, embed_kind, keep_rows, text_list
from .overflow import TEXT_OVERFLOW, TextRows, check_text_overflow, text_rows, warn_cut
from .model_inputs import check_model_input, nonfinite_message, nonfinite_rows, rows_per_item

__all__ = [
    "KindResult",
    "TEXT_OVERFLOW",
    "TextRows",
    "Pipeline",
    "Rows",
    "check_model_input",
    "check_on_error",
    "check_text_overflow",
    "chunks",
    "closing_bar",
    "embed_kind",
    "failure",
    "finish",
    "keep_rows",
    "nonfinite_message",
    "nonfinite_rows",
    "pipeline_of",
    "rows_per_item",
    "text_list",
    "text_rows",
    "unit_rows",
    "warn_cut",
]


def pipeline_of(model: Any) -> Pipeline:
    """The :class:`Pipeline` of ``model``: itself, an ``ImageBind``'s ``.pipeline``, or a new
    one around a bare loaded model (``ImageBindModel`` or the onnxruntime backend's) on the
    device of its parameters."""
    if isinstance(model, Pipeline):
        return model
    found = getattr(model, "pipeline", None)
    if isinstance(found, Pipeline):
        return found
    if hasattr(model, "encoders") and hasattr(model, "config"):
        return Pipeline(model, device=next(model.parameters()).device)
    raise TypeError(f"expected an ImageBind, a loaded ImageBindModel or a Pipeline, got {type(model).__name__}")
