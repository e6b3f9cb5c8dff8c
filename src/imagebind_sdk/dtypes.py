"""Weight dtypes by name: one table for the API, the converter and the command line."""

from __future__ import annotations

import torch

# Accepted names -> torch attribute; also the CLI's --dtype choices. Any other floating
# dtype attribute of torch ("float64", "float", "torch.float16") is accepted by as_dtype.
DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """None, a torch dtype or a name ("bf16", "float16", "torch.float32") -> torch.dtype or None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.")
    resolved = getattr(torch, DTYPE_NAMES.get(name, name), None)
    if not isinstance(resolved, torch.dtype) or not resolved.is_floating_point:
        raise ValueError(f"unsupported dtype {dtype!r}; use float32, bfloat16 or float16")
    return resolved
