"""Ray bytes datasets are identified by content, not by path and length (a real local cluster)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from imagebind_sdk.bulk.store import load_bulk_output
from imagebind_sdk.distributed import embed_dataset

TOL = dict(rtol=0, atol=1e-6)


def _bmp(seed: int) -> bytes:
    """A 64x48 noise image as BMP: uncompressed, so every seed gives the same length."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="BMP")
    return buffer.getvalue()


def test_bytes_rows_are_identified_by_their_hash(ray_cluster, tiny_model, tiny_dir, tmp_path: Path):
    import ray

    old, new = _bmp(0), _bmp(1)
    assert len(old) == len(new) and old != new
    out = tmp_path / "out"

    def run(rows: list[dict]) -> dict:
        return embed_dataset(ray.data.from_items(rows), checkpoint=tiny_dir, out=out, kind="vision",
                             batch_size=2).as_dict()

    assert run([{"path": "mem://a.bmp", "bytes": old}])["embedded"] == 1
    assert run([{"path": "mem://a.bmp", "bytes": old}])["already_done"] == 1  # the same bytes: done
    # Same path, same length, new content: embedded again, and the new vector is the one kept.
    assert run([{"path": "mem://a.bmp", "bytes": new}])["embedded"] == 1
    loaded = load_bulk_output(out)
    torch.testing.assert_close(loaded.vision, tiny_model.embed(vision=[new]).vision, **TOL)

    # One path twice in one run with different bytes: neither vector is kept as the path's, both count as failed.
    twice = run([{"path": "mem://b.bmp", "bytes": old}, {"path": "mem://b.bmp", "bytes": new}])
    assert (twice["embedded"], twice["failed"]) == (0, 2)
    loaded = load_bulk_output(out)
    assert loaded.sources["vision"] == ["mem://a.bmp"]
    (skipped,) = loaded.skipped["vision"]
    assert skipped.source == "mem://b.bmp" and "given 2 times in one job with 2 different contents" in skipped.error
