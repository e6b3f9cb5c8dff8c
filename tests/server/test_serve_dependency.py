"""Issue 9 (C.13): a missing optional library is exit status 1 with the pip command
(like .parquet without pyarrow), not the usage status 2: ``serve`` without FastAPI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.mark.parametrize("library", ["fastapi", "uvicorn"])
def test_serve_without_its_libraries_exits_1_with_the_install_command(tmp_path, tiny_dir, library):
    broken = tmp_path / "broken" / library
    broken.mkdir(parents=True)  # first on PYTHONPATH: a library that fails to import
    (broken / "__init__.py").write_text('raise ImportError("No module named \'starlette\'")\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "broken"), str(SRC)]), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "imagebind_sdk", "serve", "--checkpoint", str(tiny_dir), "--port", "0"],
                         capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and "--debug" not in res.stderr, res.stderr  # an expected error
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert "pip install 'imagebind-sdk[serve]'" in res.stderr, res.stderr
    assert "starlette" in res.stderr  # the import error itself, so a broken install can be told apart
