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
import select
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


def _terminal() -> tuple[int, int]:
    """A pseudo-terminal (master, slave) of 24 rows x 100 columns."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    return master, slave


def _read_all(master: int) -> str:
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
    return b"".join(chunks).decode("utf-8", "replace")


def run_on_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run ``args`` with stderr on a pseudo-terminal; (exit status, what the terminal got)."""
    master, slave = _terminal()
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    screen = _read_all(master)
    return proc.wait(timeout=120), screen


def cli_on_terminal(forks, *args: object) -> tuple[int, str]:
    """``imagebind-sdk ARGS`` (forked, tests/cli_forks.py) with stderr on a pseudo-terminal."""
    master, slave = _terminal()
    job = forks.submit(list(map(str, args)), stderr=os.ttyname(slave))
    chunks = []
    while True:  # our slave stays open until the command is done, so the reads never see EIO early
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            chunks.append(os.read(master, 65536))
        elif job.done():
            break
    os.close(slave)
    result = job.wait()
    return result.returncode, b"".join(chunks).decode("utf-8", "replace") + _read_all(master)


@pytest.fixture(scope="module")
def env(cli_forks) -> dict[str, str]:
    return cli_forks.env


@pytest.fixture
def truncated(tmp_path: Path, assets_dir: Path) -> Path:
    path = tmp_path / "cut.jpg"
    path.write_bytes((assets_dir / "dog_image.jpg").read_bytes()[:500])
    return path


def test_bar_is_closed_before_the_error(cli_forks, truncated, assets_dir):
    status, screen = cli_on_terminal(
        cli_forks, "embed", "--image", assets_dir / "dog_image.jpg", truncated, "--batch-size", "1", "--progress")
    assert status == 1
    assert "embedding vision" in screen  # the bar was drawn ...
    error = screen.index("imagebind-sdk: error:")
    assert screen[error - 1] == "\n", screen  # ... and the error starts a line of its own
    assert "embedding vision" not in screen[error:], screen  # no bar redrawn after it


def test_bulk_failure_reported_once_above_the_bar(cli_forks, truncated, assets_dir):
    status, screen = cli_on_terminal(cli_forks, "embed", assets_dir / "dog_image.jpg", truncated, "--progress")
    assert status == 0
    assert "embedding files" in screen
    mentions = [line for line in re.split(r"[\r\n]+", screen) if "cut.jpg" in line]
    assert len(mentions) == 1 and mentions[0].startswith("imagebind-sdk: failed "), screen
    assert "WARNING" not in screen


def test_no_progress_hides_the_bar_on_a_terminal(cli_forks, assets_dir):
    status, screen = cli_on_terminal(cli_forks, "embed", "--image", assets_dir / "dog_image.jpg", "--no-progress")
    assert status == 0 and "embedding" not in screen, screen


def test_default_bar_on_a_terminal_appears_for_slow_work(env):
    """The Python rule on a real terminal: progress=None shows a bar once work passes the delay."""
    code = ("import time; from imagebind_sdk.progress import progress_bar, DEFAULT_DELAY_S\n"
            "bar = progress_bar(2, 'embedding text', 'item', None)\n"
            "time.sleep(DEFAULT_DELAY_S + 0.5); bar.update(2); bar.close()\n"
            "assert progress_bar(2, 'x', 'item', False) is None\n")
    status, screen = run_on_terminal([sys.executable, "-c", code], env)
    assert status == 0 and "embedding text" in screen and "2/2" in screen, screen


def test_piped_stderr_gets_a_bar_only_when_asked(cli_forks, assets_dir):
    image = assets_dir / "dog_image.jpg"
    plain = cli_forks.run(["embed", image])
    asked = cli_forks.run(["embed", image, "--progress"])
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
