"""The search page over folders of media (``imagebind-sdk app``, ``imagebind-sdk serve --index``).

:mod:`.catalog` (items of bulk outputs), :mod:`.query` (request bodies -> weighted terms),
:mod:`.search` (terms -> one vector -> nearest items), :mod:`.media` (files and thumbnails
of indexed items only), :mod:`.routes` (the API), :mod:`.page` (the static page),
:mod:`.indexing` (the ``app`` command's bulk outputs), :mod:`.server` (the ASGI app).
Needs the ``app`` extra (FastAPI, uvicorn): ``pip install "imagebind-sdk[app]"``.
"""
