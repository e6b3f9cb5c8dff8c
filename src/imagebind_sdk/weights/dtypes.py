"""Weight dtypes by name: the one parser for ``load()``, ``convert_checkpoint`` and the CLI."""

from __future__ import annotations

import torch

# Accepted names -> torch dtype; also the CLI's --dtype choices.
DTYPE_NAMES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}
# The weight dtypes the encoders support.
WEIGHT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """None, a torch dtype or a name ("bf16", "float16", "torch.float32") -> a weight dtype or None."""
    if dtype is None:
        return None
    resolved = dtype if isinstance(dtype, torch.dtype) else DTYPE_NAMES.get(str(dtype).removeprefix("torch."))
    if resolved not in WEIGHT_DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; use float32, bfloat16 (bf16) or float16 (fp16)")
    return resolved
