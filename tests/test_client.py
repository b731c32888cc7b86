"""Unit tests of client.py's pure parts: days, windows, Retry-After and back-off."""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools

import pytest

from tap_calven import client
from tap_calven.client import date_windows, parse_day, retry_after_seconds
from tap_calven.errors import ConfigError

D = dt.date


# -- days and windows -----------------------------------------------------------------


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


# -- Retry-After and back-off ---------------------------------------------------------


def test_retry_after_reads_seconds_and_http_dates_and_caps_them() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0") == 0.0
    assert retry_after_seconds("100000") == 300.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("nan") is None
    assert retry_after_seconds("inf") is None
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 20, usegmt=True)
    assert retry_after_seconds(date, now=now) == pytest.approx(20.0)
    assert retry_after_seconds(email.utils.formatdate(now - 50, usegmt=True), now=now) == 0.0


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    for retry in range(12):
        ceiling = min(client.BACKOFF_CAP, client.BACKOFF_BASE * 2**retry)
        waits = {client.backoff_seconds(retry) for _ in range(20)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 1  # jittered
    assert max(client.backoff_seconds(30) for _ in range(50)) <= 60.0
