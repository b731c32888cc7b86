"""Calendar behaviour of windows and bookmarks, with every date passed in: no clock is read.

Year boundaries, a leap day and a horizon that runs into the next year, on the pure
functions the streams plan their runs with (`tap_calven.windows`).
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from tap_calven.errors import ConfigError
from tap_calven.windows import bookmark_after, date_windows, parse_day, read_range

D = dt.date
ONE_DAY = dt.timedelta(days=1)


def days_of(windows: list[tuple[dt.date, dt.date]]) -> list[dt.date]:
    out = []
    for first, last in windows:
        day = first
        while day <= last:
            out.append(day)
            day += ONE_DAY
    return out


def test_a_30_day_plan_across_new_year_and_a_leap_day_covers_each_day_once() -> None:
    start, end = D(2027, 12, 15), D(2028, 3, 15)
    plan = date_windows(start, end, 30)
    assert plan == [
        (D(2027, 12, 15), D(2028, 1, 13)),
        (D(2028, 1, 14), D(2028, 2, 12)),
        (D(2028, 2, 13), D(2028, 3, 13)),
        (D(2028, 3, 14), D(2028, 3, 15)),
    ]
    days = days_of(plan)
    assert days.count(D(2028, 2, 29)) == 1
    assert days.count(D(2027, 12, 31)) == days.count(D(2028, 1, 1)) == 1
    assert len(days) == len(set(days)) == (end - start).days + 1 == 92
    # No gap and no overlap: each window starts the day after the previous one ended.
    assert all(b[0] - a[1] == ONE_DAY for a, b in itertools.pairwise(plan))
    assert all((last - first).days < 30 for first, last in plan)


@pytest.mark.parametrize(
    ("lookback", "resume"),
    [(0, D(2027, 12, 31)), (1, D(2027, 12, 30)), (7, D(2027, 12, 24)), (40, D(2027, 11, 21))],
)
def test_a_bookmark_on_new_years_eve_resumes_the_lookback_before_it(
    lookback: int, resume: dt.date
) -> None:
    """The contract: the bookmark minus `lookback_days`, that day included (docs/contract.md).

    The bookmark day itself is re-read; the first never-read day, 01-01, comes next.
    """
    start, end = read_range(
        start_date=D(2027, 1, 1),
        end_date=None,
        bookmark=D(2027, 12, 31),
        lookback_days=lookback,
        today=D(2028, 1, 3),
    )
    assert (start, end) == (resume, D(2028, 1, 3))
    assert D(2028, 1, 1) in days_of(date_windows(start, end, 30))


def test_a_start_date_after_the_lookback_wins() -> None:
    start, _ = read_range(
        start_date=D(2027, 12, 28),
        end_date=None,
        bookmark=D(2027, 12, 31),
        lookback_days=7,
        today=D(2028, 1, 3),
    )
    assert start == D(2027, 12, 28)


def test_the_horizon_runs_into_the_next_year() -> None:
    start, end = read_range(
        start_date=D(2027, 12, 20),
        end_date=None,
        bookmark=None,
        lookback_days=7,
        today=D(2027, 12, 25),
        horizon_days=14,
    )
    assert (start, end) == (D(2027, 12, 20), D(2028, 1, 8))
    assert date_windows(start, end, 30) == [(D(2027, 12, 20), D(2028, 1, 8))]
    assert date_windows(start, end, 7)[-1] == (D(2028, 1, 3), D(2028, 1, 8))


def test_an_end_date_replaces_today_and_the_horizon() -> None:
    _, end = read_range(
        start_date=D(2028, 2, 1),
        end_date=D(2028, 2, 29),
        bookmark=None,
        lookback_days=7,
        today=D(2030, 1, 1),
        horizon_days=14,
    )
    assert end == D(2028, 2, 29)


def test_the_bookmark_never_passes_today_even_across_new_year() -> None:
    today = D(2027, 12, 31)
    assert bookmark_after(D(2028, 1, 14), today) == today  # a horizon window
    assert bookmark_after(D(2027, 12, 30), today) == D(2027, 12, 30)
    assert bookmark_after(D(2028, 2, 29), D(2028, 3, 1)) == D(2028, 2, 29)


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("2028-02-29", D(2028, 2, 29)),
        ("2027-12-31T23:30:00-02:00", D(2028, 1, 1)),  # its UTC date
        ("2028-01-01T00:30:00+14:00", D(2027, 12, 31)),
        ("2027-12-31T23:59:59Z", D(2027, 12, 31)),
    ],
)
def test_a_day_is_read_in_utc(text: str, day: dt.date) -> None:
    assert parse_day("start_date", text) == day


def test_a_day_that_does_not_exist_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^end_date is not a valid date: '2027-02-29'"):
        parse_day("end_date", "2027-02-29")


def test_parse_day_reads_dates_and_utc_date_of_date_times() -> None:
    assert parse_day("x", "2024-02-29") == D(2024, 2, 29)
    assert parse_day("x", "2024-03-01T23:30:00Z") == D(2024, 3, 1)
    # 23:30 at UTC-05:00 is the next day in UTC.
    assert parse_day("x", "2024-03-01T23:30:00-05:00") == D(2024, 3, 2)
    assert parse_day("x", "2024-03-01T10:00:00") == D(2024, 3, 1)


@pytest.mark.parametrize("bad", ["2024-13-01", "yesterday", "", None, 20240101, "2024-02-30"])
def test_parse_day_rejects_what_is_not_a_date(bad: object) -> None:
    with pytest.raises(ConfigError, match="Setting 'start_date' is not a valid date"):
        parse_day("Setting 'start_date'", bad)


def test_windows_cover_the_range_without_gap_or_overlap() -> None:
    start, end = D(2024, 1, 1), D(2024, 3, 15)
    for size in (1, 7, 29, 30):
        windows = date_windows(start, end, size)
        assert windows[0][0] == start
        assert windows[-1][1] == end
        for first, last in windows:
            assert first <= last
            assert (last - first).days + 1 <= size
        for (_, last), (first, _) in itertools.pairwise(windows):
            assert first == last + dt.timedelta(days=1)
    assert len(date_windows(start, end, 30)) == 3  # 75 days
    assert date_windows(D(2024, 1, 2), D(2024, 1, 1), 30) == []
    assert date_windows(start, start, 30) == [(start, start)]
