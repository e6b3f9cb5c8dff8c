"""Deprecated: the former grab-bag of CLI helpers, split by concern into .options,
.loading, .environment, .files and .printing. Kept only for command modules written
on other branches before the split (importing it warns once); remove once they are merged.
"""

from __future__ import annotations

from ..deprecation import warn_once
from .environment import offline_env
from .files import count_items, expand_inputs, expand_value
from .loading import CHECKPOINT_ENV, DEFAULT_CHECKPOINT, checkpoint_of, load_model, local_files_only
from .options import (
    KIND_FLAGS, PROG, InputAction, UsageError, add_embed_options, add_global_options, add_input_flags,
    non_negative_int, positive_int, read_list,
)
from .printing import LABEL_WIDTH, display_name, format_table, print_json, short_label

warn_once("imagebind_sdk.cli._common", "imagebind_sdk.cli.options/.loading/.environment/.files/.printing")

__all__ = [
    "CHECKPOINT_ENV", "DEFAULT_CHECKPOINT", "KIND_FLAGS", "LABEL_WIDTH", "PROG", "InputAction", "UsageError",
    "add_embed_options", "add_global_options", "add_input_flags", "checkpoint_of", "count_items", "display_name",
    "expand_inputs", "expand_value", "format_table", "load_model", "local_files_only", "non_negative_int",
    "offline_env", "positive_int", "print_json", "read_list", "short_label",
]
