"""Fit each record Calven sends to its stream's schema without losing a value.

Calven documents only part of its API (docs/contract.md §2), so a real tenant may send
fields the schema does not know, or a known field with a value of another type. A SQL
target builds its columns from the schema alone and the SDK drops what the schema does
not name, so such values would be lost, or would stop the load. `Conformer` keeps them:

- an unknown top-level field goes, with its original value, into the record's
  `extra_fields` object (`unknown_fields: keep`, the default), is dropped
  (`ignore`), or stops the run with one line (`fail`);
- a known field whose value the schema does not allow never stops the run and never
  becomes null silently: a primary key stays in place, a plain string column holds the
  value's JSON text, and any other column is null in that record while `extra_fields`
  holds the original value, whatever the mode;
- `warnings()` gives one line per stream for the unknown fields and one per mismatched
  field, with counts and JSON type names only, never a value.

Records that fit (the rule, when nothing drifts) cost almost nothing: `decode_batch`
decodes a body's records straight into a msgspec struct built from the schema, which
checks every field's type in C, and only a batch that struct refuses is decoded again as
plain JSON and fitted record by record in Python.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Callable, Collection, Mapping
from typing import Any, Union

import msgspec

from tap_calven.drift import (
    conforms,
    datetime_shape,
    declared_types,
    exact_types,
    format_check,
    json_type,
)
from tap_calven.errors import ResponseError
from tap_calven.types import Record

EXTRA_FIELDS = "extra_fields"
EXTRA_FIELDS_SCHEMA: dict[str, Any] = {
    "type": ["object", "null"],
    "description": (
        "Every field Calven sent that this schema does not know, and every known field's "
        "value of an unexpected type, with its original value (see `unknown_fields`). "
        "Null when the record matched the schema."
    ),
}
UNKNOWN_FIELD_MODES = ("keep", "ignore", "fail")
_PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),  # an integer stays an integer: msgspec would make it a float
    "boolean": (bool,),
    "null": (type(None),),
    "object": (dict,),
    "array": (list,),
}
_VALID_STRINGS_KEPT = 1 << 16  # date strings remembered as checked, per stream
_decode_plain = msgspec.json.Decoder(list[dict[str, Any]]).decode
_to_builtins = msgspec.to_builtins


def with_extra_fields(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a stream schema with the `extra_fields` object column added."""
    out = copy.deepcopy(dict(schema))
    out.setdefault("properties", {})[EXTRA_FIELDS] = copy.deepcopy(EXTRA_FIELDS_SCHEMA)
    return out


def _struct_field(prop: Mapping[str, Any]) -> Any:
    """The msgspec type that admits exactly the values of a property's declared types."""
    declared = declared_types(prop)
    if not declared or any(t not in _PYTHON_TYPES for t in declared):
        return Any
    options = tuple(dict.fromkeys(py for t in declared for py in _PYTHON_TYPES[t]))
    return Union[(*options, msgspec.UnsetType)]


def _record_struct(stream: str, properties: Mapping[str, Mapping[str, Any]]) -> type:
    """A struct of the schema's fields, all optional, refusing any other field."""
    fields = [
        (f"f{n}", _struct_field(prop), msgspec.UNSET) for n, prop in enumerate(properties.values())
    ]
    rename = {f"f{n}": name for n, name in enumerate(properties)}
    return msgspec.defstruct(
        f"{stream}_record", fields, rename=rename, forbid_unknown_fields=True, omit_defaults=True
    )


def _seen_as(value: object, prop: Mapping[str, Any]) -> str:
    """How a misfit value is named in a warning: its JSON type, or a date string's shape."""
    if isinstance(value, str) and "format" in prop:
        shape = datetime_shape(value)
        return f"strings shaped {shape}" if shape else "strings in another format"
    return json_type(value)


def _as_text(value: object) -> str:
    """A value of another type, kept in a string column: its JSON text (`7`, `true`, `{...}`)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class _Mismatch:
    """What a known field was declared as, and the JSON types of the values that did not fit."""

    __slots__ = ("count", "declared", "seen", "where")

    def __init__(self, declared: str, where: str) -> None:
        self.declared = declared
        self.where = where  # what became of the values, e.g. "kept in the column as sent"
        self.seen: set[str] = set()
        self.count = 0


class Conformer:
    """One stream's records, fitted to its schema for one sync (see the module docstring)."""

    def __init__(
        self,
        stream: str,
        schema: Mapping[str, Any],
        primary_keys: Collection[str],
        mode: str = "keep",
    ) -> None:
        if mode not in UNKNOWN_FIELD_MODES:
            raise ValueError(f"unknown_fields must be one of {UNKNOWN_FIELD_MODES}, not {mode!r}")
        self.stream = stream
        self.mode = mode
        self._keys = frozenset(primary_keys)
        properties: Mapping[str, Mapping[str, Any]] = {
            name: prop
            for name, prop in (schema.get("properties") or {}).items()
            if name != EXTRA_FIELDS
        }
        self._props = properties
        # A catalog saved before `extra_fields` existed has no such column: nothing can go there.
        self._has_extra = EXTRA_FIELDS in (schema.get("properties") or {})
        self._exact = {name: exact_types(prop) for name, prop in properties.items()}
        self._formats: tuple[tuple[str, Callable[[str], bool]], ...] = tuple(
            (name, check)
            for name, prop in properties.items()
            if (check := format_check(prop)) is not None
        )
        self._decode_fitting = msgspec.json.Decoder(list[_record_struct(stream, properties)]).decode  # type: ignore[misc]
        self._valid_strings: set[str] = set()
        self._lock = threading.Lock()  # fetching threads fit records at once
        self._unknown: dict[str, set[str]] = {}
        self._mismatches: dict[str, _Mismatch] = {}

    def decode_batch(self, data: bytes) -> list[Record]:
        """The records of one JSON array, fitted (json_array.RecordDecoder)."""
        try:
            structs = self._decode_fitting(data)
        except msgspec.ValidationError:
            return [self(record) for record in _decode_plain(data)]
        records: list[Record] = _to_builtins(structs)  # one call for the whole batch
        if self._formats:
            records = [self._check_formats(record) for record in records]
        return records

    def fit(self, record: Record) -> Record:
        """One record the careful reader decoded, fitted (json_array.RecordDecoder)."""
        return self(record)

    def _check_formats(self, record: Record) -> Record:
        valid = self._valid_strings
        for name, check in self._formats:
            value = record.get(name)
            if value.__class__ is not str or value in valid:
                continue
            if not check(value):
                return self._fit(record)
            if len(valid) >= _VALID_STRINGS_KEPT:
                valid.clear()
            valid.add(value)
        return record

    def __call__(self, record: Record) -> Record:
        """The record as the schema allows it: itself when it fits, else a fitted copy."""
        exact = self._exact
        for name, value in record.items():
            classes = exact.get(name)
            if classes is None or value.__class__ not in classes:
                return self._fit(record)
        return self._check_formats(record)

    def _fit(self, record: Record) -> Record:
        with self._lock:
            return self._fit_locked(record)

    def _fit_locked(self, record: Record) -> Record:
        out: Record = {}
        unknown: Record = {}
        kept: Record = {}
        for name, value in record.items():
            prop = self._props.get(name)
            if prop is None:
                self._unknown.setdefault(name, set()).add(json_type(value))
                unknown[name] = value
            elif conforms(value, prop):
                out[name] = value
            else:
                out[name] = self._misfit(name, prop, value, kept)
        if unknown and self.mode == "fail":
            raise ResponseError(
                f"Stream '{self.stream}': Calven sent fields the schema does not know: "
                f"{', '.join(sorted(unknown))} (unknown_fields is 'fail'; 'keep' loads "
                f"them into {EXTRA_FIELDS})."
            )
        extra = {**unknown, **kept} if self.mode == "keep" else kept
        if extra and self._has_extra:
            out[EXTRA_FIELDS] = extra
        return out

    def _misfit(self, name: str, prop: Mapping[str, Any], value: object, kept: Record) -> object:
        """The column's value for a value its schema does not allow; the original is kept."""
        declared = declared_types(prop)
        plain_string = "string" in declared and "format" not in prop
        if name in self._keys or value is None:
            where, column = "kept in the column as sent", value
        elif plain_string:
            where, column = "kept in the column as their JSON text", _as_text(value)
        elif self._has_extra:
            where, column = f"kept in {EXTRA_FIELDS} (the column is null there)", None
            kept[name] = value
        else:
            where, column = f"lost: the catalog's schema has no {EXTRA_FIELDS} column", None
        mismatch = self._mismatches.get(name)
        if mismatch is None:
            described = "/".join(declared) or "any"
            if "format" in prop:
                described += f" ({prop['format']})"
            mismatch = self._mismatches[name] = _Mismatch(described, where)
        mismatch.seen.add(_seen_as(value, prop))
        mismatch.count += 1
        return column

    @property
    def unknown_fields(self) -> dict[str, tuple[str, ...]]:
        """Unknown fields seen so far -> the JSON types they carried."""
        return {name: tuple(sorted(types)) for name, types in sorted(self._unknown.items())}

    @property
    def mismatched_fields(self) -> tuple[str, ...]:
        """Known fields that carried a value of another type, sorted."""
        return tuple(sorted(self._mismatches))

    def warnings(self) -> list[str]:
        """One line for the unknown fields, then one per mismatched field (names and types)."""
        lines = []
        if self._unknown:
            fields = ", ".join(f"{n} ({'/'.join(t)})" for n, t in self.unknown_fields.items())
            fate = {
                "keep": f"kept in the {EXTRA_FIELDS} column",
                "ignore": "dropped (unknown_fields: ignore)",
                "fail": "stopped the run",
            }[self.mode]
            if self.mode == "keep" and not self._has_extra:
                fate = f"dropped: the catalog's schema has no {EXTRA_FIELDS} column"
            lines.append(
                f"{self.stream}: Calven sent {len(self._unknown)} field(s) the schema does "
                f"not know: {fields}; {fate}."
            )
        for name in self.mismatched_fields:
            m = self._mismatches[name]
            lines.append(
                f"{self.stream}: field '{name}' is declared {m.declared} but {m.count} "
                f"record(s) held {'/'.join(sorted(m.seen))}; those values are {m.where}."
            )
        return lines
