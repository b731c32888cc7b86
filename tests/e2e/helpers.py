"""Ground truth from the sandbox, and comparison of what a target loaded with it."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from tap_calven.sandbox import Sandbox
from tap_calven.streams import STREAM_TYPES

from .conftest import Meltano, tap_env

# Stream -> primary key, and the windowed streams, as the tap declares them.
KEYS: dict[str, tuple[str, ...]] = {cls.name: tuple(cls.primary_keys or ()) for cls in STREAM_TYPES}
WINDOWED = tuple(cls.name for cls in STREAM_TYPES if isinstance(cls.replication_key, str))
LOOKBACK_DAYS = 7  # the tap's default `lookback_days`
BOOKINGS_PATH = "/v1/analytics/user-booking-attendance"
ISO_DATETIME = re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d")

Key = tuple[Any, ...]
Table = dict[Key, dict[str, Any]]


def column(name: str) -> str:
    """A column name as any target spells it: `userId`, `userid` and `user_id` are one."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def value(v: Any) -> Any:
    """A value as loaded: timestamps as naive UTC ISO strings, numbers as int or float."""
    if isinstance(v, str) and ISO_DATETIME.match(v):
        v = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc).replace(tzinfo=None)
        return v.isoformat()
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    return v


def normalise(record: Mapping[str, Any]) -> dict[str, Any]:
    """Column names and values compared the same way for every target."""
    return {column(k): value(v) for k, v in record.items()}


def key_of(stream: str, row: Mapping[str, Any]) -> Key:
    """The primary key of a normalised row (ids compare case-insensitively: contract §2)."""
    out = []
    for name in KEYS[stream]:
        v = row[column(name)]
        out.append(v.lower() if isinstance(v, str) else v)
    return tuple(out)


def tap_end(sb: Sandbox, stream: str) -> dt.date:
    """The last day the tap reads for ``stream``: `end_date`, the sandbox's today (tap_env)."""
    return sb.today


def start_date(sb: Sandbox) -> dt.date:
    """The `start_date` the e2e runs use: the first day of the sandbox's bookings."""
    return sb.date_range("bookings_attendance")[0]


def ground_truth(sb: Sandbox, stream: str) -> Table:
    """What a clean run loads for ``stream``, deduplicated by primary key (targets upsert)."""
    if stream in WINDOWED:
        records = sb.records(stream, start_date(sb), tap_end(sb, stream))
    else:
        records = sb.records(stream)
    table: Table = {}
    for record in records:
        row = normalise(record)
        table[key_of(stream, row)] = row
    assert table, f"the sandbox serves no {stream} at all: the comparison would be empty"
    return table


def all_ground_truth(sb: Sandbox) -> dict[str, Table]:
    return {stream: ground_truth(sb, stream) for stream in KEYS}


def assert_loaded(stream: str, rows: Sequence[Mapping[str, Any]], expected: Table) -> None:
    """``rows`` (a target's table) hold exactly ``expected``: keys, no duplicates, values."""
    loaded: Table = {}
    duplicates = []
    for raw in rows:
        row = normalise(raw)
        key = key_of(stream, row)
        if key in loaded:
            duplicates.append(key)
        loaded[key] = row
    assert not duplicates, f"{stream}: {len(duplicates)} duplicate keys, e.g. {duplicates[:3]}"
    missing, extra = set(expected) - set(loaded), set(loaded) - set(expected)
    summary = f"{stream}: {len(loaded)} rows loaded, {len(expected)} expected"
    assert not missing, f"{summary}; {len(missing)} missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{summary}; {len(extra)} unexpected, e.g. {sorted(extra)[:3]}"
    for key, want in expected.items():
        got = loaded[key]
        absent = sorted(set(want) - set(got))
        assert not absent, f"{stream}: no column for {absent}"
        wrong = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        assert not wrong, f"{stream} {key}: loaded != served: {wrong}"


def after_revision(before: Table, after: Table) -> Table:
    """An incremental table after a re-read: new values win; rows no longer served stay."""
    return {**before, **after}


def changed_keys(before: Table, after: Table) -> set[Key]:
    return {k for k in set(before) & set(after) if before[k] != after[k]}


def revise_past_days(sb: Sandbox) -> list[dt.date]:
    """Change the tenant on five recent past days (all inside the tap's lookback)."""
    days = [sb.today - dt.timedelta(days=n) for n in range(1, 6)]
    sb.revise(days)
    return days


def bookings_starts(sb: Sandbox, since: int) -> list[dt.date]:
    """First day of every bookings request the sandbox answered from request ``since`` on."""
    return [
        dt.date.fromisoformat(r.query["startDate"])
        for r in sb.requests[since:]
        if r.path.startswith(BOOKINGS_PATH) and r.status == 200
    ]


def run_id() -> str:
    """A state id suffix of its own, so no test sees another's state."""
    return f"e2e-{uuid.uuid4().hex[:10]}"


def two_runs(
    meltano: Meltano,
    sb: Sandbox,
    target: str,
    target_env: Mapping[str, str],
    read: Any,
    tap_extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The scenario every target goes through; ``read(stream)`` returns the target's rows.

    1. `meltano run tap-calven <target>`: every stream's table holds the sandbox's records.
    2. Meltano keeps state; the sandbox changes five past days; a second run, resumed from
       that state (bookmark minus lookback, not `start_date`), leaves no duplicate keys and
       holds the changed values.
    """
    suffix = run_id()
    state_id = f"sandbox:tap-calven-to-{target}:{suffix}"
    env = {**tap_env(sb, TAP_CALVEN_START_DATE=start_date(sb).isoformat()), **target_env}
    env.update(tap_extra or {})
    args = ("--environment", "sandbox", "run", "--state-id-suffix", suffix, "tap-calven", target)

    first_truth = all_ground_truth(sb)
    meltano(*args, env=env)
    for stream, expected in first_truth.items():
        assert_loaded(stream, read(stream), expected)

    state = meltano.state(state_id)
    bookmarks = state["singer_state"]["bookmarks"]
    for stream in WINDOWED:
        assert bookmarks[stream]["replication_key_value"] == sb.today.isoformat(), bookmarks

    revised = revise_past_days(sb)
    second_truth = all_ground_truth(sb)
    changed = changed_keys(first_truth["bookings_attendance"], second_truth["bookings_attendance"])
    assert changed, f"revising {revised} changed no bookings: the second run would prove nothing"
    since = len(sb.requests)
    meltano(*args, env=env)

    # Meltano handed the state back: the re-read starts at the bookmark minus the lookback.
    starts = bookings_starts(sb, since)
    assert starts, "the second run asked for no bookings"
    assert min(starts) == sb.today - dt.timedelta(days=LOOKBACK_DAYS), starts
    for stream in KEYS:
        if stream in WINDOWED:
            expected = after_revision(first_truth[stream], second_truth[stream])
        else:
            expected = second_truth[stream]
        assert_loaded(stream, read(stream), expected)
    return {"state_id": state_id, "changed": changed, "revised": revised}


def rows_of(cursor: Any, query: str) -> list[dict[str, Any]]:
    """Rows of ``query`` as dicts (DB-API cursor)."""
    cursor.execute(query)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def table_names(names: Iterable[str]) -> set[str]:
    return {n.lower() for n in names}


_ABSENT = object()


def assert_nothing_lost(
    stream: str, rows: Sequence[Mapping[str, Any]], served: Sequence[Mapping[str, Any]]
) -> int:
    """Every value the sandbox served for ``stream`` is in the table; returns how many drifted.

    A value sits in its column (compared as `value` normalises it); or the column is null
    and `extra_fields` holds the original value under the field's own name; or, for a
    value that is not a string, the string column holds its JSON text (conform.py).
    """
    loaded: dict[Key, tuple[dict[str, Any], dict[str, Any]]] = {}
    for raw in rows:
        row = normalise(raw)
        extra = row.get(column("extra_fields"))
        loaded[key_of(stream, row)] = (
            row,
            json.loads(extra) if isinstance(extra, str) else extra or {},
        )
    latest = {key_of(stream, normalise(record)): record for record in served}
    assert set(loaded) == set(latest), f"{stream}: keys loaded != keys served"
    drifted, lost = 0, []
    for key, record in latest.items():
        row, extra = loaded[key]
        drifted += bool(extra)
        for name, served_value in record.items():
            got = row.get(column(name), _ABSENT)
            if got == value(served_value):
                continue
            if (got is None or got is _ABSENT) and extra.get(name, _ABSENT) == served_value:
                continue
            as_text = isinstance(got, str) and not isinstance(served_value, str)
            if as_text and json.loads(got) == served_value:
                continue
            lost.append((key, name, served_value, got))
    assert not lost, f"{stream}: {len(lost)} served values not loaded, e.g. {lost[:3]}"
    return drifted
