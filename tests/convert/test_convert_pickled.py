"""``imagebind-sdk convert`` of pickled fine-tunes: no code from the file ever runs.

The whole-module pickle (tests/convert/data/tiny_module.pt) was written by the reference
code itself (make_pickled_module.py): ``torch.save`` of its ImageBindModel with the tiny
golden weights. Converted, it must give the golden reference outputs.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import REPO, assert_matches_reference

MODULE = Path(__file__).resolve().parent / "data" / "tiny_module.pt"
MODALITIES = ("vision", "text", "audio", "depth", "thermal", "imu")


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([sys.executable, "-m", "imagebind_sdk", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_whole_pickled_module_converts_to_reference_vectors(tmp_path, golden_embeddings):
    from imagebind_sdk import ImageBind

    out = tmp_path / "converted"
    result = _cli("convert", str(MODULE), str(out))
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["vision_num_heads"] == 4 and config["imu_embed_dim"] == 36 and config["out_embed_dim"] == 32
    model = ImageBind.load(out, device="cpu")
    for m in MODALITIES:
        assert_matches_reference(model.encode(m, golden_embeddings[f"input/{m}"]), golden_embeddings[f"output/{m}"])


def test_state_dict_with_prefix_and_beside_config(tmp_path, tiny_dir, tiny_model, golden_embeddings):
    """A DataParallel-style state dict (``module.`` keys) with a config.json beside it."""
    from safetensors.torch import load_file

    from imagebind_sdk.weights.convert import convert_checkpoint

    state = {f"module.{k}": v for k, v in load_file(str(tiny_dir / "model.safetensors")).items()}
    folder = tmp_path / "ft"
    folder.mkdir()
    torch.save({"state_dict": state}, folder / "finetune.ckpt")
    with pytest.raises(ValueError, match="head counts"):  # no config anywhere: the file cannot say
        convert_checkpoint(folder / "finetune.ckpt", tmp_path / "out0")
    (folder / "config.json").write_text((tiny_dir / "config.json").read_text())
    convert_checkpoint(folder / "finetune.ckpt", tmp_path / "out1")
    from imagebind_sdk import ImageBind

    model = ImageBind.load(tmp_path / "out1", device="cpu", modalities=["audio"])
    assert torch.equal(model.encode("audio", golden_embeddings["input/audio"]),
                       tiny_model.encode("audio", golden_embeddings["input/audio"]))


class _System:
    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


class _Exec:
    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):
        import builtins

        return (builtins.exec, (self.code,))


def _prefix_trick(marker: Path) -> bytes:
    """Protocol 4 STACK_GLOBAL ('torch.serialization', 'os.system'): os reached through an
    allowed-looking module's attribute (plain pickle resolves the dotted name and runs it)."""

    def text(value: str) -> bytes:
        return b"\x8c" + bytes([len(value)]) + value.encode()

    return b"\x80\x04" + text("torch.serialization") + text("os.system") + b"\x93" + text(f"touch {marker}") + b"\x85R."


def _inst_pickle(marker: Path) -> bytes:
    """Protocol 0: INST os system with one argument."""
    return f"(S'touch {marker}'\nios\nsystem\n.".encode()


@pytest.mark.parametrize("kind", ["reduce_system", "reduce_exec", "inst", "prefix_trick", "zip_reduce"])
def test_malicious_pickles_are_refused_and_have_no_effect(tmp_path, kind):
    from imagebind_sdk.weights.convert import convert_checkpoint

    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    if kind == "reduce_system":
        path.write_bytes(pickle.dumps({"w": _System(f"touch {marker}")}, protocol=2))
        refused = "posix.system"
    elif kind == "reduce_exec":
        path.write_bytes(pickle.dumps({"w": _Exec(f"open({str(marker)!r}, 'w')")}, protocol=4))
        refused = "builtins.exec"
    elif kind == "inst":
        path.write_bytes(_inst_pickle(marker))
        refused = "os.system"
    elif kind == "prefix_trick":
        path.write_bytes(_prefix_trick(marker))
        refused = "torch.serialization.os.system"
    else:  # inside a real torch.save archive
        torch.save({"w": _System(f"touch {marker}")}, path)
        refused = "posix.system"
    with pytest.raises(ValueError, match=f"refused global {refused}"):
        convert_checkpoint(path, tmp_path / "out")
    assert not marker.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_cli_names_the_refused_global_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save(_System(f"touch {marker}"), path)
    result = _cli("convert", str(path), str(tmp_path / "out"))
    assert result.returncode == 1
    assert "refused global posix.system" in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    assert not marker.exists()


def test_archive_with_out_of_bounds_tensor_is_refused(tmp_path):
    """A crafted size that reaches past its storage is refused before any view is made."""
    path = tmp_path / "big.pt"
    torch.save({"w": torch.zeros(4)}, path)
    with zipfile.ZipFile(path) as src:
        items = {n: src.read(n) for n in src.namelist()}
    pkl = next(n for n in items if n.endswith("data.pkl"))
    items[pkl] = items[pkl].replace(b"K\x04\x85", b"J\x00\x00\x00\x10\x85")  # size (4,) -> (2**28,)
    bad = tmp_path / "bad.pt"
    with zipfile.ZipFile(bad, "w") as dst:
        for n, data in items.items():
            dst.writestr(n, data)
    from imagebind_sdk.weights.safe_pickle import UnsafePickleError, safe_load

    with pytest.raises(UnsafePickleError, match="reaches past its storage"):
        safe_load(bad)
