"""Every Singer SDK internal the tap leans on, named in one place with the reason.

The SDK's public surface has no hook for these; each is used because the public route
would cost per-record work or lose the project's one-line errors. `tests/test_sdk_internals.py`
checks each one against the installed SDK and fails, naming it, if an upgrade changes it.
"""

from __future__ import annotations

from singer_sdk.configuration._dict_config import merge_missing_config_jsonschema
from singer_sdk.helpers._typing import _is_exclusive_boolean_type

__all__ = ["PRIVATE_HOOKS", "is_exclusive_boolean", "merge_missing_config_jsonschema"]

# The lean RECORD path (record_path.py) conforms booleans exactly as the SDK would; the SDK
# decides which properties are booleans with this helper and exports no public equivalent.
is_exclusive_boolean = _is_exclusive_boolean_type

# `merge_missing_config_jsonschema` (tap.py): how the SDK adds its built-in settings; the
# tap adds `emit_activate_version_messages` the same way so `--about` lists it alongside.

#: Private methods the tap overrides: (SDK class path, method, parameters it must take, why).
PRIVATE_HOOKS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    (
        "singer_sdk.streams.core:Stream",
        "_write_record_message",
        ("self", "record"),
        "the lean RECORD path writes many lines per write instead of one flush per line",
    ),
    (
        "singer_sdk.streams.core:Stream",
        "_write_state_message",
        ("self",),
        "gathered RECORD lines must reach stdout before the STATE that covers them",
    ),
    (
        "singer_sdk.streams.core:Stream",
        "_process_record",
        ("self", "record", "child_context", "partition_context"),
        "skips per-record child-context work: Calven's streams have no children",
    ),
    (
        "singer_sdk.streams.core:Stream",
        "_increment_stream_state",
        ("self", "latest_record", "context"),
        "the bookmark moves per completed window, never per record value",
    ),
    (
        "singer_sdk.plugin_base:PluginBase",
        "_validate_config",
        ("self", "raise_errors"),
        "config errors become one line naming the setting, not the SDK's schema dump",
    ),
)
