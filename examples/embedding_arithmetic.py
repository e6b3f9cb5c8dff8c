"""Embedding arithmetic: an image plus a sound as one query.

    python examples/embedding_arithmetic.py [IMAGE AUDIO [IMAGE_DIR]]

The official ImageBind paper composes modalities by adding embeddings (e.g. a photo
of fruit + the sound of birds retrieves birds near fruit). Here the query is
``compose(image, audio)``, the normalised sum of the two unit vectors, and it
retrieves from a folder of images. Defaults: car_image.jpg + bird_audio.wav, and the
sample assets folder ($IMAGEBIND_ASSETS, else ../shared/assets next to the
repository). The checkpoint comes from $IMAGEBIND_CHECKPOINT (default: imagebind-huge).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imagebind_sdk import ImageBind
from imagebind_sdk.vectors.ops import compose, search

REPO = Path(__file__).resolve().parents[1]
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}


def arguments() -> tuple[Path, Path, Path]:
    """(query image, query audio, image folder to search)."""
    assets = Path(os.environ.get("IMAGEBIND_ASSETS", REPO.parent / "shared" / "assets"))
    image = Path(sys.argv[1]) if len(sys.argv) > 2 else assets / "car_image.jpg"
    audio = Path(sys.argv[2]) if len(sys.argv) > 2 else assets / "bird_audio.wav"
    folder = Path(sys.argv[3]) if len(sys.argv) > 3 else assets
    for path in (image, audio, folder):
        if not path.exists():
            sys.exit(f"not found: {path}; pass IMAGE AUDIO [IMAGE_DIR] or set IMAGEBIND_ASSETS")
    return image, audio, folder


def main() -> None:
    image, audio, folder = arguments()
    model = ImageBind.load(os.environ.get("IMAGEBIND_CHECKPOINT", "imagebind-huge"), modalities=["vision", "audio"])

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    corpus = model.embed(vision=files, on_error="skip")
    names = [Path(s).name for s in corpus.sources["vision"]]
    query = model.embed(vision=[image], audio=[audio])

    queries = {
        f"image {image.name}": query.vision[0],
        f"audio {audio.name}": query.audio[0],
        f"image {image.name} + audio {audio.name}": compose(query.vision[0], query.audio[0]),
        "same, audio weighted 2x": compose(query.vision[0], query.audio[0], weights=[1.0, 2.0]),
    }
    print(f"searching {len(names)} images in {folder}")
    for title, vector in queries.items():
        hits = search(vector, corpus.vision, top_k=3)[0]
        ranked = ", ".join(f"{names[h['corpus_id']]} {h['score']:.3f}" for h in hits)
        print(f"{title}: {ranked}")


if __name__ == "__main__":
    main()
