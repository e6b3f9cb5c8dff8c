"""HTTP serving for ImageBind (``pip install "imagebind-sdk[serve]"``; FastAPI + uvicorn).

Three API families on one port: Weaviate ``multi2vec-bind`` compatible (``/vectorize``,
``/meta``, ``/.well-known/*``), native (``/v1/embed``, ``/v1/zero-shot``) and
OpenAI-compatible text embeddings (``/v1/embeddings``), plus ``/metrics``. Importing
``imagebind_sdk`` does not import this package or FastAPI.

>>> from imagebind_sdk.server import create_app  # doctest: +SKIP
>>> app = create_app(model, max_batch_size=16, api_key="secret")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = 'serving needs FastAPI, uvicorn and prometheus-client: pip install "imagebind-sdk[serve]"'


def create_app(model: Any, **settings: Any) -> Any:
    """See :func:`imagebind_sdk.server.app.create_app`."""
    try:
        from .app import create_app as _create_app
    except ImportError as exc:  # fastapi / python-multipart missing
        raise ImportError(f"{INSTALL_HINT} ({exc})") from exc
    return _create_app(model, **settings)


__all__ = ["INSTALL_HINT", "create_app"]
