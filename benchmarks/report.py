"""The one results table: SDK (float32, optionally int8) beside the reference, with ratios."""

from __future__ import annotations

from typing import Any

from common import CONTENTION

STARTUP_FIELDS = (
    ("python_start_s", "python start s"),
    ("import_s", "import s"),
    ("load_s", "load s"),
    ("first_forward_s", "first forward s"),
    ("total_s", "total s"),
    ("peak_rss_mb", "peak RSS MB"),
)
MODE_NAMES = {"model": "model only", "e2e": "end to end"}


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _ratio(sdk: float | None, ref: float | None, higher_is_better: bool) -> str:
    """Speed ratio: SDK/ref for rates, ref/SDK for times ("x" = times better); RSS as SDK/ref."""
    if sdk is None or ref is None or sdk <= 0 or ref <= 0:
        return "n/a"
    return f"{(sdk / ref if higher_is_better else ref / sdk):.2f}x"


def _rate(result: dict[str, Any] | None, mode: str, batch: int) -> tuple[float | None, str | None]:
    """items/s and the run count ("3", or "3*" when some kept runs were contended)."""
    if not result:
        return None, None
    for row in result.get("rows", []):
        if row["mode"] == mode and row["batch"] == batch:
            flag = row.get("contended") or row.get("other_busy", 0.0) >= CONTENTION
            return row["items_per_s"], f"{row['runs']}{'*' if flag else ''}"
    return None, None


def throughput_rows(results: dict[str, Any], variants: list[str]) -> list[list[str]]:
    rows = []
    for modality, by_impl in results["throughput"].items():
        for mode in ("model", "e2e"):
            for batch in results["settings"]["batches"]:
                sdk = [_rate(by_impl.get(v), mode, batch) for v in variants]
                ref, ref_runs = _rate(by_impl.get("ref"), mode, batch)
                runs = "/".join(str(r) for r in [*(n for _, n in sdk), ref_runs] if r is not None)
                label = f"{modality} {MODE_NAMES[mode]} b={batch} items/s"
                cells = [_fmt(v) for v, _ in sdk] + [_fmt(ref), _ratio(sdk[0][0], ref, True), runs]
                rows.append([label, *cells])
    return rows


def _startup_value(entry: dict[str, Any] | None, field: str) -> float | None:
    return None if not entry else entry["median"].get(field)


def startup_rows(results: dict[str, Any], variants: list[str]) -> list[list[str]]:
    rows = []
    ref = results["startup"].get("ref")
    for scope in ("text", "all"):
        for field, name in STARTUP_FIELDS:
            sdk = [_startup_value(results["startup"].get(f"{v}:{scope}"), field) for v in variants]
            ref_value = _startup_value(ref, field)
            better = "rss" not in field
            ratio = _ratio(sdk[0], ref_value, False) if better else _rss_ratio(sdk[0], ref_value)
            runs = str(results["startup"].get(f"{variants[0]}:{scope}", {}).get("runs", ""))
            label = f"startup {'text-only' if scope == 'text' else 'all six'} load: {name}"
            rows.append([label, *[_fmt(v) for v in sdk], _fmt(ref_value), ratio, runs])
    return rows


def _rss_ratio(sdk: float | None, ref: float | None) -> str:
    if sdk is None or ref is None or ref <= 0:
        return "n/a"
    return f"{sdk / ref:.2f} of ref"


def render(results: dict[str, Any]) -> str:
    """One plain-text table: throughput rows, then fresh-process startup rows."""
    variants = results["settings"]["sdk_variants"]
    header = ["measurement", *[f"SDK {v}" for v in variants], "reference", "SDK/ref", "runs"]
    body = throughput_rows(results, variants) + startup_rows(results, variants)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = "-+-".join("-" * w for w in widths)
    out = [_join(header, widths), line]
    previous = None
    for row in body:
        group = row[0].split(" ")[0] if not row[0].startswith("startup") else row[0].split(":")[0]
        if previous is not None and group != previous:
            out.append(line)
        out.append(_join(row, widths))
        previous = group
    return "\n".join(out)


def _join(cells: list[str], widths: list[int]) -> str:
    first = cells[0].ljust(widths[0])
    return " | ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:]))])


def describe_machine(meta: dict[str, Any]) -> str:
    flags = " ".join(meta.get("cpu_flags", [])) or "none of avx2/avx512/amx"
    return (
        f"{meta.get('date')}  CPU: {meta.get('cpu_model')} x{meta.get('cpu_count')} ({flags})  "
        f"torch {meta.get('torch_version')}  threads {meta.get('torch_threads')}  "
        f"reference: {meta.get('reference_status')}"
    )
