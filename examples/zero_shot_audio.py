"""Zero-shot audio classification: which label does each sound match best?

    python examples/zero_shot_audio.py [AUDIO_FILE_OR_DIR ...]

Without arguments it classifies dog/car/bird_audio.wav from the sample assets
($IMAGEBIND_ASSETS, else ../shared/assets next to the repository). Labels are
embedded through prompt templates ("the sound of a {}.") and averaged;
probabilities are softmax(text logit scale * cosine). The checkpoint comes from
$IMAGEBIND_CHECKPOINT (default: imagebind-huge).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imagebind_sdk import ImageBind

REPO = Path(__file__).resolve().parents[1]
LABELS = ["dog", "car", "bird", "rain", "crowd", "engine"]
AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3"}


def audio_files() -> list[Path]:
    """Files from the command line (directories expanded), else the three sample sounds."""
    if len(sys.argv) > 1:
        files: list[Path] = []
        for arg in map(Path, sys.argv[1:]):
            files += sorted(p for p in arg.iterdir() if p.suffix.lower() in AUDIO_EXTENSIONS) if arg.is_dir() else [arg]
        return files
    assets = Path(os.environ.get("IMAGEBIND_ASSETS", REPO.parent / "shared" / "assets"))
    if not assets.is_dir():
        sys.exit(f"sample assets not found at {assets}; pass audio files or set IMAGEBIND_ASSETS")
    return [assets / f"{name}_audio.wav" for name in ("dog", "car", "bird")]


def main() -> None:
    files = audio_files()
    model = ImageBind.load(os.environ.get("IMAGEBIND_CHECKPOINT", "imagebind-huge"), modalities=["text", "audio"])

    # Default audio templates ("the sound of a {}.", "a recording of a {}.", ...).
    result = model.zero_shot(LABELS, audio=files)
    print(f"Zero-shot audio classification, labels: {', '.join(LABELS)}")
    for source, top in zip(result.sources, result.top(3)):
        ranked = ", ".join(f"{label} {prob:.3f}" for label, prob in top)
        print(f"{Path(source).name}: {ranked}")

    # Custom templates replace the defaults; the label embeddings are cached per set.
    custom = model.zero_shot(LABELS, templates=["{} noise", "a {} can be heard"], audio=files)
    print("\nWith custom templates ['{} noise', 'a {} can be heard']:")
    for source, label in zip(custom.sources, custom.predictions):
        print(f"{Path(source).name}: {label}")


if __name__ == "__main__":
    main()
