"""Issue 9 acceptance: the bad-input corpus (~450 cases, generated at test time).

Every case runs in a worker subprocess holding the tiny checkpoint, under a timeout and an
RSS watchdog (corpus_runner.py). Asserted: 0 silent wrong results, 0 hangs, 0 cases over
1 GB above the baseline, 0 crashes (non-SDK exceptions), every refusal one line naming the
item, no valid input refused. ``pytest -s`` prints the totals; the JSON summary is written
to ``<pytest tmp>/corpus_summary.json`` (and to $IMAGEBIND_CORPUS_SUMMARY when set).

KNOWN_FAILING lists cases that fail on main until another issue-9 item lands; each names
its item and the file that must change. Do not weaken a case: when its fix is merged,
delete its line here (a KNOWN_FAILING case that passes is reported as a warning).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import warnings
from pathlib import Path

import pytest

from corpus_cases import all_cases
from corpus_framework import FAILURES, Case, CliFailure, Ctx, classify
from corpus_runner import run_cases

logger = logging.getLogger(__name__)

KNOWN_FAILING: dict[str, str] = {}


@pytest.fixture(scope="module")
def corpus(golden_dir: Path, assets_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    cases = all_cases()
    tmp = tmp_path_factory.mktemp("corpus")
    results = run_cases(cases.values(), tmp, golden_dir / "tiny", assets_dir)
    summary = _summary(results)
    text = json.dumps({"summary": summary, "cases": results}, indent=1)
    (tmp / "corpus_summary.json").write_text(text)
    if os.environ.get("IMAGEBIND_CORPUS_SUMMARY"):
        Path(os.environ["IMAGEBIND_CORPUS_SUMMARY"]).write_text(text)
    print(_table(summary, tmp / "corpus_summary.json"))  # shown with -s
    return results


def _summary(results: dict[str, dict]) -> dict:
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for record in results.values():
        by_kind[record["kind"]][record["status"]] += 1
    totals = collections.Counter(r["status"] for r in results.values())
    known = sorted(i for i, r in results.items() if r["status"] in FAILURES and i in KNOWN_FAILING)
    return {
        "cases": len(results),
        "totals": dict(totals),
        "by_kind": {k: dict(v) for k, v in sorted(by_kind.items())},
        "max_peak_mb": max(r["peak_mb"] for r in results.values()),
        "known_failing": known,
    }


def _table(summary: dict, path: Path) -> str:
    statuses = ["ok", "refused", *FAILURES]
    lines = [f"\nbad-input corpus: {summary['cases']} cases, max peak {summary['max_peak_mb']:.0f} MB above "
             f"baseline, {len(summary['known_failing'])} known failing; summary {path}",
             f"{'kind':<12}" + "".join(f"{s:>14}" for s in statuses)]
    for kind, counts in [*summary["by_kind"].items(), ("TOTAL", summary["totals"])]:
        lines.append(f"{kind:<12}" + "".join(f"{counts.get(s, 0):>14}" for s in statuses))
    return "\n".join(lines)


def test_corpus_nothing_silently_wrong(corpus: dict[str, dict]) -> None:
    failing = {i: r for i, r in corpus.items() if r["status"] in FAILURES}
    unexpected = {i: f"{r['status']}: {r['detail']}" for i, r in failing.items() if i not in KNOWN_FAILING}
    fixed = sorted(set(KNOWN_FAILING) - set(failing))
    if fixed:
        warnings.warn(f"KNOWN_FAILING cases now pass, delete them: {fixed}", stacklevel=1)
    assert not unexpected, "\n".join(f"{i}: {d}" for i, d in sorted(unexpected.items()))


def test_corpus_covers_every_kind_and_form(corpus: dict[str, dict]) -> None:
    kinds = {r["kind"] for r in corpus.values()}
    assert {"vision", "video", "audio", "depth", "thermal", "imu", "text", "options", "checkpoint",
            "index", "bulk", "cli"} <= kinds
    forms = {case_id.split("/")[1] for case_id in corpus}
    assert {"path", "bytes", "file", "numpy", "tensor", "pil", "dict", "tuple"} <= forms
    assert len(corpus) >= 300
    assert set(KNOWN_FAILING) <= set(corpus), sorted(set(KNOWN_FAILING) - set(corpus))


# -- the classifier itself (no subprocess) ---------------------------------------------

def _case(expect: str = "refuse", names: tuple[str, ...] = ("vision[0]",), misuse: bool = False) -> Case:
    return Case("unit/x", "vision", expect, lambda ctx: None, names=names, type_misuse=misuse)


def test_classifier_rules() -> None:
    import torch

    from imagebind_sdk import InputError

    ctx = Ctx(model=None, tmp=Path("."), assets=Path("."), tiny=Path("."))
    assert classify(_case(), ctx, exc=InputError("vision[0] (a.jpg): bad"))["status"] == "refused"
    assert classify(_case(), ctx, exc=InputError("vision[0]: a\nb"))["status"] == "bad_message"
    assert classify(_case(), ctx, exc=InputError("bad, no index"))["status"] == "bad_message"
    assert classify(_case(), ctx, exc=TypeError("vision[0]"))["status"] == "crash"
    assert classify(_case(misuse=True), ctx, exc=TypeError("vision[0]"))["status"] == "refused"
    assert classify(_case(), ctx, exc=json.JSONDecodeError("x", "doc", 0))["status"] == "crash"
    assert classify(_case(), ctx, value=torch.ones(1, 4))["status"] == "silent_wrong"  # must be refused
    assert classify(_case("ok"), ctx, value=torch.full((1, 4), float("nan")))["status"] == "silent_wrong"
    assert classify(_case("ok"), ctx, value=torch.ones(2, 4))["status"] == "silent_wrong"  # rows
    assert classify(_case("ok"), ctx, value=torch.ones(1, 4))["status"] == "ok"
    assert classify(_case("ok"), ctx, exc=InputError("vision[0]: x"))["status"] == "wrong_refusal"
    usage = "usage: imagebind-sdk [-h]\n       [--x]\nimagebind-sdk: error: vision[0] bad"
    assert classify(_case(), ctx, exc=CliFailure(2, usage))["status"] == "refused"
    assert classify(_case(), ctx, exc=CliFailure(1, "error: vision[0]\nmore"))["status"] == "bad_message"
