"""A LanceDB table of mixed media (images, sounds, a video, IMU, texts) searched by text and by sound.

    python examples/lancedb_media_search.py [DB_DIR]

Needs `pip install "imagebind-sdk[lancedb]"`. Sample files come from $IMAGEBIND_ASSETS
(else ../shared/assets next to the repository), the checkpoint from
$IMAGEBIND_CHECKPOINT (default: imagebind-huge). DB_DIR defaults to a temporary folder;
the table is reopened from disk before the second round of queries.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import lancedb
from lancedb.embeddings import get_registry
from lancedb.pydantic import LanceModel, Vector

import imagebind_sdk.integrations.lancedb  # noqa: F401  (registers "imagebind-sdk")

REPO = Path(__file__).resolve().parents[1]
FILES = ["dog_image.jpg", "car_image.jpg", "bird_image.jpg", "dog_audio.wav", "car_audio.wav",
         "bird_audio.wav", "video/wind_noise.mp4", "imu/imu1_2k.csv"]
TEXTS = ["a dog", "a car", "a bird"]


def show(table, query, label: str) -> None:
    print(f"{label}:")
    for rank, row in enumerate(table.search(query).metric("cosine").limit(3).to_list(), 1):
        distance = max(row["_distance"], 0.0)  # float rounding can give -1e-8 for an identical vector
        print(f"  {rank}. {Path(row['source']).name:<20} distance {distance:.4f}")


def main() -> None:
    assets = Path(os.environ.get("IMAGEBIND_ASSETS", REPO.parent / "shared" / "assets"))
    if not assets.is_dir():
        sys.exit(f"sample assets not found at {assets}; set IMAGEBIND_ASSETS")
    db_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="imagebind-lancedb-"))
    func = get_registry().get("imagebind-sdk").create(
        checkpoint=os.environ.get("IMAGEBIND_CHECKPOINT", "imagebind-huge"), device="cpu",
        kind="auto",  # the column mixes texts and file paths: each value's extension decides
    )

    class Media(LanceModel):
        source: str = func.SourceField()
        vector: Vector(func.ndims()) = func.VectorField()

    table = lancedb.connect(db_dir).create_table("media", schema=Media, mode="overwrite")
    table.add([{"source": str(assets / f)} for f in FILES] + [{"source": t} for t in TEXTS])
    print(f"indexed {table.count_rows()} rows in {db_dir}")
    show(table, "a dog", "text query 'a dog'")

    reopened = lancedb.connect(db_dir).open_table("media")  # the embedding function comes back from metadata
    show(reopened, {"audio": str(assets / "bird_audio.wav")}, "after reopening, audio query bird_audio.wav")


if __name__ == "__main__":
    main()
