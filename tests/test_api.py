"""Unit tests of api.py's pure parts: Retry-After and back-off."""

from __future__ import annotations

import datetime as dt
import email.utils

import pytest

from tap_calven import api
from tap_calven.api import retry_after_seconds

D = dt.date


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
        ceiling = min(api.BACKOFF_CAP, api.BACKOFF_BASE * 2**retry)
        waits = {api.backoff_seconds(retry) for _ in range(20)}
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(waits) > 1  # jittered
    assert max(api.backoff_seconds(30) for _ in range(50)) <= 60.0
