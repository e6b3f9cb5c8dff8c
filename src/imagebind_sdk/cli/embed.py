"""``imagebind-sdk embed``: inputs by modality flags, or whole folders in bulk mode."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator

from ..kinds import ENCODER_OF, FILE_KINDS, infer_kind
from .environment import items_reported_here, ray_session
from .errors import CliError, UsageError
from .files import check_paths, expand_inputs
from .loading import load_model
from .options import (PROG, add_compact_options, add_embed_options, add_input_flags, add_text_overflow,
                      calibration_encoder, compact_options, non_negative_int)
from .printing import report, report_failures, report_files

FILE_FORMATS = (".npy", ".safetensors", ".jsonl", ".parquet")

DESCRIPTION = """\
Embed inputs into the joint space (unit vectors).

Flag mode: give inputs with modality flags (--text, --image, --audio, ...). Results
keep command-line order within each modality, each row with its source (the text or
the file path). Without --out, JSON lines {"modality", "source", "embedding"} go to
stdout. With --out the format follows the extension: .npy (one modality only),
.safetensors (Embeddings.save: one tensor per modality + sources), .jsonl, or
.parquet (needs pyarrow).

Bulk mode: give files, directories or globs as positional arguments. Each file's
kind comes from its extension (images -> vision, audio, video, .csv -> imu; depth
and thermal need --kind). With --out DIR (no file extension above) every batch
is written to DIR as it is done, and re-running the same command resumes.
"""

EPILOG = """\
examples:
  imagebind-sdk embed --text "a dog" --image dog.jpg --audio bark.wav
  imagebind-sdk embed --image 'photos/*.jpg' --out photos.npy
  imagebind-sdk embed --audio clips/ --on-error skip --out clips.safetensors
  imagebind-sdk embed photos/ --out photos.emb --num-workers 4
  imagebind-sdk embed photos/ --out /shared/photos.emb --engine ray --ray-address auto --gpus-per-actor 1
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``embed``."""
    p = subparsers.add_parser(
        "embed", parents=parents, help="embed texts and files (or whole folders) to vectors",
        description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="bulk mode: files, directories or globs, kinds inferred from extensions")
    add_input_flags(p)
    out = p.add_argument_group("output and batching")
    out.add_argument("--out", metavar="FILE_OR_DIR",
                     help=f"output file ({', '.join(FILE_FORMATS)}); in bulk mode also a directory")
    add_embed_options(out)
    add_text_overflow(out)
    bulk = p.add_argument_group("bulk mode")
    bulk.add_argument("--kind", "--modality", dest="kind", choices=FILE_KINDS,
                      help="read every file as this kind instead of inferring it from the extension")
    bulk.add_argument("--num-workers", type=non_negative_int, default=0, metavar="N",
                      help="processes decoding files in parallel (default: 0, in-process)")
    bulk.add_argument("--engine", choices=("local", "ray"), default="local",
                      help="local: this process (default); ray: Ray Data on a cluster "
                      '(pip install "imagebind-sdk[distributed]"; needs --out DIR)')
    bulk.add_argument("--ray-address", metavar="ADDR",
                      help="with --engine ray: the cluster to join (e.g. auto); default: a local Ray")
    bulk.add_argument("--concurrency", type=non_negative_int, default=None, metavar="N",
                      help="with --engine ray: encoding actors (default: autoscaling)")
    bulk.add_argument("--gpus-per-actor", type=float, default=0, metavar="G",
                      help="with --engine ray: GPUs per encoding actor (default: 0)")
    bulk.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                      help="with --out DIR, skip files already embedded there (default: on; "
                      "--no-resume refuses a non-empty DIR)")
    bulk.add_argument("--allow-other-space", action="store_true",
                      help="resume a DIR written by a model of another space (checkpoint, adapter) anyway")
    add_compact_options(bulk, "--out DIR")
    p.set_defaults(func=run)


def _check_out(out: str | None, n_kinds: int, *, bulk: bool) -> None:
    """Fail before loading the model when --out cannot be written."""
    if out is None:
        return
    suffix = Path(out).suffix.lower()
    if suffix not in FILE_FORMATS:
        if bulk:
            return  # an output directory for bulk.embed_files
        raise UsageError(f"--out {out}: unknown format {suffix or '(none)'}; use one of {', '.join(FILE_FORMATS)}")
    if suffix == ".npy" and n_kinds > 1:
        raise UsageError(f"--out {out}: .npy holds one modality but {n_kinds} were given; "
                         "use .safetensors, .jsonl or .parquet")
    if suffix == ".parquet":
        try:
            import pyarrow.parquet  # noqa: F401
        except ImportError as exc:  # missing or broken: not a usage mistake (exit status 1)
            raise CliError(f"--out {out}: writing .parquet needs pyarrow, which cannot be imported "
                           f"({exc}): pip install pyarrow (or use .npy, .safetensors or .jsonl)") from None


def _check_engine(args: argparse.Namespace) -> None:
    """Ray's options only with --engine ray, and Ray only for bulk mode: never silently ignored."""
    if args.engine == "ray" and not args.paths:
        raise UsageError("--engine ray embeds files given as PATH arguments (a folder, glob or files); "
                         "--text/--image/... inputs are embedded in this process: drop --engine ray, "
                         "or give the files as PATH")
    ray_only = {"--ray-address": args.ray_address is not None, "--concurrency": args.concurrency is not None,
                "--gpus-per-actor": args.gpus_per_actor != 0}
    given = [flag for flag, set_ in ray_only.items() if set_]
    if given and args.engine != "ray":
        raise UsageError(f"{', '.join(given)} applies to --engine ray only; add --engine ray or drop it")


def run(args: argparse.Namespace) -> int:
    """Dispatch to flag mode or bulk mode."""
    _check_engine(args)
    if args.paths:
        if args.inputs:
            raise UsageError("give either positional paths (bulk mode) or modality flags, not both")
        return run_bulk(args)
    if args.kind:
        raise UsageError("--kind applies to bulk mode (positional paths); use an input flag (--text, --image, ...) instead")
    if not args.inputs:
        raise UsageError("nothing to embed: give inputs with --text/--image/--audio/... or paths (bulk mode)")
    if args.embedding_dtype != "float32" or args.ranges is not None:
        raise UsageError("--embedding-dtype/--ranges set how bulk mode's --out DIR stores rows; give the files as "
                         "PATH arguments with --out DIR")
    inputs = expand_inputs(args.inputs)
    _check_out(args.out, len(inputs), bulk=False)
    model = load_model(args, [ENCODER_OF[k] for k in inputs])
    with items_reported_here():
        out = model.embed(**inputs, batch_size=args.batch_size, on_error=args.on_error,
                          text_overflow=args.text_overflow)
    for kind, skipped in out.skipped.items():
        for item in skipped:
            report(f"skipped {kind}[{item.index}] ({item.source}): {item.error}")
    write_embeddings(_reorder(out, list(inputs)), args.out)
    return 0


def _reorder(out: Any, kinds: list[str]) -> Any:
    """The same Embeddings with modalities in command-line order."""
    from ..vectors.embeddings import Embeddings

    present = [k for k in kinds if k in out]
    sources = out.sources
    skipped = {k: v for k, v in out.skipped.items() if v}
    return Embeddings({k: out[k] for k in present}, sources={k: sources[k] for k in present}, skipped=skipped)


def _records(emb: Any) -> Iterator[dict[str, Any]]:
    """One ``{"modality", "source", "embedding"}`` dict per row."""
    arrays = emb.numpy()
    sources = emb.sources
    for kind, array in arrays.items():
        for source, row in zip(sources[kind], array):
            yield {"modality": kind, "source": source, "embedding": [float(v) for v in row]}


def write_embeddings(emb: Any, out: str | None) -> None:
    """Write Embeddings to ``out`` by extension, or as JSON lines to stdout."""
    if out is None:
        for record in _records(emb):
            sys.stdout.write(json.dumps(record) + "\n")
        return
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        import numpy as np

        np.save(path, next(iter(emb.numpy().values())))
    elif suffix == ".safetensors":
        emb.save(path)
    elif suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for record in _records(emb):
                f.write(json.dumps(record) + "\n")
    elif suffix == ".parquet":
        _write_parquet(emb, path)
    else:  # _check_out rejects these earlier
        raise UsageError(f"--out {out}: unknown format {suffix}")
    counts = ", ".join(f"{k}: {v.shape[0]}" for k, v in emb.items())
    print(f"{PROG}: wrote {sum(v.shape[0] for v in emb.values())} embeddings ({counts}) to {path}",
          file=sys.stderr)


def _write_parquet(emb: Any, path: Path) -> None:
    """Columns modality (string), source (string), embedding (list<float32>)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records = list(_records(emb))
    table = pa.table({
        "modality": pa.array([r["modality"] for r in records], pa.string()),
        "source": pa.array([r["source"] for r in records], pa.string()),
        "embedding": pa.array([r["embedding"] for r in records], pa.list_(pa.float32())),
    })
    pq.write_table(table, path)


def _bulk_kinds(args: argparse.Namespace) -> list[str]:
    """The input kinds of the files bulk mode will embed (for choosing encoders)."""
    from ..bulk.files import list_files

    check_paths(args.paths)
    if args.kind:
        return [args.kind]
    files = list_files(args.paths)
    kinds = list(dict.fromkeys(k for k in (infer_kind(p) for p in files) if k is not None))
    if not kinds:
        raise ValueError(f"no files with a known extension in {', '.join(args.paths)} "
                         "(pass --kind to read them as one kind)")
    return kinds


def run_ray(args: argparse.Namespace) -> int:
    """Embed files with distributed.embed_dataset into --out DIR; report as the local engine does."""
    from .loading import checkpoint_of, load_options

    if args.out is None or Path(args.out).suffix.lower() in FILE_FORMATS:
        raise UsageError("--engine ray writes a folder: give --out DIR (no file extension)")
    if getattr(args, "adapter", None):
        raise UsageError("--engine ray does not take --adapter (its actors load the checkpoint alone); "
                         "use --engine local")
    check_paths(args.paths)
    paths = args.paths[0] if len(args.paths) == 1 else args.paths
    with ray_session(args.ray_address, verbose=args.verbose or args.debug):
        from ..distributed import embed_dataset

        summary = embed_dataset(
            paths, checkpoint=checkpoint_of(args), out=args.out, kind=args.kind,
            batch_size=args.batch_size, concurrency=args.concurrency or None,
            num_gpus_per_actor=args.gpus_per_actor, resume=args.resume, allow_other_space=args.allow_other_space,
            **compact_options(args), **load_options(args),
        )
    report_failures(summary.failed_files, summary.unsupported_files)
    counts = "  ".join(f"{k}: {v}" for k, v in summary.summary().items())
    print(f"{counts}  out: {os.fspath(args.out)}  seconds: {summary.seconds:.1f}")
    return 0


def run_bulk(args: argparse.Namespace) -> int:
    """Embed files with bulk.embed_files; stream to --out DIR or write a file at the end."""
    from ..bulk.files import embed_files

    if args.engine == "ray":
        return run_ray(args)
    to_dir = args.out is not None and Path(args.out).suffix.lower() not in FILE_FORMATS
    if not to_dir:
        _check_out(args.out, 1, bulk=True)  # .npy: the number of kinds is checked after embedding
    compact = compact_options(args)
    if compact["embedding_dtype"] != "float32" and not to_dir:
        raise UsageError(f"--embedding-dtype {compact['embedding_dtype']} sets how --out DIR stores rows; "
                         "give --out DIR (no file extension)")
    model = load_model(args, [ENCODER_OF[k] for k in _bulk_kinds(args)] + calibration_encoder(compact))
    paths = args.paths[0] if len(args.paths) == 1 else args.paths
    with items_reported_here():
        result = embed_files(
            model, paths, args.kind, batch_size=args.batch_size, num_workers=args.num_workers,
            out=args.out if to_dir else None, resume=args.resume, allow_other_space=args.allow_other_space,
            **compact,
        )
    report_files(result)
    if not to_dir:
        if args.out and Path(args.out).suffix.lower() == ".npy" and len(result.embeddings) > 1:
            raise UsageError(f"--out {args.out}: .npy holds one modality but the files are of "
                             f"{len(result.embeddings)} kinds; use .safetensors, .jsonl or .parquet")
        write_embeddings(result.embeddings, args.out)
    summary = "  ".join(f"{k}: {v}" for k, v in result.summary().items())
    print(summary + (f"  out: {os.fspath(args.out)}" if to_dir else ""),
          file=sys.stdout if to_dir else sys.stderr)
    return 0
