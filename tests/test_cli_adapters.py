"""The command line's ``--adapter [NAME=]SOURCE`` (global, every command that loads a model)
and ``--text-overflow``, in-process with the tiny checkpoint, against the library's vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagebind_sdk.cli import main

ADAPTER = Path(__file__).resolve().parent / "lora" / "data" / "adapter"  # ImageBind-LoRA files, postfix _golden
LONG = " ".join(["dog", "car", "red", "house"] * 50)  # 200 tokens
ATOL = 1e-5


@pytest.fixture(autouse=True)
def _tiny_default(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEBIND_CHECKPOINT", str(tiny_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def adapted(tiny_dir):
    from imagebind_sdk import ImageBind

    return ImageBind.load(tiny_dir, device="cpu", adapters=ADAPTER)


def test_adapter_before_or_after_the_command(tmp_path, adapted):
    adapted.set_adapter("golden")
    expected = adapted.embed(text=["a dog", "a car"]).text.numpy()
    before, after = tmp_path / "before.npy", tmp_path / "after.npy"
    assert main(["--adapter", f"golden={ADAPTER}", "embed", "--text", "a dog", "--text", "a car", "--out",
                 str(before)]) == 0
    assert main(["embed", "--text", "a dog", "--text", "a car", "--out", str(after), "--adapter", str(ADAPTER)]) == 0
    np.testing.assert_allclose(np.load(before), expected, atol=ATOL)
    np.testing.assert_allclose(np.load(after), expected, atol=ATOL)
    adapted.set_adapter(None)
    assert np.abs(np.load(before) - adapted.embed(text=["a dog", "a car"]).text.numpy()).max() > 1e-3


def test_adapter_that_does_not_exist_is_one_error_line(capsys, tmp_path):
    assert main(["--adapter", str(tmp_path / "missing"), "embed", "--text", "a dog"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "missing" in err[0] and "Traceback" not in err[0]


def test_text_overflow(tmp_path, capsys, adapted):
    adapted.set_adapter(None)
    out = tmp_path / "long.npy"
    assert main(["embed", "--text", "a dog", "--text", LONG, "--text-overflow", "chunk_mean", "--out", str(out)]) == 0
    expected = adapted.embed(text=["a dog", LONG], text_overflow="chunk_mean").text.numpy()
    np.testing.assert_allclose(np.load(out), expected, atol=ATOL)
    capsys.readouterr()
    assert main(["embed", "--text", "a dog", "--text", LONG, "--text-overflow", "error"]) == 1
    err = capsys.readouterr().err
    assert "text[1]: 200 tokens" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as usage:  # argparse: a usage error
        main(["embed", "--text", LONG, "--text-overflow", "mean"])
    assert usage.value.code == 2 and "invalid choice: 'mean'" in capsys.readouterr().err
