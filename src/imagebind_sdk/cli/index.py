"""``imagebind-sdk index build`` and ``imagebind-sdk search`` (alias ``index search``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..kinds import ENCODER_OF, FILE_KINDS, infer_kind
from .environment import items_reported_here
from .errors import CliError, UsageError
from .files import expand_inputs
from .loading import load_model
from .options import (add_compact_options, add_embed_options, add_input_flags, add_text_overflow, calibration_encoder,
                      compact_options, non_negative_int, positive_int)
from .printing import print_json, report_files, short_label

BUILD_DESCRIPTION = """\
Embed the files of a directory into an EmbeddingIndex saved at --out.

Each file's kind comes from its extension (images -> vision, audio, video,
.csv -> imu); --kind reads every file as one kind (needed for depth and
thermal images). Row ids are paths relative to DIR; each row's metadata is
{"path": absolute path, "modality": kind}. Files that cannot be read are reported
on stderr and left out.
"""

SEARCH_USAGE = (
    "imagebind-sdk [global options] {cmd} INDEX [--text TEXT ...] [--image PATH ...] [--audio PATH ...]\n"
    "       [--video/--depth/--thermal/--imu PATH ...] [--top-k K] [--json] [--batch-size N]\n"
    "(INDEX first: the query flags take all values up to the next option)"
)

SEARCH_DESCRIPTION = """\
Search a saved EmbeddingIndex with query inputs of any kind (cross-modal: e.g.
--audio bark.wav against an index of images). Prints the top-k rows per query
with their cosine scores.
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``index`` (with ``build`` and ``search``) and top-level ``search``."""
    fmt = argparse.RawDescriptionHelpFormatter
    idx = subparsers.add_parser("index", parents=parents, help="build or search an embedding index",
                                description="Build an EmbeddingIndex from a folder, or search one.")
    sub = idx.add_subparsers(dest="index_command", metavar="{build,search}", required=True)
    b = sub.add_parser("build", parents=parents, help="embed a directory into an index", description=BUILD_DESCRIPTION,
                       formatter_class=fmt, epilog="example:\n  imagebind-sdk index build photos/ --out photos.index\n")
    b.add_argument("directory", metavar="DIR", help="directory of files to index (walked recursively)")
    b.add_argument("--out", required=True, metavar="INDEX", help="index directory to write")
    b.add_argument("--kind", "--modality", dest="kind", choices=FILE_KINDS,
                   help="read every file as this kind (--modality: its 0.1 name)")
    b.add_argument("--num-workers", type=non_negative_int, default=0, metavar="N",
                   help="processes decoding files in parallel (default: 0)")
    add_embed_options(b, on_error=False)
    add_compact_options(b, "the index")
    b.set_defaults(func=run_build)
    for parser, cmd in ((sub, "index search"), (subparsers, "search")):
        s = parser.add_parser("search", parents=parents, help="search an index with text/image/audio/... queries",
                              description=SEARCH_DESCRIPTION, formatter_class=fmt, usage=SEARCH_USAGE.format(cmd=cmd),
                              epilog="example:\n  imagebind-sdk search photos.index --audio bark.wav "
                              "--text 'a dog' --top-k 5\n")
        _search_args(s)


def _search_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("index", metavar="INDEX", help="index directory written by `index build`")
    add_input_flags(s, title="queries (each repeatable; a directory or glob expands to its files)")
    s.add_argument("--top-k", type=positive_int, default=5, metavar="K", help="hits per query (default: 5)")
    s.add_argument("--compose", action="store_true",
                   help="search with ONE query combining all inputs (normalised sum of their unit vectors, "
                        "e.g. --image beach.jpg --audio waves.wav)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.add_argument("--allow-other-space", action="store_true",
                   help="search even if the index was built by a model of another space (checkpoint, adapter)")
    add_embed_options(s, on_error=False)
    add_text_overflow(s)
    s.set_defaults(func=run_search)


def _kinds_in(directory: str, kind: str | None) -> list[str]:
    """The input kinds of the files in ``directory`` (to load only their encoders)."""
    from ..bulk.files import list_files

    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no such directory: {directory}")
    if kind:
        return [kind]
    kinds = list(dict.fromkeys(k for k in map(infer_kind, list_files(directory)) if k is not None))
    if not kinds:
        raise ValueError(f"no files with a known extension in {directory} (pass --kind to read them as one kind)")
    return kinds


def _rows(result: Any, directory: str) -> list[tuple[str, str, str, Any]]:
    """(relative id, absolute path, kind, vector) per embedded file, sorted by id."""
    emb = result.embeddings
    root = os.path.abspath(directory)
    rows = []
    for kind in emb:
        for path, vector in zip(emb.sources[kind], emb[kind]):
            rows.append((os.path.relpath(path, root).replace(os.sep, "/"), path, kind, vector))
    return sorted(rows, key=lambda r: r[0])


def run_build(args: argparse.Namespace) -> int:
    """Embed a directory with bulk.embed_files and save it as an EmbeddingIndex."""
    import torch

    from ..bulk.files import embed_files
    from ..retrieval.index import EmbeddingIndex

    compact = compact_options(args)
    model = load_model(args, [ENCODER_OF[k] for k in _kinds_in(args.directory, args.kind)] + calibration_encoder(compact))
    if calibration_encoder(compact):
        from ..vectors.compact import calibrate

        compact["ranges"] = calibrate(model)  # the model's fixed ranges (needs its text encoder)
    with items_reported_here():
        result = embed_files(model, args.directory, args.kind, batch_size=args.batch_size,
                             num_workers=args.num_workers)
    report_files(result)
    rows = _rows(result, args.directory)
    if not rows:
        raise ValueError(f"no file of {args.directory} could be embedded; nothing to index")
    index = EmbeddingIndex(dim=model.embedding_dim, space=model.space, **compact)
    index.add(torch.stack([r[3] for r in rows]), ids=[r[0] for r in rows],
              metadata=[{"path": r[1], "modality": r[2]} for r in rows])
    index.save(args.out)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r[2]] = counts.get(r[2], 0) + 1
    per_kind = ", ".join(f"{k}: {v}" for k, v in counts.items())
    print(f"indexed {len(rows)} files ({per_kind}) into {args.out}; "
          f"failed: {len(result.failed)}, unsupported: {len(result.unsupported)}")
    return 0


def _load_index(path: str) -> Any:
    """EmbeddingIndex.load; an unreadable index file is reported with the index's path."""
    from ..retrieval.index import EmbeddingIndex

    try:
        return EmbeddingIndex.load(path)
    except (RecursionError, MemoryError, ValueError, KeyError, TypeError) as exc:
        raise CliError(f"{path}: cannot read this index ({type(exc).__name__}: {exc})") from exc


def run_search(args: argparse.Namespace) -> int:
    """Embed the queries and print the best rows of the index for each."""
    index = _load_index(args.index)  # fail fast, before the model loads
    if not args.inputs:
        raise UsageError("no query: give --text/--image/--audio/... inputs")
    queries = expand_inputs(args.inputs)
    model = load_model(args, [ENCODER_OF[k] for k in queries])
    out = model.embed(**queries, batch_size=args.batch_size, text_overflow=args.text_overflow)
    rows = [(kind, source, vector) for kind in queries for source, vector in zip(out.sources[kind], out[kind])]
    if args.compose:
        rows = [_composed(rows)]
    results = []
    for kind, source, vector in rows:
        hits = index.search(vector, top_k=args.top_k, space=out.space, allow_other_space=args.allow_other_space)[0]
        results.append({
            "query": {"modality": kind, "source": source},
            "hits": [{"rank": n, "id": h["id"], "score": h["score"], "metadata": h["metadata"]}
                     for n, h in enumerate(hits, start=1)],
        })
    if args.json:
        print_json(results)
        return 0
    for n, r in enumerate(results):
        q = r["query"]
        shown_as = "text" if "+" in q["modality"] else q["modality"]  # a composed query: every source, not a basename
        print(("\n" if n else "") + f"query ({q['modality']}): {short_label(shown_as, q['source'], 60)}")
        for h in r["hits"]:
            kind = h["metadata"].get("modality", "")
            print(f"  {h['rank']:>3}  {h['score']:.4f}  {h['id']}" + (f"  [{kind}]" if kind else ""))
    return 0


def _composed(rows: list[tuple[str, str, Any]]) -> tuple[str, str, Any]:
    """``--compose``: every query as one (kinds joined by "+", sources by " + ", ops.compose vector)."""
    from ..vectors.ops import compose

    if len(rows) < 2:
        raise UsageError(f"--compose combines several queries, got {len(rows)}")
    kinds = "+".join(dict.fromkeys(kind for kind, _, _ in rows))
    return kinds, " + ".join(source for _, source, _ in rows), compose(*(vector for _, _, vector in rows))
