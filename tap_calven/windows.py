"""Days, date windows and the bookmark: which days a run reads and where it resumes.

Pure calendar arithmetic on `datetime.date`, plus `utc_today`, the one place the tap
reads the clock. See docs/contract.md §4.
"""

from __future__ import annotations

import datetime as dt

from tap_calven.errors import ConfigError


def utc_today() -> dt.date:
    """Today's date in UTC: the only clock reading behind every window and bookmark."""
    return dt.datetime.now(dt.timezone.utc).date()


def parse_day(label: str, value: object) -> dt.date:
    """Read a day: `YYYY-MM-DD`, or a date-time whose UTC date is taken."""
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                moment = moment.astimezone(dt.timezone.utc)
            return moment.date()
    raise ConfigError(f"{label} is not a valid date: {value!r} (expected YYYY-MM-DD).")


def date_windows(start: dt.date, end: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """Split the inclusive range [start, end] into windows of at most `days` days."""
    windows = []
    while start <= end:
        last = min(start + dt.timedelta(days=days - 1), end)
        windows.append((start, last))
        start = last + dt.timedelta(days=1)
    return windows


def read_range(
    *,
    start_date: dt.date,
    end_date: dt.date | None,
    bookmark: dt.date | None,
    lookback_days: int,
    today: dt.date,
    horizon_days: int = 0,
) -> tuple[dt.date, dt.date]:
    """The inclusive days a windowed stream reads this run.

    From the bookmark minus the lookback (never before `start_date`), or from
    `start_date` on a first run; to `end_date`, or to today plus the stream's horizon.
    """
    start = start_date
    if bookmark is not None:
        start = max(start_date, bookmark - dt.timedelta(days=lookback_days))
    end = end_date if end_date is not None else today + dt.timedelta(days=horizon_days)
    return start, end


def bookmark_after(window_last_day: dt.date, today: dt.date) -> dt.date:
    """The bookmark once a window is complete: its last day, but never later than today.

    Days after today (the horizon) are re-read every run, so a bookmark never skips them.
    """
    return min(window_last_day, today)
