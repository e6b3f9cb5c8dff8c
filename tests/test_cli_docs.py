"""Every ``imagebind-sdk ...`` line in the docs' shell blocks parses with the real parser.

Parsed only, never run: the docs cannot name a command or an option that does not
exist, or give one a value it refuses. ``[--flag VALUE]`` (optional parts, in
brackets) are parsed as if given. Lines for commands this build does not register
(added by other branches, e.g. ``serve``) are left out, and the test says which.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from conftest import REPO
from imagebind_sdk.cli import build_parser, parse_args

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_SHELL_FENCE = re.compile(r"^```(?:bash|sh|shell|console)[^\n]*\n(.*?)^```", re.S | re.M)
# Commands other branches add (not registered until they are merged); any other unknown command fails.
OTHER_BRANCH_COMMANDS = {"serve", "export-onnx", "moments"}
_ENDS = {"|", "||", "&&", ";", "&", ">", ">>", "<", "2>"}  # a pipe, a redirect or a next command


def _registered_commands() -> set[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a.choices, dict))
    return set(action.choices)


def command_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each ``imagebind-sdk`` command in the shell blocks of a document."""
    text = path.read_text(encoding="utf-8")
    out = []
    for block in _SHELL_FENCE.finditer(text):
        first = text.count("\n", 0, block.start(1)) + 1
        joined = block.group(1).replace("\\\n", " ")  # continuation lines
        for offset, line in enumerate(joined.splitlines()):
            line = line.strip().removeprefix("$ ")
            if line.startswith("imagebind-sdk ") or line == "imagebind-sdk":
                out.append((first + offset, line))
    return out


def argv_of(line: str) -> list[str]:
    """The arguments of a documented command: comments, pipes and redirects dropped, brackets opened."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words = []
    for word in lexer:
        if word in _ENDS:
            break
        words.append(word)
    words = words[1:]
    return [w[1:] if w.startswith("[") else w for w in (w[:-1] if w.endswith("]") else w for w in words)]


ALL_LINES = [(doc, n, line) for doc in DOCUMENTS for n, line in command_lines(doc)]


def test_the_docs_have_command_lines() -> None:
    names = {doc.name for doc, _, _ in ALL_LINES}
    assert {"README.md", "cli.md"} <= names
    assert argv_of("imagebind-sdk index build photos/ --out x [--modality vision]  # c") == [
        "index", "build", "photos/", "--out", "x", "--modality", "vision"]
    assert argv_of("imagebind-sdk embed --text 'a | b' | head -2") == ["embed", "--text", "a | b"]


@pytest.mark.parametrize("doc,number,line", ALL_LINES, ids=[f"{d.name}:{n}" for d, n, _ in ALL_LINES])
def test_documented_command_parses(doc: Path, number: int, line: str) -> None:
    argv = argv_of(line)
    commands = _registered_commands()
    command = next((w for w in argv if not w.startswith("-")), None)
    if command in OTHER_BRANCH_COMMANDS and command not in commands:
        pytest.skip(f"{command!r} is not a command of this build (another branch adds it)")
    stderr, stdout = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
        try:
            parse_args(argv)
        except SystemExit as exc:  # --help exits 0; a bad option exits 2
            assert exc.code == 0, f"{doc.name}:{number}: {line}\n{stderr.getvalue()}"


def test_command_table_lists_every_command() -> None:
    """docs/cli.md's table at the top names each command the parser registers."""
    text = (REPO / "docs" / "cli.md").read_text(encoding="utf-8")
    table = text[: text.index("## Global options")]
    listed = set(re.findall(r"^\| `([a-z-]+)", table, re.M))
    missing = _registered_commands() - listed
    assert not missing, f"docs/cli.md's command table lacks {sorted(missing)}"
