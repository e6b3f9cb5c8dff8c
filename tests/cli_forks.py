"""Run the real command line in fresh processes without paying for torch's import each time.

Each ``python -m imagebind_sdk ...`` spends 2-5 s importing torch before it does anything;
the CLI tests start dozens. :class:`CliForkServer` is one interpreter that has imported
``imagebind_sdk`` (and so torch) once and forks a child per command: each command still
runs in its own process, with its own working directory, environment, file descriptors
0/1/2 and exit status, through the same ``main()`` the console script calls. Cases that
change what is read at import time (``PYTHONPATH``, Hugging Face's cache variables) still
start a real ``python -m imagebind_sdk`` (:func:`needs_fresh_interpreter`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# Environment variables that libraries read when they are imported: a forked child would
# keep the server's values, so commands that set them need a fresh interpreter.
IMPORT_TIME_ENV = ("PYTHONPATH", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "MKL_CBWR",
                   "TRANSFORMERS_CACHE", "OMP_NUM_THREADS")

SERVER = r"""
import json, os, signal, sys, traceback
from imagebind_sdk.cli import main
import imagebind_sdk.api, imagebind_sdk.bulk.files, imagebind_sdk.retrieval.index  # the heavy imports, once

signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
sys.stdout.write("ready\n")
sys.stdout.flush()
for line in sys.stdin:
    job = json.loads(line)
    if os.fork() != 0:
        continue
    code = 1
    try:
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        for fd, (path, flags) in enumerate([(os.devnull, os.O_RDONLY), (job["stdout"], os.O_WRONLY),
                                            (job["stderr"], os.O_WRONLY | os.O_NOCTTY)]):
            os.dup2(os.open(path, flags), fd)
        sys.stdin = open(0, closefd=False)
        try:
            code = main(job["argv"])
        except SystemExit as exc:  # argparse: usage errors and --help
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            if isinstance(exc.code, str):
                sys.stderr.write(exc.code + "\n")
        except BaseException:  # --debug re-raises: the interpreter would print the traceback
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        with open(job["status"] + ".tmp", "w") as f:
            f.write(str(code))
        os.rename(job["status"] + ".tmp", job["status"])
    finally:
        os._exit(code)
"""


def needs_fresh_interpreter(env: Mapping[str, str], base: Mapping[str, str]) -> bool:
    """Whether ``env`` differs from the server's ``base`` in a variable read at import time."""
    return any(env.get(name) != base.get(name) for name in IMPORT_TIME_ENV)


class Job:
    """A command started by :meth:`CliForkServer.submit`."""

    def __init__(self, server: CliForkServer, argv: list[str], files: dict[str, str]) -> None:
        self.server, self.argv, self.files = server, argv, files

    def done(self) -> bool:
        return Path(self.files["status"]).exists()

    def wait(self, timeout: float = 300) -> subprocess.CompletedProcess:
        """Its exit status, stdout and stderr once it has exited."""
        deadline = time.monotonic() + timeout
        while not self.done():
            if time.monotonic() > deadline or self.server.proc.poll() is not None:
                raise subprocess.TimeoutExpired(["imagebind-sdk", *self.argv], timeout)
            time.sleep(0.02)
        read = {name: Path(self.files[name]).read_text(errors="replace") for name in ("stdout", "stderr")}
        code = int(Path(self.files["status"]).read_text())
        return subprocess.CompletedProcess(["imagebind-sdk", *self.argv], code, read["stdout"], read["stderr"])


class CliForkServer:
    """One pre-imported interpreter forking a child per ``imagebind-sdk`` command (see the module)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)
        self.tmp = Path(tempfile.mkdtemp(prefix="cli_forks_"))
        self.proc = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env=self.env, text=True)
        self.lock = threading.Lock()
        self.count = 0
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the CLI fork server did not start (rc={self.proc.poll()})")

    def run(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | os.PathLike | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        """Like ``subprocess.run([python, -m, imagebind_sdk, *argv], capture_output=True, text=True)``."""
        env = dict(self.env if env is None else env)
        if needs_fresh_interpreter(env, self.env):
            return subprocess.run([sys.executable, "-m", "imagebind_sdk", *argv], capture_output=True, text=True,
                                  env=env, cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)
        return self.submit(argv, env, cwd).wait(timeout)

    def submit(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
               cwd: str | os.PathLike | None = None, stderr: str | None = None) -> Job:
        """Start a command now; ``stderr``: a path to write it to instead (e.g. a pseudo-terminal's)."""
        env = dict(self.env if env is None else env)
        assert not needs_fresh_interpreter(env, self.env), "this environment needs a fresh interpreter"
        with self.lock:
            self.count += 1
            files = {name: str(self.tmp / f"{self.count}.{name}") for name in ("stdout", "stderr", "status")}
            for name in ("stdout", "stderr"):
                Path(files[name]).touch()
            job = dict(files, argv=list(map(str, argv)), env=env, cwd=os.fspath(cwd or os.getcwd()))
            if stderr is not None:
                job["stderr"] = stderr
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        return Job(self, list(map(str, argv)), files)

    def close(self) -> None:
        """End the server: SIGTERM to the process this object started (it holds nothing worth a clean
        exit, and unloading torch takes seconds); each child has exited before its run() returned."""
        self.proc.stdin.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
