"""Unit tests of fetching.py: concurrent requests handed back in order."""

from __future__ import annotations

import threading
import time

import pytest

from tap_calven.errors import RetryableError
from tap_calven.fetching import FetchScheduler, Lane, Request


def fetch_in_order(plan, produce, concurrency):
    """One stream's requests through the run's scheduler, as CalvenStream uses it."""
    return FetchScheduler(concurrency).fetches(Lane("stream", list(plan), produce))


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
