"""Resolving a checkpoint source to local files: registry alias, Hub repo, directory or file.

Downloads go through ``huggingface_hub.hf_hub_download`` and its cache, so
``revision``, ``cache_dir``, ``local_files_only`` and ``HF_HUB_OFFLINE`` behave as
everywhere else in the ecosystem. The registry of known checkpoints is the package
file ``assets/checkpoints.json`` (mirrored at ``weights/manifest.json`` in the repo).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from .checkpoint import INDEX_NAME, PICKLE_SUFFIXES, SAFETENSORS_SUFFIXES
from ..model.config import ImageBindConfig

logger = logging.getLogger(__name__)

DEFAULT_SOURCE = "imagebind-huge"
CONFIG_NAME = "config.json"
# One request, no retries, this long at most, tells "no network" apart (see probe_hub).
PROBE_TIMEOUT_S = 4.0
# Files looked for in a Hub repo or a directory, most preferred first.
WEIGHT_CANDIDATES = (INDEX_NAME, "model.safetensors", "imagebind_huge.pth", "model.pth")


class WeightsNotFoundError(FileNotFoundError):
    """The checkpoint is neither on disk nor in the cache, and may not be downloaded."""


@dataclass
class ResolvedCheckpoint:
    """Local files of a checkpoint: config and the weight file(s) to read."""

    config: ImageBindConfig
    weight_files: list[Path]
    source: str
    details: dict[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=1)
def registry() -> dict[str, dict[str, Any]]:
    """Known checkpoints by alias (package data ``assets/checkpoints.json``)."""
    text = resources.files("imagebind_sdk").joinpath("assets/checkpoints.json").read_text("utf-8")
    return json.loads(text)


def offline_mode(local_files_only: bool | None) -> bool:
    if local_files_only is not None:
        return local_files_only
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _how_to_get(source: str, suggest_download: bool = True) -> str:
    """One line: the weights are missing, and the ways to get them."""
    entry = registry().get(source, {})
    ways = []
    if suggest_download:  # never suggest the very command that just failed
        ways.append(f"run `imagebind-sdk download {source}` with internet")
    if entry.get("official_url"):
        ways.append(f"download {entry['official_url']} and pass its path to ImageBind.load()")
    ways.append("pass a local directory holding config.json + model.safetensors (or a .pth file)")
    return f"the weights of {source!r} are not available locally: " + ", or ".join(ways)


def _present(path: Path) -> bool:
    """The name exists, whatever it is (a FIFO or a link loop too): reading it reports what is wrong."""
    return path.is_symlink() or path.exists()


def _config_for(directory: Path | None, preset: str = "imagebind_huge") -> ImageBindConfig:
    if directory is not None and _present(directory / CONFIG_NAME):
        return ImageBindConfig.from_json(directory / CONFIG_NAME)
    logger.info("no %s beside the weights: using the %s preset", CONFIG_NAME, preset)
    return ImageBindConfig.preset(preset)


def resolve_local(path: Path) -> ResolvedCheckpoint:
    """A checkpoint file or a directory holding one (config from a sibling config.json)."""
    if path.is_dir():
        for name in WEIGHT_CANDIDATES:
            if _present(path / name):
                return ResolvedCheckpoint(_config_for(path), [path / name], str(path))
        found = sorted(p.name for p in path.iterdir() if p.suffix in SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)
        if len(found) == 1:
            return ResolvedCheckpoint(_config_for(path), [path / found[0]], str(path))
        raise WeightsNotFoundError(
            f"{path}: no checkpoint found (looked for {', '.join(WEIGHT_CANDIDATES)}"
            + (f"; several candidates: {found}" if found else "")
            + ")"
        )
    if _present(path):  # a file; checkpoint.py refuses what is not a regular one
        return ResolvedCheckpoint(_config_for(path.parent), [path], str(path))
    raise WeightsNotFoundError(f"no such checkpoint file or directory: {path}")


def _download(repo_id: str, filename: str, kwargs: dict[str, Any]) -> Path | None:
    """The local path of one repo file, or None if it is not in the repo or the cache.

    Raises WeightsNotFoundError only through the caller, which knows whether any
    weight file was found. (In huggingface_hub >= 1.0 "not cached" is a subclass of
    "not in the repo", so both are caught here.) When the Hub turns out to be
    unreachable, ``kwargs`` switches to ``local_files_only=True``: every further file
    is looked up in the cache at once instead of after another ~20 s of retries.
    """
    # Imported here, not at module level: local checkpoints never need huggingface_hub
    # (it adds ~0.1 s to the start-up of every process).
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(repo_id, filename, **kwargs))
    except (EntryNotFoundError, LocalEntryNotFoundError) as exc:
        logger.debug("%s/%s: %s", repo_id, filename, exc)
        if isinstance(exc, LocalEntryNotFoundError) and not kwargs.get("local_files_only"):
            logger.info("the Hugging Face Hub is unreachable; looking for %s in the cache only", repo_id)
            kwargs["local_files_only"] = True
        return None


def probe_hub(repo_id: str, filename: str, revision: str | None) -> str | None:
    """One request, no retries: None when the Hub answers for this repo, else why not.

    huggingface_hub retries a download 5 times with back-off when the network is
    down (~27 s per file, with a log line per try); asking once first turns "no
    network" into one clear error within :data:`PROBE_TIMEOUT_S`. A repo that does
    not exist raises at once: no cache can hold it either.
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        get_hf_file_metadata(hf_hub_url(repo_id, filename, revision=revision), timeout=PROBE_TIMEOUT_S)
    except GatedRepoError as exc:
        raise WeightsNotFoundError(f"{repo_id}: the repository is gated; accept its terms and log in") from exc
    except RepositoryNotFoundError as exc:
        raise WeightsNotFoundError(
            f"{repo_id}: no such repository on the Hugging Face Hub (or it is private: log in with `hf auth login`)"
        ) from exc
    except RevisionNotFoundError as exc:
        raise WeightsNotFoundError(f"{repo_id}: no such revision {revision!r}") from exc
    except EntryNotFoundError:
        return None  # the repo is there; other candidate files may be
    except HfHubHTTPError as exc:
        return f"the Hub answered {exc.response.status_code}" if exc.response is not None else str(exc)
    except Exception as exc:  # connection refused, DNS failure, timeout: the transport's own classes
        return f"{type(exc).__name__}: {exc}"
    return None


def resolve_hub(
    repo_id: str,
    *,
    modalities: Iterable[str] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    alias: str | None = None,
    suggest_download: bool = True,
) -> ResolvedCheckpoint:
    """Fetch (or find in the cache) config and weights of a Hub repo.

    With per-modality shards only the shards of ``modalities`` are fetched.
    """
    entry = registry().get(alias or "", {})
    offline = offline_mode(local_files_only)
    kwargs = dict(revision=revision or entry.get("revision"), cache_dir=cache_dir, local_files_only=offline)
    candidates = [entry["weights"]] if entry.get("weights") else list(WEIGHT_CANDIDATES)
    unreachable = None if offline else probe_hub(repo_id, candidates[0], kwargs["revision"])
    if unreachable:
        logger.info("the Hugging Face Hub is unreachable (%s); looking for %s in the cache only", unreachable, repo_id)
        kwargs["local_files_only"] = True
    weights = next((p for p in (_download(repo_id, n, kwargs) for n in candidates) if p is not None), None)
    if weights is None:
        how = _how_to_get(alias or repo_id, suggest_download and not unreachable)
        if unreachable:
            raise WeightsNotFoundError(f"cannot reach the Hugging Face Hub ({unreachable}); {how}")
        if offline:
            raise WeightsNotFoundError(how)
        raise WeightsNotFoundError(f"{repo_id}: none of {candidates} is in the repository; {how}")
    config_path = _download(repo_id, entry.get("config", CONFIG_NAME), kwargs)
    files = [weights]
    if weights.name == INDEX_NAME:
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            files = _fetch_shards(repo_id, weights, modalities, kwargs)
        except LocalEntryNotFoundError as exc:
            raise WeightsNotFoundError(_how_to_get(alias or repo_id, suggest_download)) from exc
    config = ImageBindConfig.from_json(config_path) if config_path else _config_for(None, entry.get("preset", "imagebind_huge"))
    return ResolvedCheckpoint(config, files, alias or repo_id, {"repo_id": repo_id, "revision": kwargs["revision"]})


def _fetch_shards(repo_id: str, index_path: Path, modalities: Iterable[str] | None, kwargs: dict) -> list[Path]:
    """Download only the shards holding the requested modalities.

    Returns the index itself: shards sit beside it in the same cache snapshot, so
    its relative file names resolve, and only the needed shards are ever opened.
    """
    from huggingface_hub import hf_hub_download

    from .keymap import modality_of  # local: keymap pulls in torch only when sharding is used

    weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
    wanted = set(modalities) if modalities is not None else None
    needed = sorted({f for k, f in weight_map.items() if wanted is None or modality_of(k) in wanted})
    for name in needed:
        hf_hub_download(repo_id, name, **kwargs)
    return [index_path]


def resolve(
    source: str | os.PathLike[str] = DEFAULT_SOURCE,
    *,
    modalities: Iterable[str] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_files_only: bool | None = None,
    suggest_download: bool = True,
) -> ResolvedCheckpoint:
    """Alias from the registry, existing local path, or Hub repo id -> local files.

    ``suggest_download=False`` (the ``download`` command) keeps the error from
    suggesting ``imagebind-sdk download``, the command that just failed.
    """
    text = os.fspath(source)
    if text in registry():
        entry = registry()[text]
        return resolve_hub(
            entry["repo_id"], modalities=modalities, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only, alias=text, suggest_download=suggest_download,
        )
    path = Path(text).expanduser()
    if _present(path):
        return resolve_local(path)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return resolve_hub(
            text, modalities=modalities, revision=revision, cache_dir=cache_dir,
            local_files_only=local_files_only, suggest_download=suggest_download,
        )
    raise WeightsNotFoundError(
        f"unknown checkpoint {text!r}: not a known alias ({', '.join(registry())}), "
        "not an existing file or directory, and not a Hub repo id (owner/name)"
    )
