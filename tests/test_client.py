"""Unit tests of client.py's pure parts: days, windows, the JSON array reader, retries."""

from __future__ import annotations

import datetime as dt
import email.utils
import itertools
import json
import threading
import time

import pytest

from tap_calven import client
from tap_calven.client import (
    Request,
    date_windows,
    fetch_in_order,
    iter_json_array,
    parse_day,
    retry_after_seconds,
)
from tap_calven.errors import ConfigError, RetryableError

D = dt.date


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


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


# -- the JSON array reader ------------------------------------------------------------

RECORDS = [
    {
        "id": i,
        "name": f"n{i}",
        "text": 'braces } ] , and "quotes" \u00e9\u4e2d',
        "ok": True,
        "x": None,
    }
    for i in range(300)
]


@pytest.mark.parametrize("size", [1, 7, 64, 4096, 1 << 20])
def test_reader_yields_every_object_whatever_the_chunking(size: int) -> None:
    for body in (json.dumps(RECORDS).encode(), json.dumps(RECORDS, indent=2).encode()):
        assert list(iter_json_array(chunked(body, size))) == RECORDS


def test_reader_accepts_empty_arrays_and_white_space() -> None:
    assert list(iter_json_array([b"  [ \n ] \n"])) == []
    assert list(iter_json_array([b"[", b"]"])) == []


def test_reader_splits_multibyte_characters_across_chunks() -> None:
    body = json.dumps([{"name": "Zo\u00eb \u6771\u4eac \U0001f600"}], ensure_ascii=False).encode()
    assert list(iter_json_array(chunked(body, 1))) == [{"name": "Zo\u00eb \u6771\u4eac \U0001f600"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "oops"}', "not a JSON array"),
        (b"", "empty"),
        (b"null", "not a JSON array"),
        (b'[{"a": 1}, {"a": 2', "ended early"),
        (b'[{"a": 1},', "ended early"),
        (b'[{"a": 1}', "ended early"),
        (b"[1, 2]", "expected an object"),
        (b'[{"a": 1}] [', "data after its JSON array"),
        (b'[{"a": 1} {"a": 2}]', "expected ',' or ']'"),
    ],
)
def test_reader_rejects_bodies_that_are_not_whole_arrays_of_objects(
    body: bytes, message: str
) -> None:
    with pytest.raises(RetryableError, match=message):
        list(iter_json_array(chunked(body, 3)))


def test_reader_yields_records_before_the_body_ends() -> None:
    """Records come out as their bytes arrive: memory does not grow with the response."""
    seen: list[int] = []

    def source():
        yield b'[{"id": 1},'
        seen.append(len(got))
        yield b'{"id": 2}]'

    got: list[dict] = []
    for record in iter_json_array(source()):
        got.append(record)
    assert got == [{"id": 1}, {"id": 2}]
    assert seen == [1]  # the first record was out before the second chunk was read


# -- Retry-After and back-off ---------------------------------------------------------


def test_retry_after_reads_seconds_and_http_dates_and_caps_them() -> None:
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("0") == 0.0
    assert retry_after_seconds("100000") == 300.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
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


# -- concurrency with in-order output -------------------------------------------------


def test_fetch_in_order_runs_requests_concurrently_but_hands_them_back_in_order() -> None:
    active, peak, lock = 0, 0, threading.Lock()
    plan = [Request(params={"n": str(i)}) for i in range(12)]

    def produce(request: Request):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        n = int(request.params["n"])
        time.sleep(0.02 * ((12 - n) % 4))  # later requests often finish first
        with lock:
            active -= 1
        for i in range(1200):  # more than a few batches, so threads must wait their turn
            yield {"n": n, "i": i}

    out = []
    for fetch in fetch_in_order(plan, produce, concurrency=4):
        out.extend((r["n"], r["i"]) for r in fetch.records())
    assert out == [(n, i) for n in range(12) for i in range(1200)]
    assert 1 < peak <= 4


def test_fetch_in_order_with_one_worker_is_strictly_sequential() -> None:
    active, peak, lock = 0, 0, threading.Lock()

    def produce(request: Request):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01)
        with lock:
            active -= 1
        yield {"n": request.params["n"]}

    plan = [Request(params={"n": str(i)}) for i in range(6)]
    got = [r["n"] for f in fetch_in_order(plan, produce, 1) for r in f.records()]
    assert got == [str(i) for i in range(6)]
    assert peak == 1


def test_fetch_in_order_raises_a_failure_in_its_place_and_stops_the_others() -> None:
    started: list[int] = []

    def produce(request: Request):
        n = int(request.params["n"])
        started.append(n)
        if n == 2:
            raise RetryableError("boom")
        yield from ({"n": n, "i": i} for i in range(5000))

    plan = [Request(params={"n": str(i)}) for i in range(10)]
    got = []
    with pytest.raises(RetryableError, match="boom"):
        for fetch in fetch_in_order(plan, produce, 3):
            got.extend(r["n"] for r in fetch.records())
    assert set(got) == {0, 1}  # request 2 failed; nothing after it was handed out
    assert max(started) <= 4  # never more than `concurrency` requests ahead
