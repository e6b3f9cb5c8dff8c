"""The ``imagebind-sdk`` command line, run for real with the tiny golden checkpoint.

Subprocess tests run the command line in a process of its own: the ``imagebind-sdk``
script next to the interpreter, or ``main()`` in a child forked from one interpreter that
imported torch once (tests/cli_forks.py); the rest call ``imagebind_sdk.cli.main([...])``
in-process, which is the same code without the ~4 s interpreter start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from imagebind_sdk.cli import main

COMMANDS = ("embed", "similarity", "classify", "index", "search", "convert", "info", "download")
ATOL = 1e-5


@pytest.fixture(scope="module")
def cli_env(cli_forks) -> dict[str, str]:
    """The commands' environment (tiny checkpoint, offline); run_cli forks them from ``cli_forks``."""
    run_cli.forks = cli_forks
    return dict(cli_forks.env)


@pytest.fixture(autouse=True)
def _tiny_default(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process calls use the tiny checkpoint too, and never the network."""
    monkeypatch.setenv("IMAGEBIND_CHECKPOINT", str(tiny_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def run_cli(env: dict[str, str], *args: str, script: bool = False) -> subprocess.CompletedProcess:
    """Run the real command line in a process of its own: the console script itself with ``script``,
    else forked from the pre-imported server (tests/cli_forks.py; a fresh interpreter where needed)."""
    if not script:
        return run_cli.forks.run(list(map(str, args)), env)
    exe = Path(sys.executable).with_name("imagebind-sdk")
    return subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, env=env, timeout=300)


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("imagebind-sdk"), stderr
    assert "Traceback" not in stderr
    return lines[0]


def images(assets: Path) -> list[str]:
    return [str(assets / f"{n}_image.jpg") for n in ("bird", "car", "dog")]  # glob order


def sounds(assets: Path) -> list[str]:
    return [str(assets / f"{n}_audio.wav") for n in ("dog", "car", "bird")]


# -- help and usage ----------------------------------------------------------------
def test_help_lists_every_command(cli_env):
    exe = Path(sys.executable).with_name("imagebind-sdk")
    res = run_cli(cli_env, "--help", script=exe.exists())
    assert res.returncode == 0, res.stderr
    for command in COMMANDS:
        assert f"    {command}" in res.stdout
    assert "IMAGEBIND_CHECKPOINT" in res.stdout


def test_bad_usage_exits_2(cli_env):
    res = run_cli(cli_env, "classify", "--audio", "x.wav")  # --labels is required
    assert res.returncode == 2
    assert "--labels" in res.stderr and "Traceback" not in res.stderr


def test_usage_errors_in_process(capsys, assets_dir):
    with pytest.raises(SystemExit) as exc:
        main(["frobnicate"])
    assert exc.value.code == 2
    assert main(["embed"]) == 2  # nothing to embed
    assert main(["embed", "--text", "a", "--image", str(assets_dir / "dog_image.jpg"), "--out", "x.npy"]) == 2
    assert main(["embed", "--text", "a", "--out", "x.txt"]) == 2
    assert main(["similarity", "--text", "a", "--a-text", "b", "--b-text", "c"]) == 2
    err = capsys.readouterr().err
    assert "imagebind-sdk embed: error: nothing to embed" in err
    assert ".npy holds one modality" in err


# -- embed -----------------------------------------------------------------------------
def test_embed_npy_from_glob(cli_env, tmp_path, assets_dir, tiny_model):
    out = tmp_path / "images.npy"
    res = run_cli(cli_env, "embed", "--image", f"{assets_dir}/*_image.jpg", "--out", out)
    assert res.returncode == 0, res.stderr
    assert "wrote 3 embeddings" in res.stderr
    expected = tiny_model.embed(vision=images(assets_dir)).vision.numpy()
    np.testing.assert_allclose(np.load(out), expected, atol=ATOL)


def test_embed_quantized_int8(cli_env, tmp_path, assets_dir, tiny_model):
    out = tmp_path / "images.npy"
    res = run_cli(cli_env, "--quantize", "int8", "--device", "cpu", "embed", "--image", *images(assets_dir), "--out", out)
    assert res.returncode == 0, res.stderr
    cos = (np.load(out) * tiny_model.embed(vision=images(assets_dir)).vision.numpy()).sum(-1)
    assert cos.min() >= 0.99  # int8 vs float32
    bad = run_cli(cli_env, "--quantize", "int8", "--dtype", "bf16", "embed", "--text", "a dog")
    assert bad.returncode == 1 and "needs float32" in one_error_line(bad.stderr)


def test_embed_safetensors_with_options_after_command(cli_env, tmp_path, assets_dir, tiny_dir, tiny_model):
    from imagebind_sdk import Embeddings

    out = tmp_path / "sub" / "emb.safetensors"
    args = ["embed", "--audio", *sounds(assets_dir)[:2], "--text", "A dog.", "--text", "A car",
            "--out", out, "--checkpoint", tiny_dir, "--offline", "--device", "cpu", "--batch-size", "1"]
    res = run_cli({**cli_env, "IMAGEBIND_CHECKPOINT": "no/such-repo"}, *args)
    assert res.returncode == 0, res.stderr
    got = Embeddings.load(out)
    assert got.modalities == ["audio", "text"]  # command-line order
    expected = tiny_model.embed(audio=sounds(assets_dir)[:2], text=["A dog.", "A car"])
    assert got.sources["audio"] == sounds(assets_dir)[:2]
    assert got.sources["text"] == ["A dog.", "A car"]
    for kind in ("audio", "text"):
        torch.testing.assert_close(got[kind], expected[kind], atol=ATOL, rtol=0)


def test_embed_jsonl_and_stdout(capsys, tmp_path, assets_dir, tiny_model):
    paths = [str(assets_dir / "depth" / "010002.jpg"), str(assets_dir / "imu" / "imu1_2k.csv")]
    args = ["embed", "--depth", paths[0], "--imu", paths[1], "--text", "a room"]
    assert main([*args, "--out", str(tmp_path / "e.jsonl")]) == 0
    assert main(args) == 0
    stdout = capsys.readouterr().out
    for text in ((tmp_path / "e.jsonl").read_text(), stdout):
        records = [json.loads(line) for line in text.splitlines()]
        assert [(r["modality"], r["source"]) for r in records] == [
            ("depth", paths[0]), ("imu", paths[1]), ("text", "a room")]
        expected = tiny_model.embed(depth=paths[:1], imu=paths[1:], text=["a room"])
        for r in records:
            np.testing.assert_allclose(r["embedding"], expected[r["modality"]][0].numpy(), atol=ATOL)


def test_embed_directory_and_parquet(capsys, tmp_path, assets_dir):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert main(["embed", "--text", "a", "--out", str(tmp_path / "e.parquet")]) == 2
        assert "pip install pyarrow" in capsys.readouterr().err
        return
    assert main(["embed", "--thermal", str(assets_dir / "thermal"), "--out", str(tmp_path / "e.parquet")]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(tmp_path / "e.parquet")
    assert table.num_rows == 3 and table.column_names == ["modality", "source", "embedding"]


def test_embed_skip_bad_files(capsys, tmp_path, assets_dir):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    args = ["embed", "--image", str(bad), "--image", str(assets_dir / "dog_image.jpg"), "--on-error", "skip"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["source"] for line in captured.out.splitlines()] == [str(assets_dir / "dog_image.jpg")]
    # reported once, by the command (the library's warning is held back), naming the item
    [line] = captured.err.splitlines()
    assert line.startswith(f"imagebind-sdk: skipped vision[0] ({bad}): expected an image file"), line


def test_embed_bulk_mode_resumes(cli_env, capsys, tmp_path, assets_dir, tiny_model):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in images(assets_dir):
        shutil.copy(name, folder)
    (folder / "notes.txt").write_text("not embedded")
    out = tmp_path / "photos.emb"
    res = run_cli(cli_env, "embed", folder, "--out", out, "--resume")
    assert res.returncode == 0, res.stderr
    assert "files: 4  embedded: 3  already_done: 0  failed: 0  unsupported: 1" in res.stdout
    assert main(["embed", str(folder), "--out", str(out)]) == 0
    assert "embedded: 0  already_done: 3" in capsys.readouterr().out
    from imagebind_sdk.bulk.files import load_bulk_output

    got = load_bulk_output(out)
    expected = tiny_model.embed(vision=sorted(str(p) for p in folder.glob("*.jpg"))).vision
    torch.testing.assert_close(got.vision, expected, atol=ATOL, rtol=0)


def test_embed_bulk_kind_flag_and_its_old_name(tmp_path, assets_dir, tiny_model):
    # --kind reads every file as one input kind; --modality (0.1) is the same flag.
    depth = str(assets_dir / "depth")
    assert main(["embed", depth, "--kind", "depth", "--out", str(tmp_path / "a.npy")]) == 0
    assert main(["embed", depth, "--modality", "depth", "--out", str(tmp_path / "b.npy")]) == 0
    a, b = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    expected = tiny_model.embed(depth=sorted(str(p) for p in (assets_dir / "depth").glob("*.jpg"))).depth
    assert np.array_equal(a, b) and a.shape == tuple(expected.shape)


# -- similarity and classify -----------------------------------------------------------
def test_similarity_table_has_labels(cli_env, assets_dir):
    long_text = "a photograph of a very good dog sitting on the grass"
    res = run_cli(cli_env, "similarity", "--image", *images(assets_dir)[:2], "--text", "A dog.",
                  "--text", long_text, "--audio", sounds(assets_dir)[0])
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for title in ("Vision x Text (cosine)", "Audio x Text (cosine)", "Vision x Audio (cosine)"):
        assert title in out
    assert out.index("Vision x Text") < out.index("Audio x Text") < out.index("Vision x Audio")
    for label in ("bird_image.jpg", "car_image.jpg", "dog_audio.wav", "A dog.", long_text[:20]):
        assert label in out
    assert long_text not in out  # truncated


def test_similarity_softmax_json(capsys, assets_dir, tiny_model):
    args = ["similarity", "--a-image", *images(assets_dir), "--b-text", "A dog.", "--b-text", "A car",
            "--b-text", "A bird", "--softmax", "--json"]
    assert main(args) == 0
    (table,) = json.loads(capsys.readouterr().out)
    assert table["rows"] == "vision" and table["columns"] == "text" and table["values"] == "softmax"
    assert table["row_sources"] == images(assets_dir)
    out = tiny_model.embed(vision=images(assets_dir), text=["A dog.", "A car", "A bird"])
    ref_v, ref_t = out.vision * tiny_model.logit_scale("vision"), out.text * tiny_model.logit_scale("text")
    torch.testing.assert_close(torch.tensor(table["matrix"]), torch.softmax(ref_v @ ref_t.T, dim=-1),
                               atol=1e-4, rtol=0)


def test_classify_json(cli_env, assets_dir):
    res = run_cli(cli_env, "classify", "--audio", *sounds(assets_dir), "--labels", "dog,car", "--labels", "bird",
                  "--top-k", "2", "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["labels"] == ["dog", "car", "bird"] and data["top_k"] == 2
    assert [r["source"] for r in data["results"]] == sounds(assets_dir)
    for r in data["results"]:
        assert r["modality"] == "audio"
        assert len(r["top"]) == 2 and r["top"][0]["label"] == r["label"]
        assert r["top"][0]["prob"] >= r["top"][1]["prob"]
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-5)


def test_classify_text_output_with_label_and_template_files(capsys, tmp_path, assets_dir, tiny_model):
    (tmp_path / "labels.txt").write_text("# animals\ndog\n\ncar\nbird\n")
    (tmp_path / "templates.txt").write_text("a photo of a {}.\na picture of a {}.\n")
    image = str(assets_dir / "dog_image.jpg")
    args = ["classify", "--image", image, "--labels", f"@{tmp_path / 'labels.txt'}",
            "--templates", f"@{tmp_path / 'templates.txt'}", "--top-k", "3"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{image} (vision)"
    from imagebind_sdk.vectors.zero_shot import zero_shot_probs

    labels = ["dog", "car", "bird"]
    label_emb = tiny_model.label_embeddings(labels, ["a photo of a {}.", "a picture of a {}."])
    probs = zero_shot_probs(label_emb, tiny_model.embed(vision=[image]).vision, tiny_model.logit_scale("text"))[0]
    expected = [labels[i] for i in probs.argsort(descending=True, stable=True).tolist()]
    assert [line.split()[0] for line in lines[1:]] == expected
    assert [float(line.split()[1]) for line in lines[1:]] == pytest.approx(sorted(probs.tolist())[::-1], abs=1e-4)
    assert main(["classify", "--image", image, "--labels", "dog", "--templates", "no placeholder"]) == 1
    assert "placeholder" in capsys.readouterr().err


# -- index and search ------------------------------------------------------------------
def test_index_build_and_search(cli_env, tmp_path, assets_dir):
    folder = tmp_path / "data"
    shutil.copytree(assets_dir, folder, ignore=shutil.ignore_patterns("video", "depth", "thermal", "imu"))
    index_dir = tmp_path / "my.index"
    res = run_cli(cli_env, "index", "build", folder, "--out", index_dir)
    assert res.returncode == 0, res.stderr
    assert "indexed" in res.stdout and (index_dir / "index.json").is_file()
    res = run_cli(cli_env, "search", index_dir, "--text", "a dog", "--audio", sounds(assets_dir)[0],
                  "--top-k", "3", "--json")
    assert res.returncode == 0, res.stderr
    results = json.loads(res.stdout)
    assert [r["query"]["modality"] for r in results] == ["text", "audio"]
    hits = results[1]["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3]
    assert hits[0]["id"] == "dog_audio.wav" and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert hits[0]["metadata"] == {"path": str(folder / "dog_audio.wav"), "modality": "audio"}


def test_index_search_text_output(capsys, tmp_path, assets_dir):
    index_dir = tmp_path / "idx"
    assert main(["index", "build", str(assets_dir / "imu"), "--out", str(index_dir)]) == 0
    capsys.readouterr()
    assert main(["index", "search", str(index_dir), "--imu", str(assets_dir / "imu" / "imu1_2k.csv"),
                 "--top-k", "2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "query (imu): imu1_2k.csv"
    assert out[1].split()[:3] == ["1", "1.0000", "imu1_2k.csv"] and len(out) == 3
    assert main(["search", str(tmp_path / "missing"), "--text", "x"]) == 1


def test_compact_vectors_from_the_command_line(capsys, tmp_path, assets_dir, tiny_model):
    """--embedding-dtype/--ranges: bulk --out DIR and index build store compact rows (int8 calibrated with
    the model's text encoder, which the command loads for it); misuse is a usage error."""
    from imagebind_sdk.bulk.format import INFO
    from imagebind_sdk.retrieval.index import EmbeddingIndex
    from imagebind_sdk.cli.options import EMBEDDING_DTYPES
    from imagebind_sdk.vectors.compact import ENCODINGS, calibrate, read_ranges

    assert EMBEDDING_DTYPES == ENCODINGS  # the option's choices, kept apart so --help imports no torch
    images = [str(assets_dir / f"{n}_image.jpg") for n in ("dog", "car", "bird")]
    assert main(["embed", *images, "--out", str(tmp_path / "out"), "--embedding-dtype", "int8"]) == 0
    info = json.loads((tmp_path / "out" / INFO).read_text())
    assert info["dtype"] == "int8" and info["ranges"]["sha256"] == calibrate(tiny_model).digest
    read_ranges(tmp_path / "out").save(tmp_path / "ranges.json")
    assert main(["index", "build", str(assets_dir / "imu"), "--out", str(tmp_path / "idx"), "--embedding-dtype",
                 "uint8", "--ranges", str(tmp_path / "ranges.json")]) == 0
    index = EmbeddingIndex.load(tmp_path / "idx")
    assert index.embedding_dtype == "uint8" and len(index) == 3
    capsys.readouterr()
    assert main(["search", str(tmp_path / "idx"), "--imu", str(assets_dir / "imu" / "imu1_2k.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["hits"][0]["id"] == "imu1_2k.csv"
    for bad, why in ((["embed", *images, "--out", str(tmp_path / "b"), "--ranges", str(tmp_path / "ranges.json")],
                      "--ranges applies to --embedding-dtype int8 or uint8"),
                     (["embed", "--text", "a", "--embedding-dtype", "int8"], "bulk mode's --out DIR"),
                     (["embed", *images, "--out", str(tmp_path / "c.npy"), "--embedding-dtype", "binary"],
                      "give --out DIR"),
                     (["embed", *images, "--out", str(tmp_path / "d"), "--embedding-dtype", "int8", "--ranges",
                       str(tmp_path / "nope.json")], "nope.json: cannot read int8/uint8 ranges")):
        assert main(bad) == 2, bad
        assert why in capsys.readouterr().err, bad


# -- checkpoints ----------------------------------------------------------------------
def test_convert_then_info(cli_env, tmp_path, tiny_dir):
    out_dir = tmp_path / "converted"
    res = run_cli(cli_env, "convert", tiny_dir / "model.pth", out_dir, "--dtype", "bfloat16", "--shard")
    assert res.returncode == 0, res.stderr
    written = [Path(line) for line in res.stdout.splitlines()]
    assert out_dir / "model.safetensors.index.json" in written and all(p.exists() for p in written)
    res = run_cli(cli_env, "--checkpoint", out_dir, "info", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["dtype"] == "bfloat16" and info["embedding_dim"] == 32
    assert info["files"] == [str(out_dir / "model.safetensors.index.json")]
    assert set(info["parameters"]) == {"vision", "text", "audio", "depth", "thermal", "imu", "total"}
    assert info["parameters"]["total"] == sum(v for k, v in info["parameters"].items() if k != "total")
    assert info["config"]["out_embed_dim"] == 32


def test_info_text_and_convert_refuses_existing(capsys, tmp_path, tiny_dir, tiny_model):
    assert main(["info", str(tiny_dir)]) == 0
    out = capsys.readouterr().out
    n_vision = sum(p.numel() for p in tiny_model.model.encoders["vision"].parameters())
    assert f"source:         {tiny_dir}" in out and f"{n_vision:,}" in out and "embedding dim:  32" in out
    target = tmp_path / "out"
    assert main(["convert", str(tiny_dir), str(target)]) == 0
    assert main(["convert", str(tiny_dir), str(target)]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert main(["convert", str(tiny_dir), str(target), "--overwrite", "--modalities", "text"]) == 0


def test_download_without_network_fails_in_one_line(cli_env):
    res = run_cli(cli_env, "download", "imagebind-huge")
    assert res.returncode == 1
    line = one_error_line(res.stderr)
    assert line.startswith("imagebind-sdk: error: ") and "imagebind-huge" in line


def test_download_local_checkpoint_is_a_no_op(capsys, tiny_dir):
    assert main(["download", str(tiny_dir)]) == 0
    assert "nothing to download" in capsys.readouterr().out


# -- errors -----------------------------------------------------------------------------
def test_missing_file_exits_1(cli_env, tmp_path):
    res = run_cli(cli_env, "embed", "--audio", tmp_path / "nope.wav")
    assert res.returncode == 1
    assert one_error_line(res.stderr) == f"imagebind-sdk: error: no such file: {tmp_path / 'nope.wav'}"


def test_corrupt_file_exits_1(cli_env, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....garbage")
    res = run_cli(cli_env, "embed", "--audio", bad)
    assert res.returncode == 1
    line = one_error_line(res.stderr)
    assert line.startswith("imagebind-sdk: error: audio[0]") and "broken.wav" in line


def test_unknown_checkpoint_exits_1(cli_env):
    res = run_cli(cli_env, "--checkpoint", "no-such-checkpoint", "embed", "--text", "x")
    assert res.returncode == 1
    assert "unknown checkpoint 'no-such-checkpoint'" in one_error_line(res.stderr)


def test_corrupt_checkpoint_exits_1(capsys, tmp_path, tiny_dir):
    shutil.copy(tiny_dir / "config.json", tmp_path)
    (tmp_path / "model.safetensors").write_bytes((tiny_dir / "model.safetensors").read_bytes()[:1000])
    assert main(["--checkpoint", str(tmp_path), "embed", "--text", "x"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("imagebind-sdk: error: ") and err.count("\n") == 1


def test_debug_shows_traceback(cli_env, tmp_path):
    res = run_cli(cli_env, "--debug", "embed", "--image", tmp_path / "nope.jpg")
    assert res.returncode == 1
    assert "Traceback" in res.stderr and "FileNotFoundError" in res.stderr


def test_offline_and_verbose_leave_no_trace(capsys, caplog, monkeypatch, tiny_dir):
    import logging

    monkeypatch.delenv("HF_HUB_OFFLINE")
    level = logging.getLogger("imagebind_sdk").level
    assert main(["--offline", "-v", "embed", "--text", "x"]) == 0
    assert "HF_HUB_OFFLINE" not in os.environ
    assert f"loading {tiny_dir}" in caplog.text  # -v logs at INFO
    assert logging.getLogger("imagebind_sdk").level == level
    capsys.readouterr()


def test_one_line_messages():
    from imagebind_sdk.cli.printing import error_line

    err = FileNotFoundError("The weights are not available.\n  - with internet: download\n  - or pass a dir")
    assert error_line(err) == "The weights are not available. with internet: download; or pass a dir"
    assert error_line(ValueError("")) == "ValueError"
    assert error_line(ValueError("--device cuda: none\n--out x")) == "--device cuda: none; --out x"  # flags kept
    assert error_line(ZeroDivisionError("division by zero")) == (
        "ZeroDivisionError: division by zero (--debug shows the traceback)")
