"""The SDK version (a leaf module: any layer may read it; keep equal to pyproject.toml)."""

__version__ = "0.1.0"
