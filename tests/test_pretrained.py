"""list_pretrained(): the registry's aliases with repo, revision and size."""

from __future__ import annotations

import json
from pathlib import Path

import imagebind_sdk
from imagebind_sdk import Pretrained, list_pretrained
from imagebind_sdk.weights.hub import DEFAULT_SOURCE

MANIFEST = Path(__file__).resolve().parents[1] / "weights" / "manifest.json"


def test_lists_every_registry_alias():
    entries = list_pretrained()
    manifest = json.loads(MANIFEST.read_text())
    assert [p.alias for p in entries] == list(manifest)
    huge = next(p for p in entries if p.alias == DEFAULT_SOURCE)
    assert isinstance(huge, Pretrained) and "list_pretrained" in imagebind_sdk.__all__
    assert huge.repo_id == manifest[DEFAULT_SOURCE]["repo_id"] == "nielsr/imagebind-huge"
    assert huge.revision is not None and len(huge.revision) == 40  # pinned to a commit
    assert huge.size_bytes == manifest[DEFAULT_SOURCE]["size_bytes_approx"] and huge.size_gb == 4.8
    assert huge.description and huge.license
