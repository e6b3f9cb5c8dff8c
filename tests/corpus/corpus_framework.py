"""Cases of the bad-input corpus and how one outcome is classified.

A case builds its input at run time (in a temporary folder), calls the SDK and
returns what it got. The worker classifies the outcome:

- ``refused``: an SDK error (``SDK_ERRORS``) whose message is one line and names the item;
- ``bad_message``: refused, but the message is several lines or does not name the item;
- ``ok``: finite vectors of the right shape (equal to the case's reference when it has one);
- ``silent_wrong``: non-finite / wrong-shape / wrong-valued vectors, an input that must be
  refused accepted, or a side effect that must not happen (e.g. pickle code ran);
- ``wrong_refusal``: a valid input refused;
- ``crash``: any other exception type (TypeError, KeyError, RecursionError, struct.error, ...).

The runner adds ``hang`` (over the case's timeout) and ``memory`` (peak RSS more than
``MEMORY_LIMIT_MB`` above the baseline of a process holding the tiny model).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

MEMORY_LIMIT_MB = 1024
TOLERANCE = 1e-5
FAILURES = ("bad_message", "silent_wrong", "wrong_refusal", "crash", "hang", "memory")
EXPECTS = ("refuse", "ok", "either")


class Violation(Exception):
    """Raised by a case when the SDK did something it must not (classified silent_wrong)."""


class CliFailure(Exception):
    """A CLI run that exited 1 or 2 without a traceback; the message is its stderr."""

    def __init__(self, code: int, stderr: str) -> None:
        super().__init__(stderr.strip())
        self.code = code


@dataclass
class Ctx:
    """What a case gets: the tiny model, a scratch folder, the sample assets."""

    model: Any
    tmp: Path
    assets: Path
    tiny: Path

    def file(self, name: str, data: bytes | str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)
        return path

    def embed(self, **kwargs: Any) -> Any:
        return self.model.embed(**kwargs)


@dataclass(frozen=True)
class Case:
    id: str  # "<kind>/<form>/<content>", unique
    kind: str  # input kind, or options / checkpoint / index / bulk / cli
    expect: str  # refuse | ok | either
    run: Callable[[Ctx], Any]
    names: tuple[str, ...] = ()  # every one must appear in the refusal message
    rows: int = 1  # vectors expected per returned kind when ok
    reference: Callable[[Ctx], torch.Tensor] | None = None
    timeout: float = 15.0
    type_misuse: bool = False  # a wrong Python type: TypeError is a proper refusal too
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.expect in EXPECTS, self.expect


def sdk_errors() -> tuple[type[BaseException], ...]:
    from imagebind_sdk import CheckpointError, InputError, WeightsNotFoundError

    return (InputError, CheckpointError, WeightsNotFoundError, ValueError, FileNotFoundError,
            IsADirectoryError, NotADirectoryError, PermissionError, CliFailure)


def _vectors(value: Any) -> dict[str, torch.Tensor] | None:
    """The vectors in a result (Embeddings, tensor, BulkResult), or None for other results."""
    if isinstance(value, torch.Tensor):
        return {"tensor": value}
    data = getattr(value, "data", None)
    if isinstance(data, dict) and all(isinstance(v, torch.Tensor) for v in data.values()):
        return dict(data)
    inner = getattr(value, "embeddings", None)
    return _vectors(inner) if inner is not None else None


def check_vectors(case: Case, ctx: Ctx, value: Any) -> str | None:
    """Why the returned vectors are wrong, or None when they are right."""
    vectors = _vectors(value)
    if vectors is None:
        return None
    dim = ctx.model.embedding_dim if ctx.model is not None else None
    for name, tensor in vectors.items():
        if tensor.ndim != 2 or tensor.shape[0] != case.rows or (dim and tensor.shape[1] != dim):
            return f"{name}: shape {tuple(tensor.shape)}, expected ({case.rows}, {dim})"
        if not bool(torch.isfinite(tensor).all()):
            return f"{name}: {int((~torch.isfinite(tensor)).sum())} non-finite values"
    if case.reference is not None:
        (tensor,) = vectors.values()
        ref = case.reference(ctx)
        diff = float((tensor - ref).abs().max())
        if diff > TOLERANCE:
            return f"differs from the reference by {diff:.3g} (> {TOLERANCE})"
    return None


def message_problem(case: Case, exc: BaseException) -> str | None:
    """Why a refusal's message is not acceptable (several lines, item not named), or None."""
    text = str(exc).strip()
    if isinstance(exc, CliFailure):
        lines = [line for line in text.splitlines() if line.strip()]
        # argparse (exit 2) prints its usage before the one error line.
        body = [line for line in lines if not line.startswith(("usage:", " "))] if exc.code == 2 else lines
        if len(body) > 1:
            return f"{len(body)} lines on stderr"
    elif "\n" in text:
        return f"{len(text.splitlines())} lines"
    if not text:
        return "empty message"
    missing = [name for name in case.names if name.lower() not in text.lower()]
    return f"does not name {missing}" if missing else None


def classify(case: Case, ctx: Ctx, value: Any = None, exc: BaseException | None = None) -> dict:
    """The outcome of one case as a JSON-able dict (status + detail)."""
    if exc is None:
        problem = check_vectors(case, ctx, value)
        if problem:
            return {"status": "silent_wrong", "detail": problem}
        if case.expect == "refuse":
            return {"status": "silent_wrong", "detail": "accepted an input that must be refused"}
        return {"status": "ok", "detail": ""}
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    detail = f"{type(exc).__name__}: {first}"
    if isinstance(exc, Violation):
        return {"status": "silent_wrong", "detail": str(exc)}
    allowed = sdk_errors() + ((TypeError,) if case.type_misuse else ())
    # Raw stdlib ValueErrors (a JSON or codec error) escaped unwrapped: not an SDK refusal.
    if isinstance(exc, (UnicodeError, json.JSONDecodeError)) or not isinstance(exc, allowed):
        return {"status": "crash", "detail": detail}
    if case.expect == "ok":
        return {"status": "wrong_refusal", "detail": detail}
    problem = message_problem(case, exc)
    if problem:
        return {"status": "bad_message", "detail": f"{problem}: {detail}"}
    return {"status": "refused", "detail": detail}


def write_json_line(stream: Any, record: dict) -> None:
    stream.write(json.dumps(record) + "\n")
    stream.flush()


def status_kb(key: str, pid: int | str = "self") -> int:
    """A /proc/<pid>/status field in kB (VmRSS, VmHWM); 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return 0
    return 0


def reset_peak() -> None:
    """Reset this process's VmHWM to its current RSS (Linux >= 4.0)."""
    with open(f"/proc/{os.getpid()}/clear_refs", "w") as f:
        f.write("5")
