"""Deprecated name of :mod:`imagebind_sdk.pipeline.model_inputs` (importing it warns once)."""

from __future__ import annotations

from .deprecation import warn_once
from .pipeline.model_inputs import all_finite, check_model_input, expected_shapes

warn_once("imagebind_sdk.inputs", "imagebind_sdk.pipeline.model_inputs")

__all__ = ["all_finite", "check_model_input", "expected_shapes"]
