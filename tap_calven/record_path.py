"""A lean RECORD path for the common case where the SDK's per-record work is the identity.

The SDK drops deselected properties, conforms types, applies stream maps, builds a
RecordMessage and writes and flushes it, for every record: more than fetching and
parsing the record costs. `CalvenStream` uses this path only when that work provably
changes nothing, and the SDK's own path otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from singer_sdk.contrib import msgspec as sdk_msgspec

from tap_calven.types import Record

OUT_BYTES = 1 << 16  # RECORD lines gathered before one write to stdout


# Keys of a property schema that make the SDK's conformance look inside a value.
_NESTING_KEYS = frozenset({"properties", "items", "anyOf", "allOf", "oneOf", "patternProperties"})


def is_flat(property_schema: Mapping[str, Any]) -> bool:
    """True when the SDK conforms this property as one primitive value, never recursing."""
    types = property_schema.get("type", ())
    types = (types,) if isinstance(types, str) else types
    return not _NESTING_KEYS & property_schema.keys() and not {"object", "array"} & set(types)


@dataclass(frozen=True)
class FastRecordPath:
    """The SDK's record path for one sync, reduced to what it does to Calven's records.

    Decided once per sync: it exists only when that path is the identity on a record
    whose keys are all known (or extra keys are kept) and whose boolean fields hold
    booleans; `accepts` checks those two per record. A record it refuses, and every
    record of a stream it does not exist for, takes the SDK's own path.
    """

    stream: str
    version: int | None
    known: frozenset[str] | None  # None: any key passes through unchanged
    booleans: tuple[str, ...]  # the SDK turns a non-boolean value here into `value != 0`

    def accepts(self, record: Record) -> bool:
        """True when the SDK's path would leave this record exactly as it is."""
        if self.known is not None and not record.keys() <= self.known:
            return False
        for name in self.booleans:
            value = record.get(name)
            if value is not None and value.__class__ is not bool:
                return False
        return True

    def write(self, record: Record, out: bytearray) -> None:
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
