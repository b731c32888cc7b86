"""The one record writer: how a stream's RECORD messages (or BATCH files) are encoded and written.

The SDK's record path drops deselected properties, conforms types, applies stream maps,
builds a RecordMessage and writes and flushes it, for every record: more than fetching
and parsing the record costs. `RecordWriter` takes a lean path, the SDK's own msgspec
encoder into a 64 KB buffer, only when that work provably changes nothing, and hands
every other record to the SDK's path. Either way it owns the order on stdout: gathered
lines go out before anything else is written. In BATCH mode, `JsonLinesBatcher` writes the
batch files the same way: a whole file's records encoded by msgspec in one call.
"""

from __future__ import annotations

import datetime as dt
import gzip
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from singer_sdk import Stream
from singer_sdk.batch import BaseBatcher, lazy_chunked_generator
from singer_sdk.contrib import msgspec as sdk_msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform

from tap_calven.sdk_internals import is_exclusive_boolean, stream_version
from tap_calven.types import Record

OUT_BYTES = 1 << 16  # RECORD lines gathered before one write to stdout
# Batch files are read once, by the target, soon after: level 1 gzips about four times as
# fast as the SDK's level 9, for files about 1.6 times as large.
GZIP_LEVEL = 1

# Keys of a property schema that make the SDK's conformance look inside a value.
_NESTING_KEYS = frozenset({"properties", "items", "anyOf", "allOf", "oneOf", "patternProperties"})


def is_flat(property_schema: Mapping[str, Any]) -> bool:
    """True when the SDK conforms this property as one value, never looking inside it.

    An object without `properties` (the `extra_fields` column) is one such value: the SDK
    passes it through whole.
    """
    types = property_schema.get("type", ())
    types = (types,) if isinstance(types, str) else types
    return not _NESTING_KEYS & property_schema.keys() and "array" not in types


@dataclass(frozen=True)
class LeanPath:
    """The SDK's record path for one sync, reduced to what it does to Calven's records.

    It exists only when that path is the identity on a record whose keys are all known
    (or extra keys are kept) and whose boolean fields hold booleans; `accepts` checks
    those two per record.
    """

    stream: str
    version: int | None
    known: frozenset[str] | None  # None: any key passes through unchanged
    booleans: tuple[str, ...]  # the SDK turns a non-boolean value here into `value != 0`

    def accepts(self, record: Record) -> bool:
        """True when the SDK's path would leave this record exactly as it is."""
        if self.known is None and not self.booleans:
            return True
        if self.known is not None and not record.keys() <= self.known:
            return False
        for name in self.booleans:
            value = record.get(name)
            if value is not None and value.__class__ is not bool:
                return False
        return True

    def encode(self, record: Record, out: bytearray) -> None:
        """Append the RECORD line the msgspec writer would write, byte for byte.

        The message is what `RecordMessage.to_dict` builds, key for key, encoded by the
        SDK's own msgspec encoder.
        """
        message: dict[str, Any] = {"type": "RECORD", "stream": self.stream, "record": record}
        if self.version is not None:
            message["version"] = self.version
        message["time_extracted"] = dt.datetime.now(dt.timezone.utc)
        _encode_into(message, out, -1)
        out += b"\n"


_encode_into = sdk_msgspec.encoder.encode_into


def lean_path_for(
    stream: Stream, message_writer: object, *, conformed: bool = False
) -> LeanPath | None:
    """The lean path for this sync of `stream`, or None when the SDK's path must run.

    The SDK's path is provably the identity when the msgspec writer is in use, the only
    stream map is the identity (no alias, filter, expression or flattening), every
    property is selected and the schema is flat. `conformed`: every record will already
    fit the schema (conform.py), so no record needs checking.
    """
    if type(message_writer) is not MsgSpecWriter:
        return None
    maps = stream.stream_maps
    if len(maps) != 1 or type(maps[0]) is not SameRecordTransform:
        return None
    if maps[0].stream_alias != stream.name or maps[0].flattening_enabled:
        return None
    if not all(stream.mask.values()):
        return None
    version = stream_version(stream)
    if stream.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE:
        return LeanPath(stream.name, version, None, ())
    schema = stream.effective_schema
    properties: dict[str, dict[str, Any]] = schema.get("properties") or {}
    if not all(is_flat(prop) for prop in properties.values()):
        return None
    if conformed:
        return LeanPath(stream.name, version, None, ())
    known = None if schema.get("additionalProperties") else frozenset(properties)
    booleans = tuple(n for n, prop in properties.items() if is_exclusive_boolean(prop))
    return LeanPath(stream.name, version, known, booleans)


class RecordWriter:
    """One stream's RECORD messages for one sync: the lean path where it applies, else the SDK's.

    `sdk_write` is the SDK's own record path; `on_lean_write` tells the SDK a record went
    out. Lines gathered by the lean path are written by `flush`, which the stream calls
    before any other message (STATE, the SDK path's records) and when the sync ends.
    """

    def __init__(
        self,
        lean: LeanPath | None,
        sdk_write: Callable[[Record], None],
        on_lean_write: Callable[[], None],
    ) -> None:
        self.lean = lean
        self._sdk_write = sdk_write
        self._on_lean_write = on_lean_write
        self._out = bytearray()  # RECORD lines not yet written to stdout

    def write(self, record: Record) -> None:
        """Write one record's RECORD message, by the lean path when it accepts the record."""
        lean = self.lean
        if lean is not None and lean.accepts(record):
            out = self._out
            if not out:
                # The first line since a flush. The SDK marks its state "flushed" only when
                # it writes STATE, which flushes these lines first: once per run of lines
                # is as often as the SDK's own path would mark it.
                self._on_lean_write()
            lean.encode(record, out)
            if len(out) >= OUT_BYTES:
                self.flush()
            return
        self.flush()
        self._sdk_write(record)

    def flush(self) -> None:
        """Write the gathered RECORD lines to stdout."""
        if self._out:
            # Take the lines before writing: if a signal stops the write part-way, a later
            # flush must not write them a second time.
            pending = bytes(self._out)
            self._out.clear()
            sys.stdout.buffer.write(pending)


class JsonLinesBatcher(BaseBatcher):
    """BATCH files of JSON lines that hold what the SDK's own jsonl batcher writes.

    The SDK encodes each record with simplejson and gzips at level 9, about 19 us a record
    (B4 in benchmarks/README.md); here one msgspec call encodes a whole file's records and
    gzip runs at GZIP_LEVEL, about 3 us a record. The target decodes the same records. Unlike
    the SDK's (which always gzips), a file is gzipped only when the config's compression asks.
    """

    def get_batches(self, records: Iterator[Record]) -> Iterator[list[str]]:
        """Write `batch_size` records per file; yield each file's manifest."""
        config = self.batch_config
        storage = config.storage
        gzipped = config.encoding.compression == "gzip"
        name = f"{storage.prefix or ''}{self.tap_name}--{self.stream_name}-{uuid.uuid4()}"
        for index, chunk in enumerate(lazy_chunked_generator(records, config.batch_size), 1):
            data = _encode_lines(list(chunk))
            filename = f"{name}-{index}.json" + (".gz" if gzipped else "")
            with storage.open(filename, "wb") as handle:
                handle.write(gzip.compress(data, GZIP_LEVEL) if gzipped else data)
            yield [storage.get_url(filename)]


_encode_lines = sdk_msgspec.encoder.encode_lines
