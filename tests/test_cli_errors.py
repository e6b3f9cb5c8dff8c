"""Every CLI failure, without --debug, is one line on stderr (issue 9, C.10 and C.13).

Table-driven: each case runs the real command line (``imagebind_sdk.cli.main`` in a process
of its own, forked from one that imported torch once: tests/cli_forks.py; a few cases and
tests start ``python -m imagebind_sdk`` itself) against the tiny checkpoint, with inputs made at test time in a scratch
folder. Asserted: exit status 1 (2 for usage errors), at most 2 lines on stderr (a
usage error prints its command's one-line usage and the error), no traceback, the
error in the command line's spelling (``--resume``, ``--kind``; never
``resume=True``) and, where the message is the CLI's own, its words.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

DEEP = 100_000  # json.loads recursion: RecursionError in the reference decoder


@dataclass
class Case:
    id: str
    args: list[str]
    status: int
    says: list[str] = field(default_factory=list)  # substrings of the error line
    setup: Callable[[Path, Path, Path], None] | None = None  # (scratch, tiny_dir, assets)
    env: dict[str, str] = field(default_factory=dict)


def _copy_tiny(scratch: Path, tiny: Path, name: str) -> Path:
    target = scratch / name
    target.mkdir()
    for f in ("config.json", "model.safetensors"):
        shutil.copyfile(tiny / f, target / f)
    return target


def _config(name: str, edit: Callable[[dict], object]) -> Callable[[Path, Path, Path], None]:
    def setup(scratch: Path, tiny: Path, assets: Path) -> None:
        path = _copy_tiny(scratch, tiny, name) / "config.json"
        config = json.loads(path.read_text())
        edit(config)
        path.write_text(json.dumps(config))
    return setup


def _raw_config(name: str, text: str) -> Callable[[Path, Path, Path], None]:
    def setup(scratch: Path, tiny: Path, assets: Path) -> None:
        (_copy_tiny(scratch, tiny, name) / "config.json").write_text(text)
    return setup


def _truncated_weights(scratch: Path, tiny: Path, assets: Path) -> None:
    path = _copy_tiny(scratch, tiny, "cut") / "model.safetensors"
    path.write_bytes(path.read_bytes()[:1000])


def _truncated_image(scratch: Path, tiny: Path, assets: Path) -> None:
    (scratch / "cut.jpg").write_bytes((assets / "dog_image.jpg").read_bytes()[:500])


def _deep_index(scratch: Path, tiny: Path, assets: Path) -> None:
    from imagebind_sdk.retrieval.index import EmbeddingIndex

    index = EmbeddingIndex(dim=2)
    index.add([[1.0, 0.0]], ids=["a"])
    index.save(scratch / "deep.index")
    (scratch / "deep.index" / "index.json").write_text("[" * DEEP + "]" * DEEP)


def _plain_file(scratch: Path, tiny: Path, assets: Path) -> None:
    (scratch / "afile").write_text("not a folder")


def _bulk_output(scratch: Path, tiny: Path, assets: Path) -> None:
    (scratch / "out").mkdir()
    (scratch / "out" / "something").write_text("x")


def _fake_pyarrow(scratch: Path, tiny: Path, assets: Path) -> None:
    """A pyarrow that fails to import, as a broken install does (first on PYTHONPATH)."""
    (scratch / "broken" / "pyarrow").mkdir(parents=True)
    (scratch / "broken" / "pyarrow" / "__init__.py").write_text(
        'raise ImportError("libarrow.so.1900: cannot open shared object file")\n')


def _fake_ray(scratch: Path, tiny: Path, assets: Path) -> None:
    """Ray not installed (first on PYTHONPATH, a ray that cannot be imported)."""
    (scratch / "noray" / "ray").mkdir(parents=True)
    (scratch / "noray" / "ray" / "__init__.py").write_text('raise ImportError("No module named ray")\n')
    (scratch / "photos").mkdir()
    (scratch / "photos" / "a.jpg").write_bytes((assets / "dog_image.jpg").read_bytes())


def _unknown_files(scratch: Path, tiny: Path, assets: Path) -> None:
    (scratch / "docs").mkdir()
    (scratch / "docs" / "notes.txt").write_text("x")


DOG = "{assets}/dog_image.jpg"
CASES = [
    # -- usage (2): the command's own usage line, then the error
    Case("unknown-command", ["frobnicate"], 2, ["invalid choice"]),
    Case("unknown-option", ["embed", "--text", "a", "--bogus"], 2, ["imagebind-sdk embed: error", "--bogus"]),
    Case("unknown-option-nested", ["index", "build", "{scratch}", "--out", "x", "--bogus"], 2,
         ["imagebind-sdk index build: error", "--bogus"]),
    Case("bad-int", ["embed", "--text", "a", "--batch-size", "0"], 2, ["--batch-size"]),
    Case("bad-device-name", ["embed", "--text", "a", "--device", "foo"], 2, ["--device", "not a torch device"]),
    Case("missing-required", ["classify", "--image", DOG], 2, ["--labels"]),
    Case("nothing-to-embed", ["embed"], 2, ["nothing to embed"]),
    Case("unknown-out-format", ["embed", "--text", "a", "--out", "x.xyz"], 2, ["--out", ".xyz"]),
    Case("kind-in-flag-mode", ["embed", "--text", "a", "--kind", "depth"], 2, ["--kind", "bulk mode"]),
    Case("modality-in-flag-mode", ["embed", "--text", "a", "--modality", "depth"], 2, ["--kind", "bulk mode"]),
    Case("ray-engine-in-flag-mode", ["embed", "--text", "a", "--engine", "ray"], 2, ["--engine ray", "PATH"]),
    Case("ray-option-without-ray", ["embed", DOG, "--out", "{scratch}/o", "--concurrency", "2"], 2,
         ["--concurrency applies to --engine ray"]),
    # -- unusable inputs (1)
    Case("missing-file", ["embed", "--image", "{scratch}/nope.jpg"], 1, ["no such file", "nope.jpg"]),
    Case("missing-dir-bulk", ["embed", "{scratch}/nope_dir/"], 1, ["no such file or directory", "nope_dir"]),
    Case("glob-matches-nothing", ["embed", "--image", "{scratch}/*.jpeg"], 1, ["no files match"]),
    Case("truncated-image", ["embed", "--image", "{scratch}/cut.jpg"], 1, ["cut.jpg"], _truncated_image),
    Case("no-known-files", ["embed", "{scratch}/docs"], 1, ["--kind"], _unknown_files),
    Case("missing-labels-file", ["classify", "--image", DOG, "--labels", "@{scratch}/labels.txt"], 1,
         ["labels.txt"]),
    Case("search-without-query", ["search", "{scratch}/none.index"], 1, ["none.index"]),
    Case("missing-index", ["search", "{scratch}/none.index", "--text", "a"], 1, ["none.index"]),
    Case("deep-index-json", ["search", "{scratch}/deep.index", "--text", "a"], 1,
         ["deep.index", "RecursionError"], _deep_index),
    Case("moments-zero-hop", ["moments", "--audio", "{assets}/dog_audio.wav", "--text", "a", "--hop", "0"], 1,
         ["--hop must be a positive"]),
    # -- unusable checkpoints (1)
    Case("alias-not-cached-offline", ["embed", "--text", "a", "--checkpoint", "imagebind-huge", "--offline"], 1,
         ["imagebind-huge", "pass its path to --checkpoint"], env={"HF_HUB_CACHE": "{scratch}/empty_cache"}),
    Case("quantize-bf16", ["embed", "--text", "a", "--dtype", "bf16", "--quantize", "int8"], 1,
         ["--dtype bfloat16", "leave --dtype out"]),
    Case("unknown-checkpoint", ["embed", "--text", "a", "--checkpoint", "{scratch}/none"], 1, ["none"]),
    Case("truncated-weights", ["embed", "--text", "a", "--checkpoint", "{scratch}/cut"], 1, ["cut"],
         _truncated_weights),
    Case("garbage-config", ["embed", "--text", "a", "--checkpoint", "{scratch}/garbage"], 1, [],
         _raw_config("garbage", "{garbage")),
    Case("deep-config", ["embed", "--text", "a", "--checkpoint", "{scratch}/deep"], 1, [],
         _raw_config("deep", "[" * DEEP + "]" * DEEP)),
    Case("zero-kernel-size", ["embed", "--image", DOG, "--checkpoint", "{scratch}/k0"], 1, [],
         _config("k0", lambda c: c.update(kernel_size=[0, 0, 0]))),
    Case("string-out-dim", ["embed", "--text", "a", "--checkpoint", "{scratch}/s"], 1, [],
         _config("s", lambda c: c.update(out_embed_dim="32"))),
    Case("convert-into-existing", ["convert", "{tiny}", "{scratch}/copy"], 1, ["--overwrite"],
         lambda scratch, tiny, assets: _copy_tiny(scratch, tiny, "copy") and None),
    # -- the machine (1)
    Case("unavailable-device", ["embed", "--text", "a", "--device", "cuda:99"], 1, ["--device cuda:99"]),
    Case("unwritable-output", ["embed", "--text", "a", "--out", "{scratch}/afile/x.npy"], 1, ["afile"],
         _plain_file),
    Case("no-resume-into-full-dir", ["embed", DOG, "--out", "{scratch}/out", "--no-resume"], 1,
         ["--out", "--resume"], _bulk_output),
    Case("parquet-without-pyarrow", ["embed", "--text", "a", "--out", "{scratch}/x.parquet"], 1,
         ["pip install pyarrow"], _fake_pyarrow, env={"PYTHONPATH": "{scratch}/broken"}),
    Case("ray-not-installed", ["embed", "{scratch}/photos", "--out", "{scratch}/o", "--engine", "ray"], 1,
         ["--engine ray needs Ray", 'pip install "imagebind-sdk[distributed]"'], _fake_ray,
         env={"PYTHONPATH": "{scratch}/noray"}),
    Case("serve-ray-not-installed", ["serve", "--engine", "ray", "--port", "0"], 1,
         ["--engine ray needs Ray Serve", 'pip install "imagebind-sdk[distributed]"'], _fake_ray,
         env={"PYTHONPATH": "{scratch}/noray"}),
]


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "imagebind_sdk", *args], capture_output=True, text=True,
                          env=env, timeout=300, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def base_env(cli_forks) -> dict[str, str]:
    return cli_forks.env


@pytest.fixture(scope="module")
def results(tmp_path_factory, tiny_dir: Path, assets_dir: Path, base_env, cli_forks) -> dict[str, tuple]:
    """Every case run once, side by side, each in its own process forked from one that imported
    torch once (cases that set PYTHONPATH or the Hub cache start a fresh interpreter): id -> (result, names)."""
    jobs = {}
    for case in CASES:
        scratch = tmp_path_factory.mktemp(case.id)
        if case.setup is not None:
            case.setup(scratch, tiny_dir, assets_dir)
        names = {"scratch": scratch, "tiny": tiny_dir, "assets": assets_dir}
        env = dict(base_env)
        for key, value in case.env.items():  # PYTHONPATH: in front of ours; others: as given
            extra = os.pathsep + env.get(key, "") if key == "PYTHONPATH" else ""
            env[key] = value.format(**names) + extra
        jobs[case.id] = ([a.format(**names) for a in case.args], env, names)
    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        futures = {cid: pool.submit(cli_forks.run, args, env) for cid, (args, env, _) in jobs.items()}
        return {cid: (future.result(), jobs[cid][2]) for cid, future in futures.items()}


def check_one_line(res: subprocess.CompletedProcess, status: int) -> str:
    """The error line, after the checks every failure must pass."""
    lines = res.stderr.splitlines()
    assert res.returncode == status, res.stderr
    assert "Traceback" not in res.stderr
    assert 1 <= len(lines) <= (2 if status == 2 else 1), res.stderr
    if status == 2:
        assert lines[0].startswith("usage: imagebind-sdk") and len(lines) == 2, res.stderr
    error = lines[-1]
    assert error.startswith("imagebind-sdk") and ": error: " in error, res.stderr
    for python_spelling in ("resume=", "kind=", "modality=", "batch_size=", "num_workers=", "out=", "hop_s", "window_s",
                            "ImageBind.load", "torch."):
        assert python_spelling not in error, error
    return error


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_failure_is_one_line(case: Case, results) -> None:
    res, names = results[case.id]
    error = check_one_line(res, case.status)
    for words in case.says:
        assert words.format(**names) in error, error


def test_lock_contention_is_one_line(tmp_path: Path, assets_dir: Path, cli_forks) -> None:
    """Another job holding the output folder's lock (as a second `embed --out DIR` would)."""
    out = tmp_path / "out"
    assert cli_forks.run(["embed", str(assets_dir / "dog_image.jpg"), "--out", str(out)]).returncode == 0
    fd = os.open(out / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        res = cli_forks.run(["embed", str(assets_dir / "car_image.jpg"), "--out", str(out)])
    finally:
        os.close(fd)
    assert "another" in check_one_line(res, 1)


def test_debug_still_shows_the_traceback(base_env) -> None:
    res = run_cli(["--debug", "embed", "--text", "a", "--device", "cuda:99"], base_env)
    assert res.returncode == 1 and "Traceback" in res.stderr and "CliError" in res.stderr


def test_usage_line_is_the_commands(base_env) -> None:
    res = run_cli(["index", "build", "--bogus"], base_env)
    usage = res.stderr.splitlines()[0]
    assert usage.startswith("usage: imagebind-sdk index build [options] DIR"), res.stderr
