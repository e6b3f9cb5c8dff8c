"""Find where a sound or a text happens in long recordings, window by window.

    python examples/find_moments.py [AUDIO_OR_VIDEO_FILE ...]

Without arguments it searches the sample assets ($IMAGEBIND_ASSETS, else
../shared/assets next to the repository): a 12 s speech-length WAV and a 10 s video.
Each recording is embedded as 2 s windows every second (each window is one of the
reference's clips), then the moments best matching a text, and a sound, are printed
as HH:MM:SS.s–HH:MM:SS.s  score  source. The checkpoint comes from
$IMAGEBIND_CHECKPOINT (default: imagebind-huge).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from imagebind_sdk import ImageBind
from imagebind_sdk.windows.moments import find_moments, format_timestamp

REPO = Path(__file__).resolve().parents[1]
VIDEO_EXTENSIONS = {".mp4", ".mov", ".mkv", ".webm", ".avi"}


def recordings() -> tuple[list[str], list[str], Path | None]:
    """(audio files, video files, assets folder or None) from the command line or the sample assets."""
    if len(sys.argv) > 1:
        files = [Path(a) for a in sys.argv[1:]]
        video = [str(f) for f in files if f.suffix.lower() in VIDEO_EXTENSIONS]
        return [str(f) for f in files if str(f) not in video], video, None
    assets = Path(os.environ.get("IMAGEBIND_ASSETS", REPO.parent / "shared" / "assets"))
    if not assets.is_dir():
        sys.exit(f"sample assets not found at {assets}; pass recordings or set IMAGEBIND_ASSETS")
    return [str(assets / "long_48k_mono_0.wav")], [str(assets / "video" / "wind_noise.mp4")], assets


def show(title: str, moments: list[dict]) -> None:
    print(title)
    for m in moments:
        span = f"{format_timestamp(m['start_s'])}–{format_timestamp(m['end_s'])}"
        print(f"  {span}  {m['score']:.4f}  {Path(m['source']).name}")


def main() -> None:
    audio, video, assets = recordings()
    modalities = ["text"] + (["audio"] if audio else []) + (["vision"] if video else [])
    model = ImageBind.load(os.environ.get("IMAGEBIND_CHECKPOINT", "imagebind-huge"), modalities=modalities)
    windows = model.embed_windows(audio=audio or None, video=video or None)
    for w in windows:
        print(f"{Path(w.source).name}: {len(w)} windows of {w.kind}, "
              f"{w.start_s[0].item():.1f}-{w.end_s[-1].item():.1f} s")
    show("'wind blowing':", find_moments(model.embed(text="wind blowing").text[0], windows, top_k=3))
    if assets is not None:  # a sound as the query: moments like a dog's bark
        bark = model.embed(audio=str(assets / "dog_audio.wav")).audio[0]
        show("sounds like dog_audio.wav:", find_moments(bark, windows, top_k=3))
    # The same in one call: embed the text and the windows, then search.
    if audio:
        show("model.find_moments(text='speech'):", model.find_moments(text="speech", audio=audio[0], top_k=2))


if __name__ == "__main__":
    main()
