"""Progress bars: one rule and one wording everywhere (issue 9, C.12).

A bar shows on a terminal (or when asked with --progress / progress=True), is closed
before an error is printed, and log lines go above it. Terminals are real pseudo-
terminals (``pty``) with a window size, since tqdm draws nothing on a zero-width one;
each bulk failure is reported once.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from imagebind_sdk import progress
from imagebind_sdk.cli import build_parser

EMBEDDING_COMMANDS = (("embed",), ("similarity",), ("classify",), ("search",), ("index", "build"),
                      ("index", "search"))


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``args`` with stderr on a pseudo-terminal (80x24); (exit status, what the terminal got)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def env(tiny_dir: Path) -> dict[str, str]:
    return {**os.environ, "IMAGEBIND_CHECKPOINT": str(tiny_dir), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture
def truncated(tmp_path: Path, assets_dir: Path) -> Path:
    path = tmp_path / "cut.jpg"
    path.write_bytes((assets_dir / "dog_image.jpg").read_bytes()[:500])
    return path


def cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "imagebind_sdk", *map(str, args)]


def test_bar_is_closed_before_the_error(env, truncated, assets_dir):
    status, screen = run_on_terminal(
        cli("embed", "--image", assets_dir / "dog_image.jpg", truncated, "--batch-size", "1", "--progress"), env)
    assert status == 1
    assert "embedding vision" in screen  # the bar was drawn ...
    error = screen.index("imagebind-sdk: error:")
    assert screen[error - 1] == "\n", screen  # ... and the error starts a line of its own
    assert "embedding vision" not in screen[error:], screen  # no bar redrawn after it


def test_bulk_failure_reported_once_above_the_bar(env, truncated, assets_dir):
    status, screen = run_on_terminal(cli("embed", assets_dir / "dog_image.jpg", truncated, "--progress"), env)
    assert status == 0
    assert "embedding files" in screen
    mentions = [line for line in re.split(r"[\r\n]+", screen) if "cut.jpg" in line]
    assert len(mentions) == 1 and mentions[0].startswith("imagebind-sdk: failed "), screen
    assert "WARNING" not in screen


def test_no_progress_hides_the_bar_on_a_terminal(env, assets_dir):
    status, screen = run_on_terminal(cli("embed", "--image", assets_dir / "dog_image.jpg", "--no-progress"), env)
    assert status == 0 and "embedding" not in screen, screen


def test_default_bar_on_a_terminal_appears_for_slow_work(env):
    """The Python rule on a real terminal: progress=None shows a bar once work passes the delay."""
    code = ("import time; from imagebind_sdk.progress import progress_bar, DEFAULT_DELAY_S\n"
            "bar = progress_bar(2, 'embedding text', 'item', None)\n"
            "time.sleep(DEFAULT_DELAY_S + 0.5); bar.update(2); bar.close()\n"
            "assert progress_bar(2, 'x', 'item', False) is None\n")
    status, screen = run_on_terminal([sys.executable, "-c", code], env)
    assert status == 0 and "embedding text" in screen and "2/2" in screen, screen


def test_piped_stderr_gets_a_bar_only_when_asked(env, assets_dir):
    image = assets_dir / "dog_image.jpg"
    plain = subprocess.run(cli("embed", image), capture_output=True, text=True, env=env, timeout=120)
    asked = subprocess.run(cli("embed", image, "--progress"), capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode == asked.returncode == 0
    assert "embedding files" not in plain.stderr and "embedding files" in asked.stderr


def test_same_flag_and_wording_on_every_embedding_command():
    parser = build_parser()
    for command in EMBEDDING_COMMANDS:
        sub = parser
        for word in command:
            sub = next(a for a in sub._actions if isinstance(a.choices, dict)).choices[word]
        flag = next(a for a in sub._actions if "--progress" in a.option_strings)
        assert "--no-progress" in flag.option_strings and flag.default is None, command
        assert flag.help == progress.CLI_HELP, command


def test_asked_sets_the_answer_for_python_calls_inside(tiny_model, capsys):
    with progress.asked(True):
        tiny_model.embed(text=["a dog", "a car"])
    assert "embedding text" in capsys.readouterr().err
    with progress.asked(False):
        tiny_model.embed(text=["a dog"], progress=None)
    tiny_model.embed(text=["a dog"])  # pytest's stderr is no terminal
    assert capsys.readouterr().err == ""
    assert not progress.wanted(None)
