"""Cross-modal search: index a folder of images, query it with sounds and texts.

    python examples/cross_modal_search.py [IMAGE_DIR]

IMAGE_DIR defaults to the sample assets ($IMAGEBIND_ASSETS, else ../shared/assets
next to the repository); the queries are dog/car/bird_audio.wav from the assets and
three texts. The checkpoint comes from $IMAGEBIND_CHECKPOINT (default:
imagebind-huge). The index is saved and loaded back to show persistence.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from imagebind_sdk import ImageBind
from imagebind_sdk.retrieval.index import EmbeddingIndex

REPO = Path(__file__).resolve().parents[1]
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"}
TEXTS = ["a dog", "a car", "a bird"]


def folders() -> tuple[Path, Path]:
    """(image folder, assets folder holding the query sounds)."""
    assets = Path(os.environ.get("IMAGEBIND_ASSETS", REPO.parent / "shared" / "assets"))
    images = Path(sys.argv[1]) if len(sys.argv) > 1 else assets
    for path in (images, assets):
        if not path.is_dir():
            sys.exit(f"folder not found: {path}; pass an image folder or set IMAGEBIND_ASSETS")
    return images, assets


def build_index(model: ImageBind, folder: Path) -> EmbeddingIndex:
    """Embed every image of ``folder`` (top level) into an index keyed by file name."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    out = model.embed(vision=files, on_error="skip")  # unreadable images are left out
    index = EmbeddingIndex(dim=model.embedding_dim)
    names = [Path(s).name for s in out.sources["vision"]]
    index.add(out.vision, ids=names, metadata=[{"path": s} for s in out.sources["vision"]])
    print(f"indexed {len(index)} images from {folder}")
    return index


def show(title: str, hits: list[dict]) -> None:
    print(f"\n{title}")
    for rank, hit in enumerate(hits, start=1):
        print(f"  {rank}. {hit['id']:<24} {hit['score']:.4f}")


def main() -> None:
    images, assets = folders()
    model = ImageBind.load(os.environ.get("IMAGEBIND_CHECKPOINT", "imagebind-huge"),
                           modalities=["vision", "text", "audio"])
    index = build_index(model, images)
    with tempfile.TemporaryDirectory() as tmp:  # save and reload: a directory, no pickle
        index = EmbeddingIndex.load(index.save(Path(tmp) / "images.index"))

    sounds = [assets / f"{name}_audio.wav" for name in ("dog", "car", "bird")]
    queries = model.embed(audio=sounds, text=TEXTS)
    for source, hits in zip(queries.sources["audio"], index.search(queries.audio, top_k=3)):
        show(f"audio query {Path(source).name}:", hits)
    for text, hits in zip(TEXTS, index.search(queries.text, top_k=3)):
        show(f"text query {text!r}:", hits)


if __name__ == "__main__":
    main()
