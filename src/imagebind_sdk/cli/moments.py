"""``imagebind-sdk moments``: where a text happens in long audio, video or IMU recordings."""

from __future__ import annotations

import argparse
from typing import Any

from ..kinds import ENCODER_OF
from .files import expand_inputs
from .loading import load_model
from .errors import UsageError
from .options import add_embed_options, add_input_flags, positive_int
from .printing import print_json

DESCRIPTION = """\
Embed long recordings window by window (audio and video: 2 s windows every 1 s;
IMU: 10 s every 5 s) and print the moments that best match a text query: windows
scoring above the threshold, merged into segments, best first, one line each:
HH:MM:SS.s–HH:MM:SS.s  score  source
"""

EPILOG = """\
examples:
  imagebind-sdk moments --audio talk.mp3 --text "applause" --top-k 5
  imagebind-sdk moments --video match.mp4 --text "a goal" --hop 0.5 --json
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``moments``."""
    p = subparsers.add_parser(
        "moments", parents=parents, help="find where a text happens in long recordings",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_input_flags(p, ("audio", "video", "imu"), title="recordings (each repeatable; a directory or glob expands)")
    p.add_argument("--text", metavar="TEXT", help="what to look for")
    add_input_flags(p, ("vision", "audio", "video"), dest="queries", prefix="query-",
                    title="or a query file instead of --text (e.g. --query-audio applause.wav)")
    p.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="moments to print (default: 5)")
    p.add_argument("--window", type=float, metavar="S", help="window length in seconds (default: per kind)")
    p.add_argument("--hop", type=float, metavar="S", help="seconds between window starts (default: per kind)")
    p.add_argument("--merge-gap", type=float, default=1.0, metavar="S",
                   help="merge matching windows at most S seconds apart (default: 1.0)")
    p.add_argument("--min-score", type=float, metavar="X",
                   help="cosine threshold (default: halfway from the median window score to the best)")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_embed_options(p, on_error=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Embed the text and the recordings' windows; print the best moments."""
    from ..windows.moments import format_timestamp

    if not args.inputs:
        raise UsageError("no recording: give --audio/--video/--imu files")
    if (args.text is None) == (len(args.queries) != 1):
        raise UsageError("give one query: --text TEXT or one --query-image/--query-audio/--query-video file")
    recordings = expand_inputs(args.inputs)
    query_kind = "text" if args.text is not None else args.queries[0][0]
    model = load_model(args, [ENCODER_OF[query_kind], *(ENCODER_OF[k] for k in recordings)])
    query = None
    if args.text is None:
        query = model.embed(**{query_kind: [args.queries[0][1]]})[query_kind][0]
    moments = model.find_moments(
        text=args.text, query=query, top_k=args.top_k, merge_gap_s=args.merge_gap, min_score=args.min_score,
        window_s=args.window, hop_s=args.hop, batch_size=args.batch_size, progress=args.progress, **recordings,
    )
    if args.json:
        print_json(moments)
        return 0
    for m in moments:
        span = f"{format_timestamp(m['start_s'])}–{format_timestamp(m['end_s'])}"
        print(f"{span}  {m['score']:.4f}  {m['source']}")
    return 0
