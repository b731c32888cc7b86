"""Every Singer SDK internal the tap leans on, in one place, each with the reason.

The SDK's public surface has no hook for these: each private method is overridden here,
once, and handed to a public method of the tap's own (`write_record`, `flush_records`,
`check_config`, `on_termination`), so no other module names an SDK internal.
`tests/test_sdk_internals.py` checks each one against the installed SDK and fails, naming
it, if an upgrade changes it.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import FrameType

from singer_sdk import Stream, Tap
from singer_sdk.configuration._dict_config import merge_missing_config_jsonschema
from singer_sdk.helpers._batch import BaseBatchFileEncoding, BatchConfig
from singer_sdk.helpers._typing import _is_exclusive_boolean_type
from singer_sdk.helpers.types import Context

from tap_calven.errors import ConfigError
from tap_calven.types import Record

__all__ = [
    "PRIVATE_ATTRIBUTES",
    "PRIVATE_CALLS",
    "PRIVATE_HOOKS",
    "BaseBatchFileEncoding",
    "BatchConfig",
    "StreamHooks",
    "TapHooks",
    "is_exclusive_boolean",
    "mark_state_unflushed",
    "merge_missing_config_jsonschema",
    "stream_version",
    "unwritten_records",
]

# The lean RECORD path (writer.py) conforms booleans exactly as the SDK would; the SDK
# decides which properties are booleans with this helper and exports no public equivalent.
is_exclusive_boolean = _is_exclusive_boolean_type

# `BatchConfig`, `BaseBatchFileEncoding`: the types of `Stream.get_batches`, a public hook
# whose parameter types the SDK exports only from a private module.

# `merge_missing_config_jsonschema` (tap.py): how the SDK adds its built-in settings; the
# tap adds `emit_activate_version_messages` the same way so `--about` lists it alongside.


def stream_version(stream: Stream) -> int | None:
    """The `version` the SDK puts in this sync's RECORD messages (no public accessor)."""
    version: int | None = stream._stream_version
    return version


def mark_state_unflushed(stream: Stream) -> None:
    """Tell the SDK a record went out, so it writes the final STATE, as its own path would."""
    stream.state_manager.is_flushed = False


def unwritten_records(stream: Stream, context: Context | None) -> Iterator[Record]:
    """The stream's records as the SDK's BATCH path takes them, counted, STATE kept.

    The SDK's own `get_batches` reads them this way; a stream that writes its own batch
    files (client.py) has no public equivalent.
    """
    return stream._sync_records(context, write_messages=False)


class StreamHooks(Stream):
    """The SDK's private per-record methods, routed to the stream's own public ones."""

    def write_record(self, record: Record) -> None:
        """Write one RECORD message (the base stream gives the record writer)."""
        raise NotImplementedError

    def flush_records(self) -> None:
        """Write out any RECORD lines gathered but not yet written."""
        raise NotImplementedError

    def sdk_write_record(self, record: Record) -> None:
        """The SDK's own RECORD path: deselection, type conformance, stream maps."""
        super()._write_record_message(record)

    def write_state(self) -> None:
        """Write the records gathered so far, then the STATE that covers them."""
        self._write_state_message()

    def _write_record_message(self, record: Record) -> None:
        # The SDK writes and flushes one line per record; the record writer gathers many.
        self.write_record(record)

    def _write_state_message(self) -> None:
        # Gathered RECORD lines must reach stdout before the STATE that covers them.
        self.flush_records()
        super()._write_state_message()

    def _process_record(
        self,
        record: Record,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        # Per-record child-context work: Calven's streams have no children.
        if self.child_streams or partition_context:
            super()._process_record(record, child_context, partition_context)

    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        # The bookmark moves per completed window (client.py), never per record value.
        return


class TapHooks(Tap):
    """The SDK's private tap methods, routed to the tap's own public ones."""

    def check_config(self) -> None:
        """Raise ConfigError naming the first bad setting."""
        raise NotImplementedError

    def on_termination(self, signum: int) -> None:
        """Stop the run on a signal."""
        raise NotImplementedError

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        # The SDK's validation dumps the JSON schema error; ours is one line naming the setting.
        try:
            self.check_config()
        except ConfigError as exc:
            if raise_errors:
                raise
            return [str(exc)]
        return []

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        # The SDK exits 0 and writes a STATE from the signal handler; see on_termination.
        self.on_termination(signum)


#: Private methods overridden above: (SDK class path, method, parameters it must take, why).
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
    (
        "singer_sdk.plugin_base:PluginBase",
        "_handle_termination",
        ("self", "signum", "frame"),
        "a signal must exit non-zero and write no STATE from the handler",
    ),
)

#: Private methods called above: (SDK class path, method, parameters it must take, why).
PRIVATE_CALLS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    (
        "singer_sdk.streams.core:Stream",
        "_sync_records",
        ("self", "context", "write_messages"),
        "the records of a BATCH sync, for batch files written by the tap's own encoder",
    ),
)

#: Private attributes read above: (SDK class path, attribute, why).
PRIVATE_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("singer_sdk.streams.core:Stream", "_stream_version", "the RECORD `version` field"),
    ("singer_sdk.streams._state:StreamStateManager", "is_flushed", "the final STATE"),
)
