"""Options, checkpoints (config.json, weights, special files, malicious pickles), index folders, bulk."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import corpus_builders as B
from corpus_framework import Case, Ctx, Violation

GOOD = {"vision": np.zeros((20, 20, 3), np.uint8), "depth": np.ones((20, 20), np.float32),
        "thermal": np.zeros((20, 20), np.float32), "imu": np.zeros((6, 100), np.float32),
        "video": np.zeros((8, 16, 16, 3), np.uint8), "audio": (np.zeros(16000, np.float32), 16000)}


def _option(kind: str, label: str, options: dict, names: tuple[str, ...], on_error: str = "raise") -> Case:
    def run(ctx: Ctx) -> Any:
        item = [GOOD[kind]] if kind == "imu" or kind == "audio" else [GOOD[kind]]
        return ctx.embed(**{kind: item}, preprocess={kind: options}, on_error=on_error)

    suffix = "-skip" if on_error == "skip" else ""
    return Case(f"options/{kind}-{label}{suffix}", "options", "refuse", run, names=names)


OPTION_CASES: list[tuple[str, str, dict, tuple[str, ...]]] = [
    ("vision", "unknown-name", {"resize": 3}, ("resize", "exif_transpose")),
    ("vision", "exif-not-bool", {"exif_transpose": "yes"}, ("exif_transpose",)),
    ("depth", "mode-metric", {"mode": "metric"}, ("mode",)),
    ("depth", "scale-zero", {"depth_scale": 0}, ("depth_scale",)),
    ("depth", "scale-nan", {"depth_scale": float("nan")}, ("depth_scale",)),
    ("depth", "baseline-string", {"baseline": "0.075"}, ("baseline",)),
    ("depth", "focal-bool", {"focal_length": True}, ("focal_length",)),
    ("thermal", "normalize-string", {"normalize": "yes"}, ("normalize",)),
    ("imu", "rate-zero", {"sample_rate": 0}, ("sample_rate",)),
    ("imu", "rate-negative", {"sample_rate": -200}, ("sample_rate",)),
    ("imu", "rate-3.2e-4", {"sample_rate": 3.2e-4}, ("sample_rate",)),
    ("imu", "rate-1e-9", {"sample_rate": 1e-9}, ("sample_rate",)),
    ("imu", "rate-inf", {"sample_rate": float("inf")}, ("sample_rate",)),
    ("imu", "target-1e12", {"sample_rate": 200, "target_rate": 1e12}, ("rate",)),
    ("imu", "crop-middle", {"crop": "middle"}, ("crop",)),
    ("video", "fps-zero", {"fps": 0}, ("fps",)),
    ("video", "fps-nan", {"fps": float("nan")}, ("fps",)),
    ("video", "fps-1e300", {"fps": 1e300}, ("fps",)),
    ("audio", "unknown-name", {"sample_rate": 16000}, ("sample_rate",)),
]


def option_cases() -> list[Case]:
    cases = [_option(*spec) for spec in OPTION_CASES]
    cases += [_option(*spec, on_error="skip") for spec in OPTION_CASES[2:3] + OPTION_CASES[7:8]]
    cases.append(Case("options/imu-rate-3.2e-4-skip-lists-item", "options", "ok", _imu_limit_skipped, rows=0))
    cases += [
        Case("options/unknown-kind", "options", "refuse",
             lambda c: c.embed(vision=[GOOD["vision"]], preprocess={"image": {}}), names=("image",)),
        Case("options/on-error-ignore", "options", "refuse",
             lambda c: c.embed(vision=[GOOD["vision"]], on_error="ignore"), names=("on_error",)),
        Case("options/batch-size-zero", "options", "refuse",
             lambda c: c.embed(vision=[GOOD["vision"]], batch_size=0), names=("batch_size",)),
        Case("options/nothing", "options", "refuse", lambda c: c.embed(), names=("vision",)),
    ]
    return cases


def _imu_limit_skipped(ctx: Ctx) -> Any:
    """A resampling limit hit by one item's length is that item's error: skipped and listed (issue 9 A.2)."""
    out = ctx.embed(imu=[GOOD["imu"]], preprocess={"imu": {"sample_rate": 3.2e-4}}, on_error="skip")
    if [s.index for s in out.skipped.get("imu", [])] != [0]:
        raise Violation(f"imu[0] over the resampling limit not listed as skipped: {out.skipped!r}")
    return out


# -- checkpoints ------------------------------------------------------------------------

def _copy_tiny(ctx: Ctx, name: str) -> Path:
    """config.json + model.safetensors only (tiny/ also holds model.pth, which loading would fall back to)."""
    target = ctx.tmp / name
    target.mkdir()
    for file in ("config.json", "model.safetensors"):
        shutil.copy(ctx.tiny / file, target / file)
    return target


def _load_and_embed(directory: Path) -> Any:
    from imagebind_sdk import ImageBind

    model = ImageBind.load(str(directory), modalities=["text", "vision"], device="cpu")
    return model.embed(text=["a dog"], vision=[GOOD["vision"]])


def _config_case(label: str, edit: Callable[[dict], Any], names: tuple[str, ...], expect: str = "refuse",
                 timeout: float = 15.0) -> Case:
    def run(ctx: Ctx) -> Any:
        directory = _copy_tiny(ctx, f"cfg_{label}")
        config = json.loads((directory / "config.json").read_text())
        new = edit(config)
        text = new if isinstance(new, str) else json.dumps(config if new is None else new)
        (directory / "config.json").write_text(text)
        return _load_and_embed(directory)

    return Case(f"checkpoint/config-{label}", "checkpoint", expect, run, names=names, timeout=timeout)


def _set(field: str, value: Any) -> Callable[[dict], None]:
    return lambda config: config.__setitem__(field, value)


CONFIG_CASES: list[tuple[str, Callable[[dict], Any], tuple[str, ...]]] = [
    ("garbage-json", lambda c: "{not json", ("config.json",)),
    ("empty", lambda c: "", ("config.json",)),
    ("list", lambda c: [1, 2], ("config.json",)),
    ("deep-json", lambda c: B.deep_json(100_000), ("config.json",)),
    ("num-blocks-1e7", _set("vision_num_blocks", 10_000_000), ("config.json", "vision_num_blocks")),
    ("num-blocks-negative", _set("vision_num_blocks", -1), ("config.json", "vision_num_blocks")),
    ("embed-dim-1e9", _set("vision_embed_dim", 1_000_000_000), ("config.json", "vision_embed_dim")),
    ("kernel-zero", _set("kernel_size", [0, 0, 0]), ("config.json", "kernel_size")),
    ("kernel-string", _set("kernel_size", "2,14,14"), ("config.json", "kernel_size")),
    ("out-dim-string", _set("out_embed_dim", "32"), ("config.json", "out_embed_dim")),
    ("out-dim-null", _set("out_embed_dim", None), ("config.json", "out_embed_dim")),
    ("out-dim-float", _set("out_embed_dim", 32.5), ("config.json", "out_embed_dim")),
    ("heads-not-dividing", _set("vision_num_heads", 5), ("config.json", "vision_num_heads")),
    ("heads-zero", _set("vision_num_heads", 0), ("config.json", "vision_num_heads")),
    ("unknown-field", _set("vision_wibble", 3), ("config.json", "vision_wibble"), "either"),
    ("bool-blocks", _set("text_num_blocks", True), ("config.json", "text_num_blocks")),
]


def _weights_case(label: str, edit: Callable[[dict], dict], names: tuple[str, ...], expect: str = "refuse") -> Case:
    def run(ctx: Ctx) -> Any:
        from safetensors.torch import load_file, save_file

        directory = _copy_tiny(ctx, f"w_{label}")
        path = directory / "model.safetensors"
        save_file(edit(load_file(str(path))), str(path))
        return _load_and_embed(directory)

    return Case(f"checkpoint/weights-{label}", "checkpoint", expect, run, names=names, rows=1)


def _first_key(state: dict, part: str) -> str:
    return sorted(k for k in state if part in k and state[k].is_floating_point())[0]


def _edit_first(part: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> Callable[[dict], dict]:
    def edit(state: dict) -> dict:
        key = _first_key(state, part)
        state[key] = fn(state[key])
        return state

    return edit


def _poke_nan(t: torch.Tensor) -> torch.Tensor:
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


def _drop_first(part: str) -> Callable[[dict], dict]:
    def edit(state: dict) -> dict:
        del state[_first_key(state, part)]
        return state

    return edit


def _float64_same(ctx: Ctx) -> Any:
    return _weights_case("float64", lambda s: {k: v.double() for k, v in s.items()}, ()).run(ctx)


def weights_cases() -> list[Case]:
    return [
        _weights_case("nan-vision", _edit_first("vision", _poke_nan), ("vision",)),
        _weights_case("inf-text", _edit_first("text", lambda t: torch.full_like(t, float("inf"))), ("text",)),
        _weights_case("int-tensor", _edit_first("vision", lambda t: t.to(torch.int32)), ("vision",)),
        _weights_case("bool-tensor", _edit_first("text", lambda t: t > 0), ("text",)),
        _weights_case("missing-key", _drop_first("vision"), ("vision",)),
        _weights_case("extra-key", lambda s: {**s, "vision.bogus.weight": torch.zeros(3)}, ("bogus",)),
        _weights_case("wrong-shape", _edit_first("vision", lambda t: torch.zeros(t.numel() + 1)), ("vision",)),
        Case("checkpoint/weights-float64-same-as-float32", "checkpoint", "ok",
             lambda c: _float64_same(c).vision, reference=lambda c: c.model.embed(vision=[GOOD["vision"]]).vision),
        _weights_case("float16", lambda s: {k: v.half() for k, v in s.items()}, (), expect="ok"),
    ]


def _file_case(label: str, prepare: Callable[[Path], None], names: tuple[str, ...] = ("model.safetensors",),
               timeout: float = 20.0) -> Case:
    def run(ctx: Ctx) -> Any:
        directory = _copy_tiny(ctx, f"f_{label}")
        prepare(directory)
        return _load_and_embed(directory)

    return Case(f"checkpoint/file-{label}", "checkpoint", "refuse", run, names=names, timeout=timeout)


def _replace(directory: Path, make: Callable[[Path], None], name: str = "model.safetensors") -> None:
    (directory / name).unlink()
    make(directory / name)


def _cut(directory: Path, keep: float) -> None:
    path = directory / "model.safetensors"
    path.write_bytes(B.truncated(path.read_bytes(), keep))


class _Marker:
    """Unpickling this touches a marker file: it must never run."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.path,))


def _malicious_pth(ctx: Ctx) -> Any:
    directory = ctx.tmp / "evil"
    directory.mkdir()
    shutil.copy(ctx.tiny / "config.json", directory / "config.json")
    marker = ctx.tmp / "PWNED"
    with open(directory / "model.pth", "wb") as f:
        pickle.dump({"vision.x": _Marker(marker)}, f)
    try:
        return _load_and_embed(directory)
    finally:
        if marker.exists():
            raise Violation("a malicious .pth ran code while loading (marker file created)")


def _pth_only(ctx: Ctx) -> Any:
    directory = ctx.tmp / "pth_only"
    directory.mkdir()
    for file in ("config.json", "model.pth"):
        shutil.copy(ctx.tiny / file, directory / file)
    return _load_and_embed(directory).vision


def checkpoint_file_cases() -> list[Case]:
    return [
        _file_case("truncated-half", lambda d: _cut(d, 0.5)),
        _file_case("truncated-header", lambda d: _cut(d, 0.0001)),
        _file_case("empty", lambda d: (d / "model.safetensors").write_bytes(b"")),
        _file_case("random", lambda d: (d / "model.safetensors").write_bytes(B.random_bytes(100_000))),
        _file_case("header-claims-1e18", lambda d: (d / "model.safetensors").write_bytes(
            (10**18).to_bytes(8, "little") + b"{}")),
        _file_case("fifo", lambda d: _replace(d, lambda p: os.mkfifo(p))),
        _file_case("symlink-loop", lambda d: _replace(d, lambda p: (os.symlink(p.with_name("b"), p),
                                                                 os.symlink(p, p.with_name("b"))))),
        _file_case("directory", lambda d: _replace(d, lambda p: p.mkdir())),
        _file_case("dev-zero", lambda d: _replace(d, lambda p: os.symlink("/dev/zero", p))),
        _file_case("config-fifo", lambda d: _replace(d, lambda p: os.mkfifo(p), "config.json"), ("config.json",)),
        _file_case("missing-weights", lambda d: (d / "model.safetensors").unlink(), ()),
        Case("checkpoint/pth-malicious-pickle", "checkpoint", "refuse", _malicious_pth, names=("model.pth",)),
        Case("checkpoint/pth-only-same-as-safetensors", "checkpoint", "ok", _pth_only,
             reference=lambda c: c.model.embed(vision=[GOOD["vision"]]).vision),
        Case("checkpoint/missing-dir", "checkpoint", "refuse",
             lambda c: _load_and_embed(c.tmp / "no_such_ckpt"), names=("no_such_ckpt",)),
    ]


def checkpoint_cases() -> list[Case]:
    configs = [_config_case(*spec) for spec in CONFIG_CASES]
    return configs + weights_cases() + checkpoint_file_cases()


# -- index folders and bulk -------------------------------------------------------------

def _index_case(label: str, write: Callable[[Path, dict], None], names: tuple[str, ...] = ("idx_",)) -> Case:
    def run(ctx: Ctx) -> Any:
        from imagebind_sdk import EmbeddingIndex

        directory = ctx.tmp / f"idx_{label}"
        index = EmbeddingIndex(dim=4)
        index.add(torch.nn.functional.normalize(torch.ones(2, 4), dim=-1), ids=["a", "b"])
        index.save(directory)
        info = json.loads((directory / "index.json").read_text())
        write(directory, info)
        EmbeddingIndex.load(directory).search(torch.ones(4), k=1)
        return None

    return Case(f"index/{label}", "index", "refuse", run, names=names)


def _dump(fn: Callable[[dict], Any]) -> Callable[[Path, dict], None]:
    def write(directory: Path, info: dict) -> None:
        value = fn(info)
        text = value if isinstance(value, str) else json.dumps(info if value is None else value)
        (directory / "index.json").write_text(text)

    return write


def index_cases() -> list[Case]:
    return [
        _index_case("deep-json", _dump(lambda i: '{"ids": ' + B.deep_json(100_000) + "}")),
        _index_case("garbage-json", _dump(lambda i: "{oops")),
        _index_case("ids-not-list", _dump(lambda i: i.__setitem__("ids", 5)), ("idx_", "ids")),
        _index_case("ids-too-few", _dump(lambda i: i.__setitem__("ids", ["a"]))),
        _index_case("metadata-strings", _dump(lambda i: i.__setitem__("metadata", ["x", "y"])),
                    ("idx_", "metadata")),
        _index_case("dim-string", _dump(lambda i: i.__setitem__("dim", "4")), ("idx_", "dim")),
        _index_case("embeddings-garbage", lambda d, i: (d / "embeddings.safetensors").write_bytes(b"xx"),
                    ("embeddings.safetensors",)),
        _index_case("duplicate-ids", _dump(lambda i: i.__setitem__("ids", ["a", "a"])), ("idx_", "a")),
    ]


def _bulk_bad_files(ctx: Ctx) -> Any:
    """Bad files in a folder are reported in ``failed`` (one line each, naming the file), not fatal."""
    folder = ctx.tmp / "bulk"
    folder.mkdir()
    (folder / "good.png").write_bytes(B.image_bytes("PNG"))
    (folder / "bad.jpg").write_bytes(B.random_bytes())
    (folder / "bomb.png").write_bytes(B.png_bomb())
    (folder / "empty.wav").write_bytes(b"")
    result = ctx.model.embed_files(str(folder))
    failed = {Path(path).name: error for path, error in result.failed}
    if sorted(failed) != ["bad.jpg", "bomb.png", "empty.wav"]:
        raise Violation(f"failed lists {sorted(failed)}, expected bad.jpg, bomb.png, empty.wav")
    multi = [name for name, error in failed.items() if "\n" in error.strip()]
    if multi:
        raise Violation(f"multi-line failure messages for {multi}")
    return result.embeddings.vision


def cases() -> list[Case]:
    return option_cases() + checkpoint_cases() + index_cases() + [Case("bulk/bad-files-listed", "bulk", "ok", _bulk_bad_files)]
