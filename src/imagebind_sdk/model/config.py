"""ImageBindConfig: the keyword arguments of the reference ``ImageBindModel``.

Field names and defaults are exactly the reference constructor's, so a reference
config (e.g. the Hub's ``config.json``) loads unchanged. Drop-path rates are kept
for fidelity but unused: this SDK is inference-only.

Every field is checked before anything is built (:func:`config_problems`): integer
sizes lie in documented bounds far above the released model (embed dims <=
:data:`MAX_WIDTH` = 8192, blocks <= :data:`MAX_BLOCKS` = 256, heads <= :data:`MAX_HEADS`
= 256, ``video_frames`` <= 64; imagebind_huge has 1280, 32, 16 and 2), heads divide
their embed dim and kernels fit their inputs. A bad field raises :class:`ConfigError`
naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import json
import logging
import os
import stat
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

logger = logging.getLogger(__name__)

MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")
# Input geometry of the released models: the one place these sizes are defined. The
# stems, the preprocessors, the tokenizer, the input checks and the ONNX export read them here.
IMAGE_SIZE = 224  # side of the square vision/depth/thermal model inputs
TEXT_CONTEXT_LENGTH = 77  # token positions of a text input (CLIP's context)
TEXT_VOCAB_SIZE = 49408  # CLIP BPE vocabulary
AUDIO_MEL_BINS = 128  # mel bins of one audio clip (default of ImageBindConfig.audio_num_mel_bins)
AUDIO_FRAMES = 204  # filterbank frames of one audio clip (default of ImageBindConfig.audio_target_len)
IMU_CHANNELS = 6  # accelerometer + gyroscope, three axes each
IMU_LENGTH = 2000  # samples per IMU model input (10 s at 200 Hz)
# Documented upper bounds of config fields: far above any released model, low enough
# that a typo ("vision_num_blocks": 10000000) is refused instead of building for minutes.
MAX_WIDTH = 8192
MAX_BLOCKS = 256
MAX_HEADS = 256
MAX_FRAMES = 64
MAX_MEL_BINS = 1024
MAX_AUDIO_LEN = 4096
DROP_PATH_FIELDS = ("audio_drop_path", "depth_drop_path", "thermal_drop_path", "imu_drop_path")
# Initial (and, but for text, fixed) logit scales of the reference postprocessors;
# vision has none (a constant 1, not stored in checkpoints).
LOGIT_SCALE_INIT = {"vision": None, "text": 1 / 0.07, "audio": 20.0, "depth": 5.0, "thermal": 10.0, "imu": 5.0}


class ConfigError(ValueError):
    """A config (``config.json`` or ImageBindConfig arguments) cannot describe a model."""


def _int_bounds() -> dict[str, tuple[int, int]]:
    bounds = {
        "out_embed_dim": (1, MAX_WIDTH), "video_frames": (1, MAX_FRAMES), "audio_num_mel_bins": (1, MAX_MEL_BINS),
        "audio_target_len": (1, MAX_AUDIO_LEN), "audio_kernel_size": (1, MAX_AUDIO_LEN),
        "audio_stride": (1, MAX_AUDIO_LEN), "depth_kernel_size": (1, IMAGE_SIZE),
        "thermal_kernel_size": (1, IMAGE_SIZE), "imu_kernel_size": (1, IMU_LENGTH),
    }
    for m in MODALITIES:
        bounds.update({f"{m}_embed_dim": (1, MAX_WIDTH), f"{m}_num_blocks": (1, MAX_BLOCKS),
                       f"{m}_num_heads": (1, MAX_HEADS)})
    return bounds


INT_BOUNDS = _int_bounds()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kernel_problems(kernel: Any, frames: Any) -> list[str]:
    """kernel_size: three positive ints (T, H, W), T <= video_frames, H and W <= the image side."""
    if not isinstance(kernel, (list, tuple)) or len(kernel) != 3 or not all(_is_int(k) and k > 0 for k in kernel):
        return [f"field 'kernel_size' must be 3 positive integers (T, H, W), got {kernel!r}"]
    problems = []
    if _is_int(frames) and kernel[0] > frames:
        problems.append(f"field 'kernel_size' T={kernel[0]} exceeds 'video_frames' ({frames})")
    if max(kernel[1:]) > IMAGE_SIZE:
        problems.append(f"field 'kernel_size' H, W must be <= {IMAGE_SIZE}, got {list(kernel[1:])}")
    return problems


def config_problems(values: Mapping[str, Any]) -> list[str]:
    """Every problem of a complete field -> value mapping, each naming its field; [] if usable."""
    problems = []
    for name, (low, high) in INT_BOUNDS.items():
        if not (_is_int(values[name]) and low <= values[name] <= high):
            problems.append(f"field {name!r} must be an integer in [{low}, {high}], got {values[name]!r}")
    for name in DROP_PATH_FIELDS:
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            problems.append(f"field {name!r} must be a number in [0, 1], got {value!r}")
    problems += _kernel_problems(values["kernel_size"], values["video_frames"])
    if problems:
        return problems  # the consistency checks below need numbers in range
    for m in MODALITIES:
        width, heads = values[f"{m}_embed_dim"], values[f"{m}_num_heads"]
        if width % heads:
            problems.append(f"field '{m}_num_heads' ({heads}) must divide '{m}_embed_dim' ({width})")
    mel, length = values["audio_num_mel_bins"], values["audio_target_len"]
    if values["audio_kernel_size"] > min(mel, length):
        problems.append(
            f"field 'audio_kernel_size' ({values['audio_kernel_size']}) must be <= 'audio_num_mel_bins' ({mel}) "
            f"and 'audio_target_len' ({length})"
        )
    return problems


def regular_file_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` cannot be read as a regular file, or None if it can.

    Opening a FIFO or a device blocks or reads forever, so only regular files are read.
    """
    try:
        mode = os.stat(path).st_mode  # follows symlinks
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symbolic link loop (the link resolves to itself)"
        return None  # missing, no permission: opening it gives the usual error
    if stat.S_ISREG(mode):
        return None
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    what = next((name for test, name in kinds if test(mode)), "a special file")
    return f"not a regular file ({what}); only regular files are read"


@dataclass(frozen=True)
class EncoderConfig:
    """What one modality's encoder needs, derived once from :class:`ImageBindConfig`.

    ``stem`` names the stem kind (``model.stems.STEMS``): "video_patches" (Conv3d
    over images/clips), "tokens" (text), "patches" (Conv2d over a one-channel map:
    audio, depth, thermal) or "imu_windows". ``kernel``/``stride``/``input_size``
    are that stem's sizes; ``frames`` is the clip length the vision stem expects.
    """

    modality: str
    width: int
    depth: int
    heads: int
    out_dim: int
    stem: str
    kernel: tuple[int, ...] = ()
    stride: tuple[int, ...] = ()
    input_size: tuple[int, ...] = ()
    frames: int = 1
    bias_kv: bool = False
    pre_norm: bool = False
    causal: bool = False
    logit_scale_init: float | None = None

# Overrides of the reference defaults that give the released imagebind_huge model.
PRESETS: dict[str, dict[str, Any]] = {
    "imagebind_huge": dict(
        vision_embed_dim=1280,
        vision_num_blocks=32,
        vision_num_heads=16,
        text_embed_dim=1024,
        text_num_blocks=24,
        text_num_heads=16,
        out_embed_dim=1024,
    ),
}


@dataclass(frozen=True)
class ImageBindConfig:
    video_frames: int = 2
    kernel_size: tuple[int, int, int] = (2, 14, 14)
    audio_kernel_size: int = 16
    audio_stride: int = 10
    out_embed_dim: int = 768
    vision_embed_dim: int = 1024
    vision_num_blocks: int = 24
    vision_num_heads: int = 16
    audio_embed_dim: int = 768
    audio_num_blocks: int = 12
    audio_num_heads: int = 12
    audio_num_mel_bins: int = AUDIO_MEL_BINS
    audio_target_len: int = AUDIO_FRAMES
    audio_drop_path: float = 0.1
    text_embed_dim: int = 768
    text_num_blocks: int = 12
    text_num_heads: int = 12
    depth_embed_dim: int = 384
    depth_kernel_size: int = 16
    depth_num_blocks: int = 12
    depth_num_heads: int = 8
    depth_drop_path: float = 0.0
    thermal_embed_dim: int = 768
    thermal_kernel_size: int = 16
    thermal_num_blocks: int = 12
    thermal_num_heads: int = 12
    thermal_drop_path: float = 0.0
    imu_embed_dim: int = 512
    imu_kernel_size: int = 8
    imu_num_blocks: int = 6
    imu_num_heads: int = 8
    imu_drop_path: float = 0.7

    def __post_init__(self) -> None:
        problems = config_problems({f.name: getattr(self, f.name) for f in dataclasses.fields(self)})
        if problems:
            raise ConfigError("; ".join(problems))
        # JSON has no tuples: accept a list for kernel_size.
        object.__setattr__(self, "kernel_size", tuple(self.kernel_size))

    @functools.cached_property
    def encoders(self) -> dict[str, EncoderConfig]:
        """Modality -> its :class:`EncoderConfig`, in ``MODALITIES`` order (derived once)."""
        c, out = self, self.out_embed_dim
        image = (IMAGE_SIZE, IMAGE_SIZE)

        def patches(m: str, width: int, depth: int, heads: int, kernel: int, stride: int, size: tuple) -> EncoderConfig:
            return EncoderConfig(m, width, depth, heads, out, "patches", (kernel, kernel), (stride, stride), size,
                                 bias_kv=True, logit_scale_init=LOGIT_SCALE_INIT[m])

        # One explicit row per modality (field names are the reference's keyword arguments).
        encoders = [
            EncoderConfig("vision", c.vision_embed_dim, c.vision_num_blocks, c.vision_num_heads, out, "video_patches",
                          c.kernel_size, c.kernel_size, image, frames=c.video_frames, pre_norm=True),
            EncoderConfig("text", c.text_embed_dim, c.text_num_blocks, c.text_num_heads, out, "tokens", causal=True,
                          logit_scale_init=LOGIT_SCALE_INIT["text"]),
            patches("audio", c.audio_embed_dim, c.audio_num_blocks, c.audio_num_heads, c.audio_kernel_size,
                    c.audio_stride, (c.audio_num_mel_bins, c.audio_target_len)),
            patches("depth", c.depth_embed_dim, c.depth_num_blocks, c.depth_num_heads, c.depth_kernel_size,
                    c.depth_kernel_size, image),
            patches("thermal", c.thermal_embed_dim, c.thermal_num_blocks, c.thermal_num_heads, c.thermal_kernel_size,
                    c.thermal_kernel_size, image),
            EncoderConfig("imu", c.imu_embed_dim, c.imu_num_blocks, c.imu_num_heads, out, "imu_windows",
                          (c.imu_kernel_size,), (c.imu_kernel_size,), bias_kv=True,
                          logit_scale_init=LOGIT_SCALE_INIT["imu"]),
        ]
        return {e.modality: e for e in encoders}

    def encoder(self, modality: str) -> EncoderConfig:
        """The :class:`EncoderConfig` of one modality."""
        if modality not in MODALITIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {list(MODALITIES)}")
        return self.encoders[modality]

    def embed_dim(self, modality: str) -> int:
        return self.encoder(modality).width

    def num_blocks(self, modality: str) -> int:
        return self.encoder(modality).depth

    def num_heads(self, modality: str) -> int:
        return self.encoder(modality).heads

    @classmethod
    def preset(cls, name: str) -> "ImageBindConfig":
        """A named preset, e.g. ``ImageBindConfig.preset("imagebind_huge")``."""
        key = name.replace("-", "_")
        if key not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; known: {sorted(PRESETS)}")
        return cls(**PRESETS[key])

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "ImageBindConfig":
        """Build from a mapping; unknown keys (Hub bookkeeping) are ignored with a warning."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in values if k not in names)
        if unknown:
            logger.warning("ignoring unknown ImageBind config keys: %s", ", ".join(unknown))
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> "ImageBindConfig":
        """Read and check a config file; ConfigError naming the file (and field) if unusable."""
        problem = regular_file_problem(path)
        if problem:
            raise ConfigError(f"{path}: {problem}")
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc})") from None
        except RecursionError:  # e.g. 100,000 nested brackets: no config nests at all
            raise ConfigError(f"{path}: not a config (JSON nested too deeply)") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a JSON object, got {type(values).__name__}")
        try:
            return cls.from_dict(values)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["kernel_size"] = list(self.kernel_size)
        return out

    def to_json(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")


def check_modalities(modalities: Iterable[str] | str | None) -> tuple[str, ...]:
    """The requested modalities in canonical order (None: all six); unknown or none is an error."""
    wanted = MODALITIES if modalities is None else ([modalities] if isinstance(modalities, str) else list(modalities))
    unknown = [m for m in wanted if m not in MODALITIES]
    if unknown or not wanted:
        raise ValueError(f"unknown modalities {unknown}; choose from {list(MODALITIES)}")
    return tuple(m for m in MODALITIES if m in wanted)
