"""Records fitted to their schema without losing a value (tap_calven/conform.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tap_calven.conform import EXTRA_FIELDS, Conformer, with_extra_fields
from tap_calven.errors import ResponseError
from tap_calven.sandbox import Sandbox
from tap_calven.tap import TapCalven
from tests.conftest import TODAY, lost_values, run_cli, run_tap, sandbox_config

SCHEMA = with_extra_fields(
    {
        "properties": {
            "id": {"type": ["string"]},
            "name": {"type": ["string", "null"]},
            "capacity": {"type": ["integer", "null"]},
            "share": {"type": ["number", "null"]},
            "active": {"type": ["boolean", "null"]},
            "at": {"type": ["string", "null"], "format": "date-time"},
        }
    }
)
FITS = {
    "id": "a",
    "name": "x",
    "capacity": 3,
    "share": 1,
    "active": True,
    "at": "2025-03-12T08:00:00Z",
}


def conformer(mode: str = "keep", schema: dict[str, Any] = SCHEMA) -> Conformer:
    return Conformer("desks", schema, ("id",), mode)


def test_a_record_that_fits_is_returned_as_it_is() -> None:
    c = conformer()
    record = dict(FITS)
    assert c(record) is record
    assert c({"id": "a", "name": None, "at": None}) == {"id": "a", "name": None, "at": None}
    assert c.warnings() == []


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        ("capacity", "7", None),  # digits where an integer is declared
        ("capacity", True, None),  # a boolean is not an integer
        ("share", "0.5", None),
        ("active", "yes", None),
        ("at", "12/03/2025 08:00", None),  # a date-time in another format
        ("at", "2025-13-40T08:00:00Z", None),  # the right shape, not a real instant
        ("name", {"text": "x"}, '{"text":"x"}'),  # an object where a string is declared
        ("name", 12, "12"),
    ],
)
def test_a_value_of_another_type_is_kept_never_nulled_silently(
    field: str, value: object, column: object
) -> None:
    c = conformer()
    out = c({**FITS, field: value})
    assert out[field] == column
    if column is None:
        assert out[EXTRA_FIELDS] == {field: value}
    else:
        assert EXTRA_FIELDS not in out
    assert lost_values({**FITS, field: value}, out) == []
    (line,) = c.warnings()
    assert line.startswith(f"desks: field '{field}' is declared ")
    assert repr(value) not in line
    assert str(value) not in line.split("held")[1]


def test_a_primary_key_of_another_type_stays_in_place() -> None:
    out = conformer()({**FITS, "id": 42})
    assert out["id"] == 42
    assert EXTRA_FIELDS not in out


@pytest.mark.parametrize("mode", ["keep", "ignore", "fail"])
def test_unknown_fields_by_mode(mode: str) -> None:
    c = conformer(mode)
    record = {**FITS, "labels": ["a"], "meta": {"v": 2}}
    if mode == "fail":
        with pytest.raises(ResponseError) as err:
            c(record)
        assert str(err.value).startswith("Stream 'desks': Calven sent fields the schema")
        assert "labels, meta" in str(err.value)
        assert "\n" not in str(err.value)
        return
    out = c(record)
    if mode == "keep":
        assert out[EXTRA_FIELDS] == {"labels": ["a"], "meta": {"v": 2}}
        assert lost_values(record, out) == []
    else:
        assert out == FITS
    for _ in range(5):
        c(record)
    (line,) = c.warnings()  # once per stream, however many records
    assert "labels (array), meta (object)" in line
    assert ("kept in the extra_fields column" in line) == (mode == "keep")


def test_mismatched_values_are_kept_in_ignore_mode_too() -> None:
    out = conformer("ignore")({**FITS, "capacity": "7", "new": 1})
    assert out[EXTRA_FIELDS] == {"capacity": "7"}


def test_a_field_calven_itself_calls_extra_fields_is_not_mistaken_for_ours() -> None:
    record = {**FITS, EXTRA_FIELDS: {"theirs": 1}}
    out = conformer()(record)
    assert out[EXTRA_FIELDS] == {EXTRA_FIELDS: {"theirs": 1}}


def test_counts_and_types_in_the_warnings_carry_no_value() -> None:
    c = conformer()
    for n in range(3):
        c({**FITS, "capacity": f"secret-{n}", "at": "12/03/2025 08:00", "tenant": "secret"})
    text = "\n".join(c.warnings())
    assert "secret" not in text
    assert "12/03" not in text
    assert "field 'capacity' is declared integer/null but 3 record(s) held string" in text
    assert "field 'at' is declared string/null (date-time) but 3 record(s) held strings" in text


def test_drift_mode_fail_stops_the_cli_with_one_line(tmp_path: Path) -> None:
    sb = Sandbox(seed=5, users=6, locations=1, past_days=5, future_days=1, drift=True, today=TODAY)
    sb.start()
    try:
        result = run_cli(
            tmp_path, sandbox_config(sb, unknown_fields="fail", end_date=TODAY.isoformat())
        )
    finally:
        sb.stop()
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "Calven sent fields" in line]
    assert len(errors) == 1, result.stderr[-2000:]


def test_drift_mode_ignore_loads_no_unknown_field_and_warns_once_per_stream(caplog) -> None:
    sb = Sandbox(seed=5, users=6, locations=1, past_days=5, future_days=1, drift=True, today=TODAY)
    sb.start()
    try:
        run = run_tap(sandbox_config(sb, unknown_fields="ignore", end_date=TODAY.isoformat()))
    finally:
        sb.stop()
    for stream, records in run.records.items():
        assert all("syncedAt" not in (r.get(EXTRA_FIELDS) or {}) for r in records), stream
    dropped = [m for m in caplog.messages if "dropped (unknown_fields: ignore)" in m]
    assert dropped
    assert len(dropped) == len({m.split(":")[0] for m in dropped})


def test_a_bad_mode_is_one_line(tmp_path: Path) -> None:
    config = {"api_key": "k", "api_secret": "s", "start_date": "2025-01-01"}
    result = run_cli(tmp_path, {**config, "unknown_fields": "drop"})
    assert result.returncode != 0
    assert (
        "Setting 'unknown_fields' must be one of keep, ignore, fail, got 'drop'." in result.stderr
    )
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("drift", [False, True])
def test_decoding_in_bulk_gives_what_fitting_each_record_gives(drift: bool) -> None:
    sb = Sandbox(
        seed=3, users=30, locations=2, past_days=10, future_days=2, drift=drift, today=TODAY
    )
    tap = TapCalven(config={"api_key": "k", "api_secret": "s", "start_date": "2025-01-01"})
    for name, stream in tap.streams.items():
        served = sb.records(name, TODAY - dt.timedelta(days=9), TODAY)
        body = json.dumps(served).encode()
        bulk = Conformer(name, stream.schema, stream.primary_keys or ())
        one_by_one = Conformer(name, stream.schema, stream.primary_keys or ())
        decoded = bulk.decode_batch(body)
        assert decoded == [one_by_one(record) for record in json.loads(body)], name
        assert bulk.warnings() == one_by_one.warnings(), name
        if not drift:
            assert decoded == served, name  # nothing to fit: the records as sent
            assert [list(r) for r in decoded] == [list(r) for r in served], name  # key order
