"""``create_search_app``: the server's ASGI app plus the search API and the page."""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Sequence

from ..server.app import create_app
from . import routes
from ..vectors.space import check_space
from .catalog import Catalog, output_dirs
from .media import Thumbnails
from .page import PageMiddleware
from .state import AppState

logger = logging.getLogger(__name__)


def create_search_app(model: Any, state: AppState, **settings: Any) -> Any:
    """``create_app(model, **settings)`` with the search routes over ``state``'s catalog and the page at ``/``.

    ``model`` is an ``ImageBind`` or a loader (see :func:`~imagebind_sdk.server.app.create_app`);
    a loader typically builds the catalog too and calls ``state.ready(catalog)``.
    """
    app = create_app(model, routers=[routes.router], **settings)
    app.state.search = state
    app.state.thumbnails = Thumbnails()
    app.add_middleware(PageMiddleware)  # added last: outermost, so the page loads without the key
    return app


def check_dim(model: Any, catalog: Catalog) -> None:
    """The model must give vectors of the catalog's dimension and space (the index's checkpoint
    and adapter; an output written before spaces is not checked)."""
    if catalog.dim is not None and int(model.embedding_dim) != catalog.dim:
        raise ValueError(f"the index holds {catalog.dim}-d vectors but the model gives {model.embedding_dim}-d ones; "
                         f"serve it with the checkpoint that built it ({catalog.checkpoint.get('source', 'unknown')})")
    check_space(catalog.index.space, model.space, what="serving this index with this model")


def index_checkpoint(root: str | os.PathLike[str]) -> str:
    """The checkpoint source recorded by the bulk output under ``root`` (``ValueError`` if unreadable)."""
    from ..bulk.format import read_info

    return str(read_info(output_dirs(root)[0])["checkpoint"]["source"])


def serving_index(load: Callable[[], Any], index_dirs: Sequence[str | os.PathLike[str]],
                  **settings: Any) -> Any:
    """The app for ``imagebind-sdk serve --index DIR``: loads the model, then reads the bulk output(s)."""
    for root in index_dirs:
        output_dirs(root)  # fail before the server starts on a folder that is not an output
    state = AppState()

    def load_all() -> Any:
        state.update(stage="loading", message="loading the model")
        try:
            model = load()
            state.update(stage="indexing", message="reading the index")
            catalog = Catalog.load(index_dirs)
            check_dim(model, catalog)
        except BaseException as exc:
            state.update(stage="failed", message=f"{type(exc).__name__}: {exc}")
            raise
        state.ready(catalog)
        return model

    return create_search_app(load_all, state, **settings)
