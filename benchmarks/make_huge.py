"""Write a random-weight checkpoint with OFFICIAL key names: model.safetensors, model.pth
and config.json. Used for full-size benchmarks without downloading the real weights.

Memory: the safetensors file is streamed tensor by tensor (each tensor is generated
from a seed derived from its name, written, and dropped); the .pth is then written
from that file, so at most one copy of the weights is ever held (~4.8 GB for huge).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import struct
import time
import zlib
from pathlib import Path
import torch
from torch import nn

from imagebind_sdk import ImageBind
from imagebind_sdk.weights import keymap
from imagebind_sdk.model.config import MODALITIES, ImageBindConfig
from imagebind_sdk.model import ImageBindModel

logger = logging.getLogger(__name__)

INIT_STD = 0.02
LOG_LOGIT_SCALE = {
    "text": math.log(1 / 0.07),
    "audio": math.log(20.0),
    "depth": math.log(5.0),
    "thermal": math.log(10.0),
    "imu": math.log(5.0),
}
BYTES_PER_FLOAT = 4


def official_shapes(config: ImageBindConfig) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """Official key -> shape for every tensor of every modality, and the LayerNorm keys.

    The model is built on the meta device one modality at a time: no memory is used.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    norms: set[str] = set()
    for modality in MODALITIES:
        with torch.device("meta"):
            model = ImageBindModel(config, [modality])
        for name, tensor in model.state_dict().items():
            official = keymap.to_official(name)
            if official is None:
                raise RuntimeError(f"no official name for SDK key {name}")
            shapes[official] = tuple(tensor.shape)
        for module_name, module in model.named_modules():
            if isinstance(module, nn.LayerNorm):
                norms.update(keymap.to_official(f"{module_name}.{p}") or "" for p in ("weight", "bias"))
    shapes[keymap.TEXT_MASK_KEY] = tuple(keymap.causal_mask().shape)
    return shapes, norms


def make_tensor(key: str, shape: tuple[int, ...], norms: set[str]) -> torch.Tensor:
    """Deterministic random init: N(0, 0.02); LayerNorm weights 1 + N(0, 0.02)."""
    if key == keymap.TEXT_MASK_KEY:
        return keymap.causal_mask(shape[-1])
    if key.endswith("log_logit_scale"):
        return torch.tensor(LOG_LOGIT_SCALE[key.split(".")[1]], dtype=torch.float32)
    generator = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    tensor = torch.empty(shape, dtype=torch.float32).normal_(0.0, INIT_STD, generator=generator)
    if key in norms and key.endswith(".weight"):
        tensor += 1.0
    return tensor


def _header(shapes: dict[str, tuple[int, ...]]) -> bytes:
    entries: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for key, shape in shapes.items():
        size = math.prod(shape) * BYTES_PER_FLOAT
        entries[key] = {"dtype": "F32", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(entries, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)  # pad so the data starts 8-byte aligned


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], norms: set[str]) -> None:
    """Stream the tensors into a .safetensors file, one at a time."""
    header = _header(shapes)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for key, shape in shapes.items():
            tensor = make_tensor(key, shape, norms)
            f.write(tensor.contiguous().numpy().tobytes())
            del tensor


def write_pth(safetensors_path: Path, pth_path: Path) -> None:
    """The same state dict as a ``torch.save`` file (the official download's format)."""
    from safetensors.torch import load_file

    state = load_file(str(safetensors_path))
    torch.save(state, pth_path)
    del state


def verify(directory: Path) -> dict[str, float]:
    """Strict loads through the SDK: all modalities from safetensors, text from .pth."""
    timings = {}
    start = time.perf_counter()
    model = ImageBind.load(directory, device="cpu")
    timings["load_all_safetensors_s"] = time.perf_counter() - start
    out = model.embed(text=["a dog"]).text
    if not torch.isfinite(out).all():
        raise RuntimeError("non-finite text embedding from the random checkpoint")
    del model
    start = time.perf_counter()
    ImageBind.load(directory / "model.pth", modalities=["text"], device="cpu")
    timings["load_text_pth_s"] = time.perf_counter() - start
    return timings


def make_random_checkpoint(directory: Path, preset: str = "imagebind_huge") -> Path:
    """Write config.json, model.safetensors and model.pth under ``directory``."""
    config = ImageBindConfig.preset(preset)
    shapes, norms = official_shapes(config)
    need = 2 * sum(math.prod(s) * BYTES_PER_FLOAT for s in shapes.values())
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    if free < need * 1.05:
        raise OSError(f"{directory}: {free / 1e9:.1f} GB free, need {need / 1e9:.1f} GB for both formats")
    logger.info("writing %d tensors (%.2f GB per format) to %s", len(shapes), need / 2e9, directory)
    config.to_json(directory / "config.json")
    start = time.perf_counter()
    write_safetensors(directory / "model.safetensors", shapes, norms)
    logger.info("model.safetensors written in %.1f s", time.perf_counter() - start)
    start = time.perf_counter()
    write_pth(directory / "model.safetensors", directory / "model.pth")
    logger.info("model.pth written in %.1f s", time.perf_counter() - start)
    logger.info("verified strict loads: %s", verify(directory))
    return directory
