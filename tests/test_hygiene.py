"""Rules for test and benchmark code itself: signal only the processes you started; skip (or,
under CI, fail) with the apt package named when an optional system library is missing.

The machines these tests run on are shared. A test that finds processes by name
(``pkill``, ``pgrep``, ``killall``, ``psutil.process_iter`` with a name or command-line
match, scanning ``/proc/*/cmdline``, ``ray stop``) and signals them can kill other
people's jobs. Tests signal only PIDs they started (``Popen.pid``, a process group they
created) or PIDs their own Ray cluster or actor reports. This file scans tests/ and
benchmarks/ with ``ast``: a rule about code that the code cannot break unnoticed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("tests", "benchmarks", "examples")

# Commands that pick processes by name; as a word in a string (a subprocess argument or a
# shell line). The names are split so that this file does not match its own rule.
_BY_NAME = "|".join(["p" + "kill", "p" + "grep", "kill" + "all"])
_BY_NAME_COMMANDS = re.compile(rf"\b({_BY_NAME})\b")
# `ray stop` kills every Ray process of the user on the machine, not only the test's cluster.
_RAY_STOP = re.compile(r"\bray\s+" + "stop" + r"\b")
# The same as a shell line's command (at its start or after ; | & or $( ), not a word in prose.
_SHELL_LINE = re.compile(r"(?:^|[;|&(]\s*)(" + _BY_NAME + r"|ray\s+" + "stop" + r")\s")
# Another process's identity read from /proc: its command line, name or executable.
_PROC_IDENTITY = re.compile(r"/proc/(?!self/)[^\s'\"]*(cmd" + r"line|comm|exe)\b")


def _strings(node: ast.AST) -> list[str]:
    """String constants in ``node`` (f-string parts joined, so ``f"/proc/{pid}/cmdline"`` reads as one)."""
    out: list[str] = []
    parts = {id(v) for sub in ast.walk(node) if isinstance(sub, ast.JoinedStr) for v in sub.values}
    for sub in ast.walk(node):
        if isinstance(sub, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
                               for v in sub.values))
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str) and id(sub) not in parts:
            out.append(sub.value)  # an f-string's pieces count only joined ("/proc/{}/fd" is one process)
    return out


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _list_words(call: ast.Call) -> list[str]:
    """The string items of a literal argument list, e.g. ``["ray", "stop"]`` -> ``"ray stop"``."""
    lists = [a for a in call.args if isinstance(a, (ast.List, ast.Tuple))]
    return [" ".join(e.value for e in a.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
            for a in lists]


def process_matching_by_name(source: str) -> list[str]:
    """What in ``source`` finds processes by name; one line per finding, with its line number."""
    found = []
    tree = ast.parse(source)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Call):
            name = _call_name(node)
            if name == "process_iter":
                found.append(f"line {line}: psutil.process_iter (processes found by name or command line)")
            if name == "listdir" and any(s.rstrip("/") == "/proc" for s in _strings(node)):
                found.append(f"line {line}: listing /proc (every process on the machine)")
            if name in ("glob", "iglob") and any(s.startswith("/proc/*") for s in _strings(node)):
                found.append(f"line {line}: globbing /proc (every process on the machine)")
            for words in _list_words(node):
                if _RAY_STOP.search(words) or _BY_NAME_COMMANDS.search(words):
                    found.append(f"line {line}: runs {words!r} (signals processes by name)")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) or isinstance(node, ast.JoinedStr):
            for text in _strings(node) if isinstance(node, ast.JoinedStr) else [node.value]:
                if _PROC_IDENTITY.search(text):
                    found.append(f"line {line}: reads another process's identity from {text!r}")
                match = _SHELL_LINE.search(text)
                if match:
                    found.append(f"line {line}: shell line {text!r} ({match.group(1)} signals processes by name)")
    return sorted(set(found))


def _code_files() -> list[Path]:
    files = [p for folder in SCANNED for p in sorted((REPO / folder).rglob("*.py"))]
    return [p for p in files if p.resolve() != Path(__file__).resolve()]


def test_no_test_or_benchmark_finds_processes_by_name() -> None:
    problems = {}
    for path in _code_files():
        found = process_matching_by_name(path.read_text(encoding="utf-8"))
        if found:
            problems[str(path.relative_to(REPO))] = found
    assert not problems, (
        "test code must signal only processes it started (Popen.pid, its own process group) or that its own "
        f"Ray cluster or actor reports, never processes found by name: {problems}"
    )


def test_the_rule_catches_each_way_of_finding_processes_by_name() -> None:
    """The checker itself: each pattern is found, and ordinary process handling is not."""
    bad = {
        "import psutil\n[p.kill() for p in psutil.process_iter(['name']) if 'raylet' in p.info['name']]": "process_iter",
        "import os\nfor e in os.listdir('/proc'):\n    pass": "listing /proc",
        "import glob\nglob.glob('/proc/*/cmdline')": "globbing /proc",
        "open(f'/proc/{pid}/cmd" "line').read()": "identity",
        "import subprocess\nsubprocess.run(['p" "kill', '-f', 'ray::'])": "signals processes by name",
        "import subprocess\nsubprocess.run(['ray', 'st" "op', '--force'])": "signals processes by name",
        "import os\nos.system('kill" "all -9 raylet')": "signals processes by name",
        "import subprocess\nsubprocess.run('p" "grep -f gcs_server | xargs kill', shell=True)": "signals",
    }
    for source, expected in bad.items():
        found = process_matching_by_name(source)
        assert found and expected in found[0], (source, found)
    fine = (
        "import os, signal, subprocess\np = subprocess.Popen(['sleep', '9'])\nos.kill(p.pid, signal.SIGKILL)\n"
        "os.killpg(p.pid, signal.SIGTERM)\nopen(f'/proc/{p.pid}/status').read()\nopen('/proc/self/statm')\n"
        "open('/proc/stat').read()\n# pkill in a comment is prose\nx = 'killall'\n"
    )
    assert process_matching_by_name(fine) == []


def _missing_library() -> None:
    raise OSError("libavcodec.so.59: cannot open shared object file: No such file or directory")


def test_missing_system_library_skips_naming_the_apt_package(monkeypatch) -> None:
    from conftest import require_system_library

    monkeypatch.delenv("CI", raising=False)
    assert require_system_library(lambda: 42, "libavcodec59", needed_for="decoding") == 42
    with pytest.raises(pytest.skip.Exception, match=r"decoding needs system libraries from apt: "
                       r"apt-get install libavcodec59 libavformat59 \(OSError: libavcodec\.so\.59: cannot open"):
        require_system_library(_missing_library, "libavcodec59 libavformat59", needed_for="decoding")


def test_missing_system_library_fails_under_ci(monkeypatch) -> None:
    from conftest import require_system_library

    for value in ("true", "1"):
        monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.fail.Exception, match="apt-get install libavcodec59.*under CI=true"):
            require_system_library(_missing_library, "libavcodec59", needed_for="decoding")
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception):
        require_system_library(_missing_library, "libavcodec59", needed_for="decoding")
