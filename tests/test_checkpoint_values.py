"""Issue 9 (A.1, B.9): what a checkpoint's tensors and files may be.

Weights are float and finite (checked per tensor as it is read), all of one dtype
after loading, and only regular files are opened (a FIFO would block forever).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file, save_file

from conftest import assert_matches_reference
from imagebind_sdk import CheckpointError, ImageBind

TEXT_KEY = "modality_trunks.text.blocks.0.attn.in_proj_weight"
AUDIO_KEY = "modality_heads.audio.2.weight"


def _variant(tmp_path, tiny_dir, edit, pth: bool = False):
    state = load_file(str(tiny_dir / "model.safetensors"))
    edit(state)
    shutil.copy(tiny_dir / "config.json", tmp_path / "config.json")
    if pth:
        torch.save(state, tmp_path / "model.pth")
    else:
        save_file(state, str(tmp_path / "model.safetensors"))
    return tmp_path


def _poison(key, value):
    def edit(state):
        state[key] = state[key].clone()
        state[key].view(-1)[3] = value
    return edit


@pytest.mark.parametrize("value, seen", [(float("nan"), r"1 NaN, 0 inf"), (float("inf"), r"0 NaN, 1 inf")])
@pytest.mark.parametrize("pth", [False, True])
def test_non_finite_weights_name_the_tensor(tmp_path, tiny_dir, golden_embeddings, value, seen, pth):
    """The scan runs in the background after load(); the first use of the encoder raises."""
    path = _variant(tmp_path, tiny_dir, _poison(TEXT_KEY, value), pth=pth)
    message = rf"tensor {TEXT_KEY} holds non-finite values \({seen} of \d+\)"
    model = ImageBind.load(path, device="cpu")
    for use in (lambda: model.embed(text=["a dog"]), lambda: model.encode("text", golden_embeddings["input/text"]),
                lambda: model.encoder("text"), model.check_weights):
        with pytest.raises(CheckpointError, match=message):  # every time: no NaN vector leaves
            use()
    assert model.encode("audio", golden_embeddings["input/audio"]).isfinite().all()  # audio's weights are fine
    ImageBind.load(path, modalities=["audio"], device="cpu").check_weights()  # only the tensors read are checked


def test_weight_scan_covers_every_loaded_tensor(tmp_path, tiny_dir):
    """A bad tensor of any loaded modality (here the last head) is found by check_weights()."""
    path = _variant(tmp_path, tiny_dir, _poison(AUDIO_KEY, float("nan")))
    model = ImageBind.load(path, device="cpu")
    with pytest.raises(CheckpointError, match=rf"tensor {AUDIO_KEY} holds non-finite values"):
        model.check_weights()
    assert model.embed(text=["a dog"]).text.isfinite().all()  # text's own weights are finite


def test_a_copied_model_keeps_the_scan(tmp_path, tiny_dir):
    """deepcopy/pickle of a model with a pending scan: the copy still refuses the bad encoder."""
    import copy

    path = _variant(tmp_path, tiny_dir, _poison(TEXT_KEY, float("nan")))
    model = ImageBind.load(path, modalities=["text", "audio"], device="cpu")
    twin = copy.deepcopy(model.model)
    with pytest.raises(CheckpointError, match=rf"tensor {TEXT_KEY} holds non-finite values"):
        twin.check_weights("text")
    twin.check_weights("audio")


@pytest.mark.parametrize("dtype", [torch.int64, torch.int8, torch.bool])
def test_integer_and_bool_weights_name_the_key(tmp_path, tiny_dir, dtype):
    path = _variant(tmp_path, tiny_dir, lambda s: s.update({AUDIO_KEY: s[AUDIO_KEY].to(dtype)}))
    with pytest.raises(CheckpointError, match=rf"tensor {AUDIO_KEY} has dtype {dtype}; weights must be floating point"):
        ImageBind.load(path, modalities=["audio"], device="cpu")


def _cast_all(dtype, every_other: bool = False):
    def edit(state):
        for i, key in enumerate(sorted(state)):
            if state[key].is_floating_point() and (not every_other or i % 2):
                state[key] = state[key].to(dtype)
    return edit


@pytest.mark.parametrize(
    "edit, load_dtype, model_dtype, exact",
    [
        (_cast_all(torch.float64), None, torch.float32, True),  # was: loads, then embed fails (dtype mismatch)
        (_cast_all(torch.float64), torch.bfloat16, torch.bfloat16, False),
        (_cast_all(torch.float16, every_other=True), torch.float32, torch.float32, False),  # mixed fp16/fp32
        (_cast_all(torch.float16, every_other=True), None, torch.float32, False),
    ],
)
def test_float_weights_are_cast_to_one_dtype(tmp_path, tiny_dir, golden_embeddings, edit, load_dtype, model_dtype,
                                             exact):
    path = _variant(tmp_path, tiny_dir, edit)
    model = ImageBind.load(path, modalities=["audio", "text"], device="cpu", dtype=load_dtype)
    assert model.dtype == model_dtype
    assert {p.dtype for p in model.model.parameters()} == {model_dtype}
    out = model.encode("text", golden_embeddings["input/text"])
    assert bool(torch.isfinite(out).all())
    if exact:  # float32 values survive the float64 round trip unchanged
        assert_matches_reference(out, golden_embeddings["output/text"])


def _special_files_script(tmp_path, tiny_dir) -> str:
    """Each case in the child: a FIFO weights file, a FIFO config, a symlink loop."""
    fifo_weights, fifo_config, loop = (tmp_path / n for n in ("fifo_weights", "fifo_config", "loop"))
    for d in (fifo_weights, fifo_config, loop):
        d.mkdir()
    shutil.copy(tiny_dir / "config.json", fifo_weights)
    os.mkfifo(fifo_weights / "model.safetensors")
    shutil.copy(tiny_dir / "model.safetensors", fifo_config)
    os.mkfifo(fifo_config / "config.json")
    shutil.copy(tiny_dir / "config.json", loop)
    (loop / "model.safetensors").symlink_to(loop / "model.safetensors")
    cases = [str(fifo_weights), str(fifo_weights / "model.safetensors"), str(fifo_config), str(loop)]
    return (
        "from imagebind_sdk import ImageBind\n"
        f"for case in {cases!r}:\n"
        "    try:\n        ImageBind.load(case, device='cpu')\n"
        "    except Exception as exc:\n        print(type(exc).__name__, exc)\n"
    )


def test_special_files_are_refused_not_opened(tmp_path, tiny_dir):
    code = _special_files_script(tmp_path, tiny_dir)
    # A child process with a timeout: before the fix, opening the FIFO blocked forever.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=90,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    lines = out.stdout.splitlines()
    assert len(lines) == 4, out.stdout + out.stderr
    fifo = "not a regular file (a FIFO); only regular files are read"
    assert lines[0] == f"CheckpointError {tmp_path / 'fifo_weights' / 'model.safetensors'}: {fifo}"
    assert lines[1] == lines[0]
    assert lines[2] == f"ConfigError {tmp_path / 'fifo_config' / 'config.json'}: {fifo}"
    assert lines[3] == f"CheckpointError {tmp_path / 'loop' / 'model.safetensors'}: symbolic link loop (the link resolves to itself)"
