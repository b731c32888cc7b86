"""How the records Calven sends differ from the tap's schemas: pure functions, no I/O.

Calven documents only some of its fields (docs/contract.md §2), so the first run against a
real tenant is the first real test of the schemas. These functions name what differs in
terms a bug report can carry: field names, JSON type names and date/time *shapes*, never a
value. `tap-calven doctor` reports them; the record path uses them to keep drifting values.

Decisions where JSON Schema leaves room:

- A float with no fractional part (``2.0``) conforms to ``integer``, as JSON Schema says;
  its type name is still ``number``. An integer conforms to ``number``.
- ``format: date-time`` is RFC 3339's date-time (a ``T`` or a space between date and time,
  seconds required, fraction optional, ``Z`` or a numeric offset required); ``format: date``
  is ``YYYY-MM-DD``. Both must be real calendar values. Other formats are not checked.
- A shape replaces each digit with the letter of its part (``YYYY-MM-DDThh:mm:ss.fffZ``);
  an offset is written ``+hh:mm`` whatever its sign, so a shape holds no part of the value.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

JSON_TYPE_NAMES = ("string", "integer", "number", "boolean", "object", "array", "null")
DATE_FORMATS = frozenset({"date", "date-time"})

_TYPE_NAME: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}

# A date, then optionally a time and an offset. Groups: date, separator, time, fraction,
# offset. Only the shape is read here; `_is_valid_*` checks the calendar.
_DATE_LIKE = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2}|\d{8})"
    r"(?:(?P<sep>[Tt ])(?P<time>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<frac>\d+))?"
    r"(?P<offset>[Zz]|[+-]\d{2}:\d{2}|[+-]\d{4}|[+-]\d{2})?)?"
)
_RFC3339_DATE_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})"
)
_FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def json_type(value: object) -> str:
    """The JSON type name of a decoded JSON value (``bool`` is ``boolean``, not ``integer``)."""
    name = _TYPE_NAME.get(type(value))
    if name is not None:
        return name
    # Subclasses (an OrderedDict, an IntEnum) fall back to the first base that matches.
    for base, base_name in _TYPE_NAME.items():
        if isinstance(value, base):
            return base_name
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def declared_types(prop: Mapping[str, Any]) -> tuple[str, ...]:
    """The type names a property schema allows, in the schema's order (none: any type)."""
    declared = prop.get("type")
    if declared is None:
        return ()
    if isinstance(declared, str):
        return (declared,)
    return tuple(str(t) for t in declared)


def _is_valid_date(text: str) -> bool:
    if not _FULL_DATE.fullmatch(text):
        return False
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _is_valid_date_time(text: str) -> bool:
    if not _RFC3339_DATE_TIME.fullmatch(text):
        return False
    try:
        dt.datetime.fromisoformat(text)  # Python 3.11 reads `T` or ` `, and `Z`, itself
        return True
    except ValueError:
        pass
    normal = text.replace("t", "T").replace(" ", "T").replace("z", "Z").replace("Z", "+00:00")
    try:
        dt.datetime.fromisoformat(normal)
    except ValueError:  # month 13, 25 o'clock, a leap second: not a real instant here
        return False
    return True


_FORMAT_CHECKS = {"date": _is_valid_date, "date-time": _is_valid_date_time}


def _conforms_to_type(value: object, type_name: str) -> bool:
    name = json_type(value)
    if name == type_name:
        return True
    if type_name == "number":
        return name == "integer"
    if type_name == "integer" and name == "number":
        return float(value).is_integer()  # type: ignore[arg-type]
    return False


def conforms(value: object, prop: Mapping[str, Any]) -> bool:
    """Whether `value` is allowed by a property schema: its type list, then its format.

    The format applies to strings only, as in JSON Schema: ``null`` in a nullable
    date-time field conforms.
    """
    types = declared_types(prop)
    if types and not any(_conforms_to_type(value, t) for t in types):
        return False
    check = _FORMAT_CHECKS.get(str(prop.get("format")))
    if check is not None and isinstance(value, str):
        return check(value)
    return True


def datetime_shape(text: str) -> str | None:
    """The shape of a date or date-time string, e.g. ``YYYY-MM-DDThh:mm:ss.fffZ``.

    None when the text does not start with a date and match one of the shapes below
    entirely. The shape has no digit of the value: each digit becomes its part's letter.
    """
    match = _DATE_LIKE.fullmatch(text)
    if match is None:
        return None
    shape = "YYYY-MM-DD" if "-" in match["date"] else "YYYYMMDD"
    if match["time"] is None:
        return shape
    shape += match["sep"] + ("hh:mm:ss" if len(match["time"]) == 8 else "hh:mm")
    if match["frac"] is not None:
        shape += "." + "f" * len(match["frac"])
    offset = match["offset"]
    if offset is None:
        return shape
    if offset in ("Z", "z"):
        return shape + offset
    digits = len(offset) - 1
    return shape + {2: "+hh", 4: "+hhmm", 5: "+hh:mm"}[digits]


@dataclass(frozen=True)
class TypeMismatch:
    """Values of a known field that its schema does not allow.

    `seen` names the JSON types of the non-conforming values only; a date string in the
    wrong format is a `string` under a declared `format`.
    """

    declared: tuple[str, ...]
    format: str | None
    seen: tuple[str, ...]
    count: int


def format_check(prop: Mapping[str, Any]) -> Callable[[str], bool] | None:
    """The check a string must pass under this property's `format`, if one is checked."""
    return _FORMAT_CHECKS.get(str(prop.get("format")))


def exact_types(prop: Mapping[str, Any]) -> frozenset[type]:
    """Python classes whose values conform by type alone (a `format` is checked apart)."""
    types = declared_types(prop)
    fast = {py for py, name in _TYPE_NAME.items() if name in types or not types}
    if "number" in types:
        fast.add(int)
    return frozenset(fast)


class _Field:
    """What one schema property allows, precompiled for the per-record check."""

    __slots__ = ("date_format", "fast_types", "prop")

    def __init__(self, prop: Mapping[str, Any]) -> None:
        self.prop = prop
        fmt = prop.get("format")
        self.date_format = str(fmt) if fmt in DATE_FORMATS else None
        # Python types that conform with no further check; others go through `conforms`.
        fast = set(exact_types(prop))
        if format_check(prop) is not None:
            fast.discard(str)
        self.fast_types = frozenset(fast)


class StreamDrift:
    """Accumulates how one stream's records differ from its schema.

    Feed it records with `add`; read `unknown_fields`, `unseen_fields`, `mismatches` and
    `formats` at any time. Only top-level fields are compared: Calven's records are flat.
    The per-record cost is one dictionary lookup per field when nothing drifts.
    """

    def __init__(self, schema: Mapping[str, Any]) -> None:
        properties: Mapping[str, Mapping[str, Any]] = schema.get("properties") or {}
        self._fields = {name: _Field(prop) for name, prop in properties.items()}
        self.records = 0
        self._present: dict[str, int] = dict.fromkeys(self._fields, 0)
        self._unknown: dict[str, set[str]] = {}
        self._bad: dict[str, dict[str, int]] = {}
        self._formats: dict[str, dict[str, int]] = {
            name: {} for name, field in self._fields.items() if field.date_format
        }

    def add(self, record: Mapping[str, Any]) -> None:
        """Compare one record with the schema."""
        self.records += 1
        fields, present = self._fields, self._present
        for name, value in record.items():
            field = fields.get(name)
            if field is None:
                self._unknown.setdefault(name, set()).add(json_type(value))
                continue
            present[name] += 1
            if field.date_format is not None and isinstance(value, str):
                self._count_format(name, value)
            if type(value) not in field.fast_types and not conforms(value, field.prop):
                seen = self._bad.setdefault(name, {})
                type_name = json_type(value)
                seen[type_name] = seen.get(type_name, 0) + 1

    def add_all(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Compare every record of an iterable."""
        for record in records:
            self.add(record)

    def _count_format(self, name: str, value: str) -> None:
        shape = datetime_shape(value) or "not a date"
        counts = self._formats[name]
        counts[shape] = counts.get(shape, 0) + 1

    @property
    def unknown_fields(self) -> dict[str, tuple[str, ...]]:
        """Top-level fields the schema does not name -> the JSON types they carried."""
        return {name: tuple(sorted(types)) for name, types in sorted(self._unknown.items())}

    @property
    def unseen_fields(self) -> tuple[str, ...]:
        """Schema fields that no record held (absent, not null), in the schema's order."""
        return tuple(name for name, count in self._present.items() if count == 0)

    @property
    def mismatches(self) -> dict[str, TypeMismatch]:
        """Known fields with values the schema does not allow, sorted by field name."""
        out = {}
        for name, seen in sorted(self._bad.items()):
            field = self._fields[name]
            out[name] = TypeMismatch(
                declared=declared_types(field.prop),
                format=str(field.prop["format"]) if "format" in field.prop else None,
                seen=tuple(sorted(seen)),
                count=sum(seen.values()),
            )
        return out

    @property
    def formats(self) -> dict[str, tuple[str, ...]]:
        """Date fields (`format` date or date-time) -> the shapes seen, most frequent first.

        A string that is not date-like counts as the shape ``not a date``.
        """
        return {
            name: tuple(sorted(counts, key=lambda shape: (-counts[shape], shape)))
            for name, counts in self._formats.items()
        }

    @property
    def has_drift(self) -> bool:
        """Whether any record differed from the schema (unseen fields count only with records)."""
        return bool(self._unknown or self._bad or (self.records and self.unseen_fields))
