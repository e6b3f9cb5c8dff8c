"""Bulk embedding of files: the run over a file list, its output store and format, windowed files."""
