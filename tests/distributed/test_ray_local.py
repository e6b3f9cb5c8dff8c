"""embed_dataset on a real local Ray cluster: parity with embed_files, sources, resume, faults."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from imagebind_sdk.bulk.files import embed_files
from imagebind_sdk.cli import main
from imagebind_sdk.bulk.format import INFO, part_files
from imagebind_sdk.bulk.store import load_bulk_output
from imagebind_sdk.distributed import embed_dataset

from .conftest import started_by_this_test

TOL = dict(rtol=0, atol=1e-6)
# The one line Ray's core prints when told (by RAY_BACKEND_LOG_LEVEL) to print only fatal errors.
RAY_LOG_LEVEL_LINE = re.compile(r"\] logging\.cc:\d+: Set ray log level from environment variable")

# A driver in its own process joining the test cluster; each worker sleeps before every
# encoding batch (a setup hook of this job's workers) so the job can be hit midway, and
# each encoding actor reports its PID as a file in PID_DIR: the test signals only those.
DRIVER = """
import sys, time, ray

PID_DIR = sys.argv[5]

def slow_workers(pid_dir=PID_DIR):
    import os, time
    from imagebind_sdk.distributed import stages
    call = stages.Encoder.__call__
    def slow_call(self, batch):
        open(os.path.join(pid_dir, str(os.getpid())), "w").close()
        time.sleep(0.4)
        return call(self, batch)
    stages.Encoder.__call__ = slow_call

ray.init(address=sys.argv[1], logging_level="WARNING", runtime_env={"worker_process_setup_hook": slow_workers})
from imagebind_sdk.distributed import embed_dataset
print(embed_dataset(sys.argv[2], checkpoint=sys.argv[3], out=sys.argv[4], batch_size=2, concurrency=1).as_dict())
"""


def assert_same(a, b) -> None:
    assert list(a) == list(b) and a.sources == b.sources
    for kind in a:
        torch.testing.assert_close(a[kind], b[kind], **TOL)


def paths_in_parts(out: Path) -> list[str]:
    return [p for part in part_files(out) for p in pq.read_table(part, columns=["path"]).column("path").to_pylist()]


def test_matches_embed_files_and_is_readable_everywhere(ray_cluster, tiny_model, tiny_dir, with_bad_files, tmp_path):
    out = tmp_path / "ray.emb"
    summary = embed_dataset(with_bad_files, checkpoint=tiny_dir, out=out, batch_size=4, concurrency=1)
    n_good = len(with_bad_files) - 2
    assert (summary.embedded, summary.failed, summary.unsupported, summary.already_done) == (n_good, 1, 1, 0)
    assert [(Path(p).name, "image" in e) for p, e in summary.failed_files] == [("corrupt.jpg", True)]
    assert [Path(p).name for p, _ in summary.unsupported_files] == ["notes.txt"]
    assert summary.summary() == {"files": n_good + 2, "embedded": n_good, "already_done": 0, "failed": 1,
                                 "unsupported": 1}
    assert summary.seconds > 0 and summary.items_per_s > 0 and sum(summary.nodes.values()) == n_good

    local = embed_files(tiny_model, with_bad_files, out=tmp_path / "local.emb", batch_size=4)
    loaded = load_bulk_output(out)
    assert_same(loaded, load_bulk_output(tmp_path / "local.emb"))
    assert loaded.space == tiny_model.space  # the Ray job records the space its actors load
    for kind in local.embeddings:  # and the rows equal the single-process run, source by source
        rows = dict(zip(loaded.sources[kind], loaded[kind]))
        for source, row in zip(local.embeddings.sources[kind], local.embeddings[kind]):
            torch.testing.assert_close(rows[source], row, **TOL)
    corrupt = [s for s in loaded.skipped["vision"] if s.source.endswith("corrupt.jpg")]
    assert len(corrupt) == 1 and "image" in corrupt[0].error

    paths = paths_in_parts(out)
    assert sorted(paths) == sorted(set(paths)) and len(paths) == n_good + 1  # each file exactly once
    import duckdb
    import pandas as pd

    frame = pd.read_parquet(out)  # the folder as one table: _info.json is not a part
    assert len(frame) == n_good + 1 and frame["error"].notna().sum() == 1
    embedded = frame.loc[frame["error"].isna(), "embedding"]  # row order follows part files
    assert all(len(e) == tiny_model.embedding_dim for e in embedded)
    glob = str(out / "*.parquet")
    query = f"select count(*), count(distinct path), max(len(embedding)) from read_parquet('{glob}')"
    total, distinct, dims = duckdb.connect().execute(query).fetchall()[0]
    assert (total, distinct, dims) == (n_good + 1, n_good + 1, tiny_model.embedding_dim)
    assert pa.types.is_fixed_size_list(pq.read_schema(part_files(out)[0]).field("embedding").type)


def test_resume_across_engines(ray_cluster, tiny_model, tiny_dir, with_bad_files, tmp_path):
    out = tmp_path / "out"
    embed_files(tiny_model, with_bad_files[:10], out=out, batch_size=4)  # the local engine starts it
    summary = embed_dataset(with_bad_files, checkpoint=tiny_dir, out=out, batch_size=4, concurrency=1)
    assert summary.already_done == 10 and summary.embedded == len(with_bad_files) - 12
    again = embed_dataset(with_bad_files, checkpoint=tiny_dir, out=out, batch_size=4, concurrency=1)
    assert (again.embedded, again.already_done, again.failed) == (0, len(with_bad_files) - 2, 1)  # failures retried
    resumed_locally = embed_files(tiny_model, with_bad_files, out=out, batch_size=4)
    assert resumed_locally.summary()["embedded"] == 0
    paths = paths_in_parts(out)
    assert len(paths) == len(set(paths)) == len(with_bad_files) - 1


def test_compact_rows_equal_embed_files(ray_cluster, tiny_model, tiny_dir, with_bad_files, tmp_path):
    """``embedding_dtype=`` on Ray: the same calibration (calibrated once on the driver) and the same
    stored rows as the local engine; given ranges are recorded; a resume keeps the folder's own."""
    files = with_bad_files[:6]
    local = embed_files(tiny_model, files, out=tmp_path / "local", embedding_dtype="int8", batch_size=4)
    summary = embed_dataset(files, checkpoint=tiny_dir, out=tmp_path / "ray", embedding_dtype="int8",
                            batch_size=4, concurrency=1)
    assert summary.embedded == local.summary()["embedded"]
    info = {name: json.loads((tmp_path / name / INFO).read_text()) for name in ("local", "ray")}
    assert info["ray"]["dtype"] == "int8" and info["ray"]["ranges"] == info["local"]["ranges"]
    stored = {name: dict(zip(*pq.read_table(tmp_path / name, columns=["path", "embedding"]).to_pydict().values()))
              for name in ("local", "ray")}
    assert stored["ray"] == stored["local"]  # int8 rows, value for value
    given = [[-1.0] * 32, [1.0] * 32]
    embed_dataset(files[:2], checkpoint=tiny_dir, out=tmp_path / "given", embedding_dtype="uint8", ranges=given,
                  concurrency=1)
    assert json.loads((tmp_path / "given" / INFO).read_text())["ranges"]["low"] == given[0]
    with pytest.raises(ValueError, match="with other ranges"):
        embed_dataset(files, checkpoint=tiny_dir, out=tmp_path / "given", embedding_dtype="uint8",
                      ranges=[[-2.0] * 32, [2.0] * 32], concurrency=1)
    with pytest.raises(ValueError, match="ranges= only applies"):
        embed_dataset(files, checkpoint=tiny_dir, out=tmp_path / "x", embedding_dtype="binary", ranges=given)


def test_other_sources(ray_cluster, tiny_model, tiny_dir, assets_dir, tmp_path):
    import ray

    images = sorted(str(p) for p in assets_dir.glob("*_image.jpg"))
    expected = tiny_model.embed(vision=images).vision
    table = tmp_path / "list.parquet"
    pq.write_table(pa.table({"path": images, "label": ["x"] * len(images)}), table)
    csv = tmp_path / "list.csv"
    csv.write_text("label,path\n" + "".join(f"x,{p}\n" for p in images))
    as_bytes = ray.data.from_items([{"path": f"mem://{Path(p).name}", "bytes": Path(p).read_bytes()} for p in images])
    for i, source in enumerate([table, csv, str(assets_dir / "*_image.jpg"), as_bytes]):
        out = tmp_path / f"out{i}"
        summary = embed_dataset(source, checkpoint=tiny_dir, out=out, kind="vision", batch_size=2)
        assert summary.embedded == len(images), source
        loaded = load_bulk_output(out)
        order = sorted(range(len(images)), key=lambda j: loaded.sources["vision"].index(
            images[j] if i < 3 else f"mem://{Path(images[j]).name}"))
        torch.testing.assert_close(loaded.vision[[order.index(j) for j in range(len(images))]], expected, **TOL)
    with pytest.raises(ValueError, match="'path' column"):
        embed_dataset(ray.data.from_items([{"file": "a.jpg"}]), checkpoint=tiny_dir, out=tmp_path / "bad")


def _start_driver(address: str, source: Path, tiny_dir: Path, out: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    pid_dir = out.parent / "actor_pids"
    pid_dir.mkdir(exist_ok=True)
    cmd = [sys.executable, "-c", DRIVER, address, str(source), str(tiny_dir), str(out), str(pid_dir)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for_parts(proc: subprocess.Popen, out: Path, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        n = len(part_files(out)) if (out / INFO).exists() else 0
        if n >= at_least:
            return n
        time.sleep(0.05)
    _, err = proc.communicate(timeout=30)
    pytest.fail(f"driver ended or stalled before {at_least} parts (rc={proc.returncode}): {err.decode()[-3000:]}")


def test_killed_driver_then_rerun_equals_clean_run(ray_cluster, tiny_model, tiny_dir, images_dir, tmp_path):
    out = tmp_path / "out"
    proc = _start_driver(ray_cluster, images_dir, tiny_dir, out)
    try:
        committed = _wait_for_parts(proc, out, at_least=2)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    partial = len(paths_in_parts(out))
    assert 0 < partial < 24 and committed >= 2
    time.sleep(1)  # let Ray reap the dead job's actors and tasks
    summary = embed_dataset(images_dir, checkpoint=tiny_dir, out=out, batch_size=2, concurrency=1)
    assert summary.already_done + summary.embedded == 24 and summary.already_done >= partial
    clean = embed_files(tiny_model, images_dir, batch_size=2)
    assert_same(load_bulk_output(out), clean.embeddings)
    paths = paths_in_parts(out)
    assert len(paths) == len(set(paths)) == 24


def test_killed_encoding_actor_is_replaced(ray_cluster, tiny_model, tiny_dir, images_dir, tmp_path):
    out = tmp_path / "out"
    proc = _start_driver(ray_cluster, images_dir, tiny_dir, out)
    try:
        _wait_for_parts(proc, out, at_least=1)
        actors = [int(p.name) for p in (tmp_path / "actor_pids").iterdir()]  # as the actors reported them
        assert actors, "no encoding actor reported its PID"
        assert all(pid != proc.pid and started_by_this_test(pid) for pid in actors), actors
        for pid in actors:
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr.decode()[-3000:]
    assert "'embedded'" in stdout.decode()
    clean = embed_files(tiny_model, images_dir, batch_size=2)
    assert_same(load_bulk_output(out), clean.embeddings)
    paths = paths_in_parts(out)
    assert len(paths) == len(set(paths)) == 24


def test_cli_engine_ray(tiny_dir, assets_dir, tmp_path, capsys):
    """`imagebind-sdk embed DIR --out OUT --engine ray` in a fresh process (its own local Ray): Ray's
    own output held back, the local engine's summary and one line per failed or unsupported file."""
    folder = tmp_path / "in"
    shutil.copytree(assets_dir / "depth", folder)
    (folder / "corrupt.png").write_bytes(b"\x89PNG not really" * 20)
    (folder / "notes.txt").write_text("no kind")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "imagebind_sdk", "embed", str(folder), "--modality", "depth",
           "--checkpoint", str(tiny_dir), "--out", str(tmp_path / "ray.emb"), "--engine", "ray", "--concurrency", "1"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    n = len(list((assets_dir / "depth").glob("*")))
    assert load_bulk_output(tmp_path / "ray.emb").depth.shape[0] == n

    main(["embed", str(folder), "--modality", "depth", "--checkpoint", str(tiny_dir), "--out", str(tmp_path / "local")])
    local = capsys.readouterr()
    ray_summary = done.stdout.strip().splitlines()[-1]
    assert ray_summary.startswith(local.out.strip().split("  out: ")[0] + "  out: "), (ray_summary, local.out)
    assert re.fullmatch(r".*  out: \S+  seconds: \d+\.\d", ray_summary), ray_summary  # rounded
    reports = [line for line in done.stderr.splitlines() if line.startswith("imagebind-sdk: ")]
    assert reports == [line for line in local.err.splitlines() if line.startswith("imagebind-sdk: ")], done.stderr
    assert any("failed" in line and "corrupt.png" in line for line in reports), reports
    ray_lines = [line for line in done.stderr.splitlines() if line not in reports and not RAY_LOG_LEVEL_LINE.search(line)]
    assert ray_lines == [], f"Ray's own output without -v: {ray_lines}"


def test_cli_engine_ray_needs_paths(tiny_dir, capsys):
    assert main(["embed", "--text", "a dog", "--engine", "ray", "--checkpoint", str(tiny_dir)]) == 2
    assert "--engine ray embeds files given as PATH arguments" in capsys.readouterr().err


def test_pool_taking_every_cpu_is_refused(ray_cluster, tiny_dir, assets_dir, tmp_path):
    with pytest.raises(ValueError, match="take all 2 CPUs of the cluster, leaving none for decoding"):
        embed_dataset(assets_dir, checkpoint=tiny_dir, out=tmp_path / "out", concurrency=2)
