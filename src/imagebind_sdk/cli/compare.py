"""``imagebind-sdk similarity`` and ``imagebind-sdk classify``."""

from __future__ import annotations

import argparse
import itertools
from typing import Any

from ..kinds import ENCODER_OF, INPUT_KINDS
from .files import expand_inputs
from .loading import load_model
from .errors import UsageError
from .options import add_embed_options, add_input_flags, add_text_overflow, positive_int, read_list
from .printing import display_name, format_table, print_json, short_label

SIM_DESCRIPTION = """\
Cosine similarity between inputs, printed as a table (rows x columns).

Simple scheme: give inputs with --text/--image/--audio/...; one table is printed
for every pair of different input kinds present (pairs with text first, e.g.
vision x text, audio x text, vision x audio, as in the official ImageBind README);
a single kind is compared with itself.
Explicit scheme: give the rows with --a-text/--a-image/... and the columns with
--b-text/--b-image/...; one table A x B.

--softmax prints softmax(logits, dim=-1) per row instead of cosines, with the
logits the official ImageBind README uses: ref_a @ ref_b.T, where the reference
model's outputs are unit vectors times each modality's logit scale (vision 1,
text ~100, audio 20, depth 5, thermal 10, imu 5). So the logit of a pair is
scale_a * scale_b * cosine, and `imagebind-sdk similarity --softmax` reproduces
the README's Vision x Text, Audio x Text and Vision x Audio matrices.
"""

CLS_DESCRIPTION = """\
Zero-shot classification: each input against text labels.

Labels are embedded through prompt templates ("a photo of a {}.") and averaged;
probabilities are softmax(text_logit_scale * cosine) over the labels, so each
input's probabilities sum to 1. Default templates depend on the input kind (see
imagebind_sdk.vectors.templates); --templates replaces them.
"""


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``similarity`` and ``classify``."""
    fmt = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser("similarity", parents=parents, help="cosine / softmax similarity tables",
                              description=SIM_DESCRIPTION, formatter_class=fmt,
                              epilog="examples:\n  imagebind-sdk similarity --image dog.jpg --image car.jpg "
                              "--text 'a dog' --text 'a car'\n  imagebind-sdk similarity --a-audio bark.wav "
                              "--b-image 'photos/*.jpg' --json\n")
    add_input_flags(p)
    add_input_flags(p, dest="inputs_a", prefix="a-", title="rows (explicit scheme)")
    add_input_flags(p, dest="inputs_b", prefix="b-", title="columns (explicit scheme)")
    p.add_argument("--softmax", action="store_true",
                   help="softmax over each row of the reference logits instead of cosines (see above)")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_embed_options(p, on_error=False)
    add_text_overflow(p)
    p.set_defaults(func=run_similarity)

    c = subparsers.add_parser("classify", parents=parents, help="zero-shot classification against text labels",
                              description=CLS_DESCRIPTION, formatter_class=fmt,
                              epilog="examples:\n  imagebind-sdk classify --audio clips/ --labels dog,car,bird\n"
                              "  imagebind-sdk classify --image cat.jpg --labels @labels.txt "
                              "--templates 'a photo of a {}.' --top-k 3 --json\n")
    add_input_flags(c, [k for k in INPUT_KINDS if k != "text"])
    c.add_argument("--labels", action="append", required=True, metavar="LIST",
                   help="comma-separated labels, or @FILE with one label per line (repeatable)")
    c.add_argument("--templates", action="append", metavar="TEMPLATE",
                   help="prompt template with one {} (repeatable), or @FILE with one per line")
    c.add_argument("--top-k", type=positive_int, default=5, metavar="K",
                   help="labels shown per input (default: 5; JSON always has all probabilities)")
    c.add_argument("--json", action="store_true", help="print JSON")
    add_embed_options(c)
    c.set_defaults(func=run_classify)


# -- similarity ------------------------------------------------------------------
def _sets(args: argparse.Namespace) -> list[tuple[dict[str, list[str]], dict[str, list[str]]]]:
    """The (rows, columns) input sets of each table to print."""
    if args.inputs_a or args.inputs_b:
        if args.inputs:
            raise UsageError("use either plain input flags or --a-*/--b-* flags, not both")
        if not (args.inputs_a and args.inputs_b):
            raise UsageError("the explicit scheme needs both --a-* (rows) and --b-* (columns) inputs")
        return [(expand_inputs(args.inputs_a), expand_inputs(args.inputs_b))]
    if not args.inputs:
        raise UsageError("nothing to compare: give inputs with --text/--image/--audio/... or --a-*/--b-*")
    inputs = expand_inputs(args.inputs)
    if len(inputs) == 1:
        return [(inputs, inputs)]
    order = [k for k in INPUT_KINDS if k != "text"] + ["text"]
    kinds = sorted(inputs, key=order.index)
    pairs = sorted(itertools.combinations(kinds, 2), key=lambda pair: pair[1] != "text")
    return [({a: inputs[a]}, {b: inputs[b]}) for a, b in pairs]


def _embed_all(model: Any, sets: list, batch_size: int, text_overflow: str) -> Any:
    """Embed every distinct input once: kind -> (unit rows, sources)."""
    merged: dict[str, list[str]] = {}
    for group in (g for pair in sets for g in pair):
        for kind, items in group.items():
            merged[kind] = list(dict.fromkeys(merged.get(kind, []) + list(items)))
    out = model.embed(**merged, batch_size=batch_size, text_overflow=text_overflow)
    return {k: (out[k], out.sources[k]) for k in merged}


def _side(group: dict[str, list[str]], embedded: dict, model: Any) -> tuple[Any, list, list[float], str]:
    """Rows of one side: unit vectors, (kind, source) labels, per-row logit scale, kind name."""
    import torch

    rows, labels, scales = [], [], []
    for kind, items in group.items():
        vectors, sources = embedded[kind]
        index = {s: i for i, s in enumerate(sources)}
        picked = [index[s] for s in items if s in index]
        rows.append(vectors[picked])
        labels += [(kind, sources[i]) for i in picked]
        scales += [model.logit_scale(ENCODER_OF[kind])] * len(picked)
    return torch.cat(rows), labels, scales, "+".join(group)


def _table(a: tuple, b: tuple, softmax: bool) -> dict[str, Any]:
    """One similarity table as a JSON-ready dict."""
    import torch

    cos = a[0] @ b[0].T
    if softmax:
        logits = torch.tensor(a[2])[:, None] * torch.tensor(b[2])[None, :] * cos
        cos = torch.softmax(logits, dim=-1)
    return {
        "rows": a[3], "columns": b[3], "values": "softmax" if softmax else "cosine",
        "row_sources": [s for _, s in a[1]], "column_sources": [s for _, s in b[1]],
        "row_modalities": [k for k, _ in a[1]], "column_modalities": [k for k, _ in b[1]],
        "matrix": cos.tolist(),
    }


def run_similarity(args: argparse.Namespace) -> int:
    """Embed both sides and print one table per pair."""
    sets = _sets(args)
    kinds = {k for pair in sets for g in pair for k in g}
    model = load_model(args, [ENCODER_OF[k] for k in INPUT_KINDS if k in kinds])
    embedded = _embed_all(model, sets, args.batch_size, args.text_overflow)
    tables = [_table(_side(a, embedded, model), _side(b, embedded, model), args.softmax) for a, b in sets]
    if args.json:
        print_json(tables)
        return 0
    for n, t in enumerate(tables):
        title = f"{display_name(t['rows'])} x {display_name(t['columns'])} ({t['values']})"
        rows = [short_label(k, s) for k, s in zip(t["row_modalities"], t["row_sources"])]
        cols = [short_label(k, s) for k, s in zip(t["column_modalities"], t["column_sources"])]
        print(("\n" if n else "") + title)
        print(format_table(rows, cols, t["matrix"]))
    return 0


# -- classify ----------------------------------------------------------------------
def _classify_inputs(args: argparse.Namespace) -> tuple[dict[str, list[str]], list[str], list[str] | None]:
    """Inputs, labels and templates, validated before the model is loaded."""
    from ..vectors.templates import templates_for

    if not args.inputs:
        raise UsageError("nothing to classify: give inputs with --image/--audio/--video/...")
    from ..vectors.zero_shot import MIN_LABELS

    templates = read_list(args.templates, split_commas=False) if args.templates else None
    if templates is not None:
        templates = list(templates_for("", templates))  # validates: exactly one {} each
    labels = list(dict.fromkeys(read_list(args.labels, split_commas=True)))
    if len(labels) < MIN_LABELS:  # a softmax over one label is always 1.0
        raise UsageError(f"--labels needs at least {MIN_LABELS} different labels (comma-separated), got {labels}")
    return expand_inputs(args.inputs), labels, templates


def _result_rows(kind: str, result: Any, top_k: int) -> list[dict[str, Any]]:
    """JSON rows of one kind's ZeroShotResult: top-k and every label's probability."""
    rows = []
    for src, top, probs in zip(result.sources, result.top(top_k), result.probs.tolist()):
        rows.append({
            "modality": kind, "source": src, "label": top[0][0], "prob": top[0][1],
            "top": [{"label": lab, "prob": p} for lab, p in top],
            "probs": dict(zip(result.labels, probs)),
        })
    return rows


def run_classify(args: argparse.Namespace) -> int:
    """Zero-shot classify every input; print the top-k labels of each."""
    inputs, labels, templates = _classify_inputs(args)
    model = load_model(args, ["text"] + [ENCODER_OF[k] for k in inputs])
    top_k = min(args.top_k, len(labels))
    rows: list[dict[str, Any]] = []
    for kind, items in inputs.items():
        result = model.zero_shot(labels, templates=templates, batch_size=args.batch_size,
                                 on_error=args.on_error, **{kind: items})
        rows += _result_rows(kind, result, top_k)
    if args.json:
        print_json({"labels": labels, "top_k": top_k, "results": rows})
        return 0
    width = max(len(lab) for lab in labels)
    for n, row in enumerate(rows):
        print(("\n" if n else "") + f"{row['source']} ({row['modality']})")
        for hit in row["top"]:
            print(f"  {hit['label']:<{width}}  {hit['prob']:.4f}")
    return 0
