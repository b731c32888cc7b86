"""drift.py: type names, conformance, date/time shapes and the per-stream accumulator."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import pytest

from tap_calven.drift import (
    StreamDrift,
    TypeMismatch,
    conforms,
    datetime_shape,
    declared_types,
    json_type,
)
from tap_calven.tap import STREAM_TYPES


def schema_of(stream: str) -> dict[str, Any]:
    text = resources.files("tap_calven").joinpath("schemas", f"{stream}.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("x", "string"),
        ("", "string"),
        (0, "integer"),
        (-5, "integer"),
        (2.0, "number"),
        (1.5, "number"),
        (True, "boolean"),
        (False, "boolean"),
        ({}, "object"),
        ([1], "array"),
        (None, "null"),
    ],
)
def test_json_type(value: Any, name: str) -> None:
    assert json_type(value) == name


def test_json_type_rejects_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        json_type(object())


def test_declared_types() -> None:
    assert declared_types({"type": ["string", "null"]}) == ("string", "null")
    assert declared_types({"type": "integer"}) == ("integer",)
    assert declared_types({}) == ()


NULLABLE_STRING = {"type": ["string", "null"]}
INTEGER = {"type": ["integer", "null"]}
NUMBER = {"type": ["number"]}
DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
DATE = {"type": ["string"], "format": "date"}


@pytest.mark.parametrize(
    ("value", "prop", "ok"),
    [
        ("a", NULLABLE_STRING, True),
        (None, NULLABLE_STRING, True),
        (1, NULLABLE_STRING, False),
        ({"a": 1}, NULLABLE_STRING, False),
        (None, {"type": ["string"]}, False),
        (3, INTEGER, True),
        (3.0, INTEGER, True),  # JSON Schema: a number with no fraction is an integer
        (3.5, INTEGER, False),
        ("3", INTEGER, False),
        (True, INTEGER, False),  # a boolean is not an integer in JSON
        (3, NUMBER, True),
        (3.5, NUMBER, True),
        (True, {"type": ["boolean", "null"]}, True),
        ("true", {"type": ["boolean", "null"]}, False),
        ("anything", {}, True),
        ("2024-01-01T00:00:00.000Z", DATE_TIME, True),
        ("2024-01-01T09:30:00+10:00", DATE_TIME, True),
        ("2024-01-01 09:30:00Z", DATE_TIME, True),
        ("2024-01-01t09:30:00.5z", DATE_TIME, True),
        (None, DATE_TIME, True),
        ("2024-01-01", DATE_TIME, False),  # a date is not a date-time
        ("2024-01-01T09:30:00", DATE_TIME, False),  # no offset: not RFC 3339
        ("2024-01-01T09:30Z", DATE_TIME, False),  # no seconds
        ("2024-13-01T00:00:00Z", DATE_TIME, False),
        ("2024-02-30T00:00:00Z", DATE_TIME, False),
        ("2024-01-01T25:00:00Z", DATE_TIME, False),
        ("yesterday", DATE_TIME, False),
        (1704067200, DATE_TIME, False),
        ("2024-02-29", DATE, True),
        ("2023-02-29", DATE, False),
        ("20240229", DATE, False),
        ("2024-02-29T00:00:00Z", DATE, False),
        ("x", {"type": ["string"], "format": "uuid"}, True),  # other formats: not checked
    ],
)
def test_conforms(value: Any, prop: dict[str, Any], ok: bool) -> None:
    assert conforms(value, prop) is ok


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ("2024-01-01", "YYYY-MM-DD"),
        ("20240101", "YYYYMMDD"),
        ("2024-01-01T00:00:00Z", "YYYY-MM-DDThh:mm:ssZ"),
        ("2024-01-01T00:00:00.000Z", "YYYY-MM-DDThh:mm:ss.fffZ"),
        ("2024-01-01T00:00:00.123456+10:00", "YYYY-MM-DDThh:mm:ss.ffffff+hh:mm"),
        ("2024-01-01T00:00:00.000-05:00", "YYYY-MM-DDThh:mm:ss.fff+hh:mm"),
        ("2024-01-01 00:00:00", "YYYY-MM-DD hh:mm:ss"),
        ("2024-01-01T00:00", "YYYY-MM-DDThh:mm"),
        ("2024-01-01T00:00:00+0100", "YYYY-MM-DDThh:mm:ss+hhmm"),
        ("2024-01-01T00:00:00-03", "YYYY-MM-DDThh:mm:ss+hh"),
        ("2024-01-01t00:00:00z", "YYYY-MM-DDthh:mm:ssz"),
        ("hello", None),
        ("", None),
        ("2024-01", None),
        ("01/02/2024", None),
        ("2024-01-01T", None),
        ("2024-01-01T00:00:00Z trailing", None),
        ("12:00:00", None),
    ],
)
def test_datetime_shape(text: str, shape: str | None) -> None:
    assert datetime_shape(text) == shape


@pytest.mark.parametrize(
    "text",
    ["2031-12-25T23:59:58.987-07:30", "1999-06-07", "20231130", "2024-02-29 10:11:12.5+0130"],
)
def test_a_shape_holds_no_digit_of_the_value(text: str) -> None:
    shape = datetime_shape(text)
    assert shape is not None
    assert not re.search(r"\d", shape)


SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": ["string"]},
        "count": {"type": ["integer", "null"]},
        "day": {"type": ["string"], "format": "date-time"},
        "when": {"type": ["string", "null"], "format": "date"},
        "flag": {"type": ["boolean", "null"]},
        "never": {"type": ["string", "null"]},
    },
}


def test_a_record_that_matches_the_schema_shows_no_drift() -> None:
    drift = StreamDrift(SCHEMA)
    drift.add({"id": "a", "count": 1, "day": "2024-01-01T00:00:00Z", "when": None, "flag": True})
    assert drift.records == 1
    assert drift.unknown_fields == {}
    assert drift.mismatches == {}
    assert drift.unseen_fields == ("never",)
    assert drift.formats == {"day": ("YYYY-MM-DDThh:mm:ssZ",), "when": ()}


def test_no_records_no_drift() -> None:
    drift = StreamDrift(SCHEMA)
    assert drift.records == 0
    assert not drift.has_drift
    assert drift.unseen_fields == tuple(SCHEMA["properties"])


def test_the_accumulator_names_every_difference() -> None:
    drift = StreamDrift(SCHEMA)
    drift.add_all(
        [
            {"id": "a", "count": "7", "day": "2024-01-01", "labels": ["x"], "never": None},
            {"id": "b", "count": 2, "day": "2024-01-02T00:00:00.000Z", "meta": {"v": 2}},
            {"id": "c", "count": 2.5, "day": "2024-01-03T00:00:00.000Z", "labels": None},
            {"id": None, "count": True, "day": "soon", "flag": "yes", "when": "2024-01-01"},
        ]
    )
    assert drift.records == 4
    assert drift.unknown_fields == {"labels": ("array", "null"), "meta": ("object",)}
    assert drift.unseen_fields == ()
    assert drift.mismatches == {
        "count": TypeMismatch(("integer", "null"), None, ("boolean", "number", "string"), 3),
        "day": TypeMismatch(("string",), "date-time", ("string",), 2),
        "flag": TypeMismatch(("boolean", "null"), None, ("string",), 1),
        "id": TypeMismatch(("string",), None, ("null",), 1),
    }
    assert drift.formats == {
        "day": ("YYYY-MM-DDThh:mm:ss.fffZ", "YYYY-MM-DD", "not a date"),
        "when": ("YYYY-MM-DD",),
    }
    assert drift.has_drift


@pytest.mark.parametrize("stream", [cls.name for cls in STREAM_TYPES])
def test_every_tap_schema_is_understood(stream: str) -> None:
    """The accumulator reads each real schema: a record of nulls drifts only on non-nullable
    fields, and the date fields are the ones declared with a date format."""
    schema = schema_of(stream)
    drift = StreamDrift(schema)
    drift.add(dict.fromkeys(schema["properties"]))
    required = {n for n, p in schema["properties"].items() if "null" not in declared_types(p)}
    assert set(drift.mismatches) == required
    assert drift.unseen_fields == ()
    dated = {n for n, p in schema["properties"].items() if p.get("format") in ("date", "date-time")}
    assert set(drift.formats) == dated


def test_thousands_of_records_make_the_same_report_as_one_pass_each() -> None:
    """Counts add up over many records (the fast path and the slow path agree)."""
    drift = StreamDrift(SCHEMA)
    good = {"id": "a", "count": 1, "day": "2024-01-01T00:00:00Z", "flag": False}
    bad = {**good, "count": "1"}
    for n in range(5000):
        drift.add(bad if n % 10 == 0 else good)
    assert drift.records == 5000
    assert drift.mismatches["count"].count == 500
    assert drift.formats["day"] == ("YYYY-MM-DDThh:mm:ssZ",)
