"""Weight dtypes by name: the one parser for ``load()``, ``convert_checkpoint`` and the CLI.

torch is imported only when a dtype is resolved: the CLI builds its ``--dtype`` choices
from these names, and ``imagebind-sdk --help`` must not pay for importing torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# Accepted names -> the torch dtype's name; also the CLI's --dtype choices.
DTYPE_NAMES = {
    "float32": "float32", "fp32": "float32", "float": "float32",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
}
# The weight dtypes the encoders support, by name (``WEIGHT_DTYPES``: the torch dtypes).
WEIGHT_DTYPE_NAMES = ("float32", "bfloat16", "float16")


def __getattr__(name: str) -> Any:
    if name == "WEIGHT_DTYPES":  # torch dtypes, made when first asked for
        import torch

        return tuple(getattr(torch, n) for n in WEIGHT_DTYPE_NAMES)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def as_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """None, a torch dtype or a name ("bf16", "float16", "torch.float32") -> a weight dtype or None."""
    import torch

    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        resolved = dtype
    else:
        name = DTYPE_NAMES.get(str(dtype).removeprefix("torch."))
        resolved = getattr(torch, name) if name else None
    if resolved not in tuple(getattr(torch, n) for n in WEIGHT_DTYPE_NAMES):
        raise ValueError(f"unsupported dtype {dtype!r}; use float32, bfloat16 (bf16) or float16 (fp16)")
    return resolved
