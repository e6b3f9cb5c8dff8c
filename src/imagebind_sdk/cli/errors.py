"""The command line's own errors and their exit statuses (a leaf of the cli package)."""

from __future__ import annotations


class UsageError(Exception):
    """A command-line usage problem found after parsing (exit status 2)."""


class CliError(Exception):
    """A problem the command line finds itself, not a usage mistake (exit status 1)."""
