"""``python -m imagebind_sdk``: the ``imagebind-sdk`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
