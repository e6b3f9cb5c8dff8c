"""``imagebind-sdk --help`` (and every ``COMMAND --help``) answers without importing torch.

Importing torch takes 2-5 s; the help text, the version and parsing need none of it.
Asserted in a fresh interpreter: which heavy modules the command imported, and its CPU
time (user + system, which a busy machine stretches far less than wall time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from imagebind_sdk.cli import COMMAND_MODULES  # noqa: F401 - the package imports cleanly in-process too

HEAVY = ("torch", "numpy", "PIL", "pyarrow", "safetensors", "huggingface_hub", "av", "soundfile", "ray")
MAX_CPU_S = 0.5

# Runs the real entry point and reports what it imported and the CPU time it took.
PROBE = """
import json, resource, sys
from imagebind_sdk.cli import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
usage = resource.getrusage(resource.RUSAGE_SELF)
heavy = [m for m in json.loads(HEAVY) if m in sys.modules]
sys.__stderr__.write(json.dumps({"code": code, "heavy": heavy, "cpu_s": usage.ru_utime + usage.ru_stime}) + "\\n")
"""


def probe(*args: str) -> dict:
    env = dict(os.environ)
    code = f"HEAVY = {json.dumps(json.dumps(HEAVY))}\n" + PROBE
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["embed", "--help"], ["moments", "--help"],
                                  ["serve", "--help"], ["index", "build", "--help"], ["export-onnx", "--help"]],
                         ids=" ".join)
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    report = probe(*args)
    assert report["code"] == 0, report
    assert report["heavy"] == [], f"`imagebind-sdk {' '.join(args)}` imported {report['heavy']}"


def test_help_takes_under_half_a_second_of_cpu() -> None:
    best = min(probe("--help")["cpu_s"] for _ in range(3))  # the least disturbed of three runs
    assert best < MAX_CPU_S, f"`imagebind-sdk --help` took {best:.2f} s of CPU (limit {MAX_CPU_S} s)"
