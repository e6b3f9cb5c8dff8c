#!/usr/bin/env python
"""CPU benchmarks of imagebind_sdk, optionally beside the reference implementation.

    python benchmarks/run.py --checkpoint DIR [--modalities text audio] [--out results.json] [--quick]
        [--reference-python /tmp/refvenv/bin/python]
    python benchmarks/run.py --make-random-huge /tmp/ib-huge

Every configuration runs in a fresh child process (this script with ``--child``), so
imports, loads and peak RSS are those of a process that does only that. See README.md.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import (  # noqa: E402
    CONTENTION,
    MAX_DISCARDS,
    MODALITIES,
    RESULT_MARKER,
    busy_fraction,
    cpu_info,
    emit,
    wait_until_idle,
)

logger = logging.getLogger("benchmarks")
CHILD_TIMEOUT_S = 3600
IDLE_WAIT_S = {"max": 60.0}  # set from --idle-wait


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="directory with config.json + model.safetensors (+ model.pth for the reference)")
    p.add_argument("--modalities", nargs="+", default=list(MODALITIES), choices=MODALITIES)
    p.add_argument("--out", default="benchmark_results.json", help="JSON results file")
    p.add_argument("--quick", action="store_true", help="short time budgets (tiny checkpoints, smoke runs)")
    p.add_argument("--batches", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument("--runs", type=int, default=3, help="timed runs per measurement after 1 warm-up (default 3)")
    p.add_argument("--budget", type=float, default=None, help="stop timing a measurement after this many s (>=1 run)")
    p.add_argument("--startup-runs", type=int, default=3, help="timed fresh processes per startup config")
    p.add_argument("--reference-python", help="python of a venv where `imagebind` (imagebind-unofficial) imports")
    p.add_argument("--compare-reference", action="store_true", help="also measure the reference (needs --reference-python)")
    p.add_argument("--idle-wait", type=float, default=60.0, help="wait up to this many s for idle cores per child")
    p.add_argument("--int8", choices=("auto", "on", "off"), default="auto", help="SDK int8 rows if load(quantize=) exists")
    p.add_argument("--make-random-huge", metavar="DIR", help="write a random-weight imagebind_huge checkpoint and exit")
    p.add_argument("--child", choices=("startup", "throughput"), help=argparse.SUPPRESS)
    p.add_argument("--impl", choices=("sdk", "ref"), default="sdk", help=argparse.SUPPRESS)
    p.add_argument("--scope", choices=("text", "all"), default="text", help=argparse.SUPPRESS)
    p.add_argument("--modality", choices=MODALITIES, help=argparse.SUPPRESS)
    p.add_argument("--quantize", default=None, help=argparse.SUPPRESS)
    p.add_argument("--dump", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child_main(args: argparse.Namespace) -> int:
    """Inside a child process: one measurement, one result line on stdout."""
    batches = [int(b) for b in args.batches.split(",")]
    if args.impl == "ref":
        import child_ref as impl
    else:
        import child_sdk as impl
    if args.child == "startup":
        if args.impl == "ref":
            result = impl.startup(args.checkpoint)
        else:
            scope = ["text"] if args.scope == "text" else None
            result = impl.startup(args.checkpoint, scope, args.quantize)
    else:
        extra = {"quantize": args.quantize} if args.impl == "sdk" else {}
        result = impl.throughput(args.checkpoint, args.modality, batches, args.runs, args.budget, args.dump, **extra)
    emit(result)
    return 0


def run_child(python: str, child_args: list[str]) -> dict[str, Any]:
    """Run this script with ``--child ...`` under ``python``; return its result line."""
    cmd = [python, str(HERE / "run.py"), "--child", *child_args]
    busy = wait_for_idle(IDLE_WAIT_S["max"])
    spawned = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            return {**json.loads(line[len(RESULT_MARKER) :]), "busy_before": busy, "spawned_wall": spawned}
    tail = "\n".join((proc.stderr or proc.stdout).splitlines()[-25:])
    raise RuntimeError(f"child failed (rc={proc.returncode}): {' '.join(cmd)}\n{tail}")


def wait_for_idle(max_wait_s: float) -> float:
    """Wait (up to ``max_wait_s``) until other processes leave the cores idle; return
    the busy share measured last (other people's jobs may share this machine)."""
    busy = busy_fraction()
    if busy >= CONTENTION:
        logger.info("cores %.0f%% busy: waiting up to %.0f s for them to go idle", 100 * busy, max_wait_s)
        busy = wait_until_idle(max_wait_s)
    return busy


def measure_startup(python: str, child_args: list[str], runs: int) -> dict[str, Any]:
    """1 warm-up process (page cache) + ``runs`` timed fresh processes; medians.
    A sample during which other processes used the cores is redone (a few times)."""
    samples: list[dict[str, Any]] = []
    warm, redone = False, 0
    while len(samples) < runs:
        result = run_child(python, ["startup", *child_args])
        result["total_s"] = result.pop("end_wall") - result.pop("spawned_wall")
        inside = result["import_s"] + result["load_s"] + result["first_forward_s"]
        result["python_start_s"] = result["total_s"] - inside
        if not warm:
            warm = True
        elif result["other_busy"] >= CONTENTION and redone < MAX_DISCARDS:
            redone += 1
        else:
            samples.append(result)
    numeric = [k for k, v in samples[0].items() if isinstance(v, (int, float))]
    median = {k: statistics.median(s[k] for s in samples) for k in numeric}
    return {"median": median, "samples": samples, "runs": runs, "redone": redone}


def sdk_variants(mode: str) -> list[str]:
    """float32 always; int8 when asked for and ``ImageBind.load`` takes ``quantize``."""
    if mode == "off":
        return ["fp32"]
    from imagebind_sdk import ImageBind

    has_int8 = "quantize" in inspect.signature(ImageBind.load).parameters
    if mode == "on" and not has_int8:
        raise SystemExit("--int8 on: this imagebind_sdk has no ImageBind.load(quantize=...)")
    return ["fp32", "int8"] if has_int8 else ["fp32"]


def _variant_args(variant: str) -> list[str]:
    return ["--quantize", "int8"] if variant == "int8" else []


def run_startup(args: argparse.Namespace, variants: list[str], ref_python: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    common = ["--checkpoint", args.checkpoint]
    for variant in variants:
        for scope in ("text", "all"):
            logger.info("startup: SDK %s, %s", variant, scope)
            child = ["--impl", "sdk", "--scope", scope, *common, *_variant_args(variant)]
            out[f"{variant}:{scope}"] = measure_startup(sys.executable, child, args.startup_runs)
    if ref_python:
        logger.info("startup: reference (always builds and loads all six encoders)")
        out["ref"] = measure_startup(ref_python, ["--impl", "ref", *common], args.startup_runs)
    return out


def run_throughput(
    args: argparse.Namespace, variants: list[str], ref_python: str | None, dump: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    timing = ["--batches", args.batches, "--runs", str(args.runs), "--budget", str(args.budget), "--dump", dump]
    for modality in args.modalities:
        out[modality] = {}
        base = ["throughput", "--checkpoint", args.checkpoint, "--modality", modality, *timing]
        for variant in variants:
            logger.info("throughput: %s, SDK %s", modality, variant)
            out[modality][variant] = run_child(sys.executable, [*base, "--impl", "sdk", *_variant_args(variant)])
        if ref_python:
            logger.info("throughput: %s, reference", modality)
            out[modality]["ref"] = run_child(ref_python, [*base, "--impl", "ref"])
    return out


def parity(dump: str, modalities: list[str], variants: list[str]) -> dict[str, Any]:
    """Cosine between SDK and reference outputs for the same inputs (a sanity check
    that both sides compute the same thing with the same weights)."""
    import torch

    out: dict[str, Any] = {}
    for modality in modalities:
        ref_path = Path(dump) / f"ref_{modality}.pt"
        if not ref_path.exists():
            continue
        ref = torch.load(ref_path, weights_only=True)
        for variant in variants:
            name = "sdk" if variant == "fp32" else f"sdk_{variant}"
            sdk = torch.load(Path(dump) / f"{name}_{modality}.pt", weights_only=True)
            for mode in set(sdk) & set(ref):
                cos = torch.nn.functional.cosine_similarity(sdk[mode].float(), ref[mode].float(), dim=-1)
                out[f"{modality}/{mode}/{variant}"] = float(cos.min())
    return out


def reference_python(args: argparse.Namespace) -> tuple[str | None, str]:
    """The reference interpreter if asked for and usable, and a status line."""
    if not (args.compare_reference or args.reference_python):
        return None, "not requested"
    if not args.reference_python:
        raise SystemExit("--compare-reference needs --reference-python /path/to/venv/bin/python")
    probe = "import warnings; warnings.filterwarnings('ignore'); import imagebind.models.imagebind_model, imagebind.data"
    proc = subprocess.run([args.reference_python, "-c", probe], capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        logger.warning("reference not importable with %s: %s", args.reference_python, reason)
        return None, f"not importable: {reason}"
    if not (Path(args.checkpoint) / "model.pth").is_file():
        logger.warning("no model.pth in %s: the reference needs it", args.checkpoint)
        return None, "no model.pth beside the checkpoint"
    return args.reference_python, f"imagebind-unofficial via {args.reference_python}"


def _reference_version(ref_python: str | None) -> str | None:
    if not ref_python:
        return None
    code = "import importlib.metadata as m; print(m.version('imagebind-unofficial'))"
    proc = subprocess.run([ref_python, "-c", code], capture_output=True, text=True)
    return proc.stdout.strip() or None


def machine_info(args: argparse.Namespace, ref_python: str | None, status: str) -> dict[str, Any]:
    import torch

    info = cpu_info()
    info.update(
        date=datetime.date.today().isoformat(),
        torch_version=torch.__version__,
        torch_threads=torch.get_num_threads(),
        python=sys.version.split()[0],
        checkpoint=args.checkpoint,
        reference_status=status,
        reference_version=_reference_version(ref_python),
    )
    return info


def apply_defaults(args: argparse.Namespace) -> None:
    if args.budget is None:
        args.budget = 2.0 if args.quick else 20.0
    if args.quick:
        args.startup_runs = min(args.startup_runs, 3)
    args.checkpoint = str(Path(args.checkpoint).resolve())


def orchestrate(args: argparse.Namespace) -> dict[str, Any]:
    apply_defaults(args)
    IDLE_WAIT_S["max"] = args.idle_wait
    ref_python, status = reference_python(args)
    variants = sdk_variants(args.int8)
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": machine_info(args, ref_python, status),
        "settings": {
            "batches": [int(b) for b in args.batches.split(",")],
            "runs": args.runs,
            "budget_s": args.budget,
            "startup_runs": args.startup_runs,
            "sdk_variants": variants,
            "modalities": args.modalities,
            "command": [Path(sys.executable).name, *sys.argv],
        },
    }
    with tempfile.TemporaryDirectory(prefix="ib-bench-") as dump:
        results["throughput"] = run_throughput(args, variants, ref_python, dump)
        results["parity_min_cosine"] = parity(dump, args.modalities, variants)
    results["startup"] = run_startup(args, variants, ref_python)
    results["meta"]["wall_s"] = time.perf_counter() - started
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    if args.make_random_huge:
        from make_huge import make_random_checkpoint

        make_random_checkpoint(Path(args.make_random_huge))
        return 0
    if not args.checkpoint:
        raise SystemExit("--checkpoint DIR is required (or --make-random-huge DIR)")
    import report

    results = orchestrate(args)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(report.describe_machine(results["meta"]))
    print(report.render(results))
    if results["parity_min_cosine"]:
        checks = ", ".join(f"{k} {v:.6f}" for k, v in results["parity_min_cosine"].items())
        print(f"SDK vs reference min cosine (same inputs): {checks}")
    print("runs: timed runs per side (SDK variants/reference); * = kept despite other processes using the cores")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
