"""Mart figures computed straight from the sandbox's own records, without SQL.

Each function restates one mart rule (transform/README.md) in Python over what the
sandbox served, so a mart that computes a figure wrongly disagrees with it.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

Record = Mapping[str, Any]
ATTENDED = ("confirmed", "walkIn")


def lower(value: object) -> str | None:
    return value.lower() if isinstance(value, str) else None


def day_of(record: Record) -> dt.date:
    return dt.date.fromisoformat(record["day"][:10])


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def office_of(record: Record) -> str | None:
    """The day's office: where the desk is booked, else the user's primary location."""
    return lower(record.get("bookingLocationId")) or lower(record.get("primaryLocationId"))


def daily_no_shows(bookings: Iterable[Record], location: str) -> dict[dt.date, int]:
    """No-shows per day at `location` (days with any row there, zero included)."""
    out: Counter[dt.date] = Counter()
    for r in bookings:
        if office_of(r) == location:
            out[day_of(r)] += r.get("attendanceType") == "noShow"
    return dict(out)


def desk_weeks(bookings: Iterable[Record], desk: str) -> dict[dt.date, tuple[int, int]]:
    """(booked days, attended days) of `desk` per ISO week it was booked in."""
    booked: dict[dt.date, set[dt.date]] = {}
    attended: dict[dt.date, set[dt.date]] = {}
    for r in bookings:
        if lower(r.get("bookingPlaceId")) != desk:
            continue
        day = day_of(r)
        booked.setdefault(week_start(day), set()).add(day)
        if r.get("attendanceType") in ATTENDED:
            attended.setdefault(week_start(day), set()).add(day)
    return {w: (len(days), len(attended.get(w, ()))) for w, days in booked.items()}


def user_weeks(bookings: Iterable[Record], user: str) -> dict[dt.date, tuple[int, int, int, int]]:
    """(office plan, booked, attended, no-show days) of `user` per ISO week."""
    out: dict[dt.date, list[int]] = {}
    for r in bookings:
        if lower(r["userId"]) != user:
            continue
        row = out.setdefault(week_start(day_of(r)), [0, 0, 0, 0])
        row[0] += r.get("plan") == "o"
        row[1] += r.get("bookingPlaceId") is not None
        row[2] += r.get("attendanceType") in ATTENDED
        row[3] += r.get("attendanceType") == "noShow"
    return {w: (a, b, c, d) for w, (a, b, c, d) in out.items()}


def busiest(values: Iterable[str | None]) -> str:
    """The most frequent non-null value (ties: the smallest)."""
    counts = Counter(v for v in values if v)
    top = max(counts.values())
    return min(v for v, n in counts.items() if n == top)
