"""CLI argument combinations, run in-process through ``imagebind_sdk.cli.main``.

Exit 0 is ``ok``; exit 1/2 with no traceback is a refusal whose message is stderr
(at most one error line besides argparse's usage); an exception escaping ``main``
(which a real process would print as a traceback) is a crash.
"""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any, Callable

import corpus_builders as B
from corpus_framework import Case, CliFailure, Ctx


def run_cli(ctx: Ctx, argv: list[str]) -> Any:
    from imagebind_sdk.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 1
    if code == 0:
        return None
    if "Traceback" in err.getvalue() or code not in (1, 2):
        raise RuntimeError(f"exit {code} with stderr {err.getvalue()!r}")
    raise CliFailure(code, err.getvalue())


def _cli(label: str, argv: Callable[[Ctx], list[str]], names: tuple[str, ...], expect: str = "refuse",
         timeout: float = 30.0) -> Case:
    def run(ctx: Ctx) -> Any:
        return run_cli(ctx, ["--checkpoint", str(ctx.tiny), *argv(ctx)])

    return Case(f"cli/{label}", "cli", expect, run, names=names, timeout=timeout)


def _deep_index(ctx: Ctx) -> str:
    directory = ctx.tmp / "deep_index"
    directory.mkdir()
    (directory / "index.json").write_text('{"ids": ' + B.deep_json(100_000) + "}")
    (directory / "embeddings.safetensors").write_bytes(b"{}")
    return str(directory)


def _bad_config_dir(ctx: Ctx, field: str, value: Any) -> str:
    import shutil

    directory = ctx.tmp / f"cli_cfg_{field}"
    shutil.copytree(ctx.tiny, directory)
    config = json.loads((directory / "config.json").read_text())
    config[field] = value
    (directory / "config.json").write_text(json.dumps(config))
    return str(directory)


def cases() -> list[Case]:
    garbage = lambda c: str(c.file("cli_garbage.jpg", B.random_bytes()))  # noqa: E731
    return [
        _cli("embed-missing-dir", lambda c: ["embed", str(c.tmp / "nope_dir") + "/"], ("nope_dir",)),
        _cli("embed-garbage-image", lambda c: ["embed", "--image", garbage(c)], ("cli_garbage.jpg",)),
        _cli("embed-garbage-skip", lambda c: ["embed", "--image", garbage(c), "--on-error", "skip"],
             ("cli_garbage.jpg",), expect="either"),
        _cli("embed-bomb", lambda c: ["embed", "--image", str(c.file("cli_bomb.png", B.png_bomb()))],
             ("cli_bomb.png",)),
        _cli("embed-no-inputs", lambda c: ["embed"], ("embed",)),
        _cli("embed-batch-size-zero", lambda c: ["embed", "--text", "a", "--batch-size", "0"], ("batch-size",)),
        _cli("embed-unknown-option", lambda c: ["embed", "--text", "a", "--wibble"], ("--wibble",)),
        _cli("device-cuda", lambda c: ["--device", "cuda", "embed", "--text", "a"], ("cuda",)),
        _cli("device-garbage", lambda c: ["--device", "tpu9", "embed", "--text", "a"], ("tpu9",)),
        _cli("kernel-zero-checkpoint",
             lambda c: ["--checkpoint", _bad_config_dir(c, "kernel_size", [0, 0, 0]), "embed", "--text", "a"],
             ("kernel_size",)),
        _cli("blocks-string-checkpoint",
             lambda c: ["--checkpoint", _bad_config_dir(c, "text_num_blocks", "2"), "embed", "--text", "a"],
             ("text_num_blocks",)),
        _cli("classify-one-label", lambda c: ["classify", "--labels", "dog", "--image", str(c.assets / "dog_image.jpg")], ("label",)),
        _cli("search-deep-index", lambda c: ["index", "search", _deep_index(c), "--text", "a dog"],
             ("deep_index",)),
        _cli("search-missing-index", lambda c: ["index", "search", str(c.tmp / "no_index"), "--text", "a"],
             ("no_index",)),
        _cli("imu-csv-no-columns", lambda c: ["embed", "--imu", str(c.file("cli_bad.csv", "a,b\n1,2\n"))],
             ("cli_bad.csv",)),
        _cli("unknown-command", lambda c: ["frobnicate"], ("frobnicate",)),
        _cli("info-fifo-checkpoint", lambda c: ["info", _fifo_checkpoint(c)], ("model.safetensors",), timeout=20),
    ]


def _fifo_checkpoint(ctx: Ctx) -> str:
    import os
    import shutil

    directory = ctx.tmp / "cli_fifo"
    directory.mkdir()
    shutil.copy(ctx.tiny / "config.json", directory / "config.json")
    os.mkfifo(directory / "model.safetensors")
    return str(directory)
