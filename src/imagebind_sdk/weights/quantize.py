"""Dynamic int8 quantisation of every Linear layer, for faster CPU inference.

Weights of all ``nn.Linear`` layers are stored as int8 (per-tensor affine) and
activations are quantised on the fly at each call; everything else (convolutions,
LayerNorms, embeddings, positional embeddings) stays float32. In this SDK attention
is built from plain Linears (``attn.qkv``, ``attn.proj``), so the attention
projections are quantised too, as are ``mlp.fc1``/``fc2``, the heads' ``proj`` and
the IMU stem's ``proj``: together they hold nearly all of the compute.

API note (torch 2.14): ``torch.ao.quantization.quantize_dynamic`` is deprecated in
favour of the separate ``torchao`` package (``torchao.quantization.quantize_`` with
``Int8DynamicActivationInt8WeightConfig``). It still works in torch 2.14, needs no
extra dependency (torchao is not one of this SDK's), and runs eagerly on PyTorch's
own int8 CPU kernels (fbgemm/x86, qnnpack on ARM), which give the measured 1.5-2.4x
speed-up on two threads. Its deprecation warnings are silenced locally. If a future
torch removes it, ``quantize_int8`` raises a RuntimeError naming torchao as the
replacement.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn


def _dynamic_linear_class() -> type | None:
    try:
        from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
    except ImportError:  # pragma: no cover - depends on the torch version
        return None
    return DynamicLinear


def is_quantized(model: nn.Module) -> bool:
    """True if any layer of ``model`` is a dynamically quantised Linear."""
    cls = _dynamic_linear_class()
    return cls is not None and any(isinstance(m, cls) for m in model.modules())


def _check_float32_cpu(model: nn.Module) -> None:
    tensors = list(model.parameters()) + list(model.buffers())
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in tensors if t.is_floating_point()})
    devices = sorted({t.device.type for t in tensors})
    if dtypes and dtypes != ["float32"]:
        raise ValueError(
            f"int8 quantisation needs a float32 model, got {', '.join(dtypes)}; load it with dtype=None (float32)"
        )
    if devices and devices != ["cpu"]:
        raise ValueError(
            f"int8 dynamic quantisation runs on the CPU only, the model is on {', '.join(devices)}; "
            "load it with device='cpu' (on a GPU use dtype=torch.bfloat16 or float16 instead)"
        )


def quantize_int8(model: nn.Module, *, inplace: bool = True) -> nn.Module:
    """Quantise every ``nn.Linear`` of a float32 CPU model to dynamic int8; return the model.

    By default the model is changed in place (no second copy of the weights); pass
    ``inplace=False`` to keep the original. A model that is already quantised is
    returned as it is. The quantised model must stay on the CPU (``.to("cuda")``
    is not supported by quantised layers). Raises ``ValueError`` for a model that
    is not float32 or not on the CPU.
    """
    if is_quantized(model):
        return model
    _check_float32_cpu(model)
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError as exc:  # pragma: no cover - depends on the torch version
        raise RuntimeError(
            f"torch {torch.__version__} no longer has torch.ao.quantization.quantize_dynamic; "
            "int8 quantisation would need the torchao package (torchao.quantization.quantize_)"
        ) from exc
    with warnings.catch_warnings():
        # "torch.ao.quantization is deprecated" and "quantize_per_tensor ... deprecated"
        warnings.filterwarnings("ignore", message=r".*deprecated", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*deprecated", category=UserWarning)
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=inplace)


# Checks of load(quantize=..., compile=...), raised before any weight is read.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def compile_mode(compile: bool | str, quantize: str | None) -> str | None:
    """The torch.compile mode for ``load(compile=...)``; None when not compiling."""
    if compile is False:
        return None
    mode = "default" if compile is True else compile
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be True, False or one of {list(COMPILE_MODES)}, got {compile!r}")
    if quantize is not None:
        raise ValueError("compile and quantize cannot be combined: dynamic int8 layers run eagerly")
    return mode


def check_quantize(quantize: str | None, device: torch.device, dtype: torch.dtype | None) -> None:
    if quantize is None:
        return
    if quantize != "int8":
        raise ValueError(f"quantize must be None or 'int8', got {quantize!r}")
    if device.type != "cpu":
        raise ValueError(f"quantize='int8' runs on the CPU only, got device={device}; on a GPU use dtype=torch.bfloat16")
    if dtype not in (None, torch.float32):
        raise ValueError(f"quantize='int8' needs float32 weights, got dtype={dtype}; leave dtype unset")
