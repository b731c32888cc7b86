"""Requests in flight, with their records handed back strictly in plan order.

Each request runs in its own thread and fills a bounded queue, so up to
`max_concurrent_requests` wait on Calven at once while memory stays bounded by the
records in flight. The writer takes a stream's records request by request, in the order
planned, so the bookmark written after each window is always safe to resume from.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import cast

from tap_calven.types import Record

BATCH_RECORDS = 500  # records handed from a fetching thread to the writer at once
QUEUE_BATCHES = 4  # batches a fetching thread may run ahead before it waits


@dataclass(frozen=True)
class Request:
    """One GET of a stream: its parameters and the window and location it covers."""

    params: dict[str, str]
    window: tuple[dt.date, dt.date] | None = None
    location: str | None = None
    closes_window: bool = True

    def describe(self) -> str:
        """For the progress log: the window and, when partitioned, the location."""
        text = f"window {self.window[0]}..{self.window[1]}" if self.window else "full table"
        return f"{text}, location {self.location}" if self.location else text


_DONE = object()


@dataclass
class _Fetch:
    """One request's records, fetched by its own thread into a bounded queue."""

    request: Request
    started: float = field(default_factory=time.monotonic)
    queue: queue.Queue[object] = field(default_factory=lambda: queue.Queue(QUEUE_BATCHES))
    cancelled: threading.Event = field(default_factory=threading.Event)

    def run(self, produce: Callable[[Request], Iterator[Record]]) -> None:
        """Thread body: fill the queue in batches; end with _DONE or the exception."""
        try:
            batch: list[Record] = []
            for record in produce(self.request):
                batch.append(record)
                if len(batch) >= BATCH_RECORDS:
                    self._put(batch)
                    batch = []
            self._put(batch)
            self._put(_DONE)
        except _Cancelled:
            return
        except BaseException as exc:
            # Cancelled meanwhile (the run is already failing): end quietly, or the
            # thread's traceback would reach stderr at every log level.
            with suppress(_Cancelled):
                self._put(exc)

    def _put(self, item: object) -> None:
        while not self.cancelled.is_set():
            try:
                self.queue.put(item, timeout=0.2)
            except queue.Full:
                continue
            return
        raise _Cancelled

    def records(self) -> Iterator[Record]:
        """Yield the records in the order the server sent them; re-raise a failure."""
        while True:
            item = self.queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from cast("list[Record]", item)


class _Cancelled(Exception):
    """The writer stopped reading; the fetching thread ends quietly."""


@dataclass(eq=False)
class Lane:
    """One stream's requests in one run: started in order, handed over in order."""

    name: str
    plan: list[Request]
    produce: Callable[[Request], Iterator[Record]]
    unstarted: int = 0  # index in `plan` of the first request not yet started
    started: deque[_Fetch] = field(default_factory=deque)  # started, not yet handed over


class FetchScheduler:
    """Keeps up to `concurrency` requests in flight across the streams of a run.

    A stream's requests are handed over strictly in plan order. When the stream syncing
    now has no request left to start, a free slot goes to the first requests of the
    streams that sync after it (`lane_after`), so the last windows of one stream and
    the full-table streams after it do not each cost a round trip on their own. A
    fetch counts as in flight until its records have all been handed to the writer.
    """

    def __init__(
        self, concurrency: int, lane_after: Callable[[str], Lane | None] | None = None
    ) -> None:
        self.concurrency = concurrency
        self._lane_after = lane_after
        self._ahead: list[Lane] = []  # lanes after the one syncing now, planned early
        self._last_lane = lane_after is None  # no lane after the last one in `_ahead`
        self._in_flight = 0

    def fetches(self, lane: Lane) -> Generator[_Fetch, None, None]:
        """Hand over `lane`'s fetches in order, starting new ones as slots free up."""
        names = [ahead.name for ahead in self._ahead]
        early: Lane | None = None
        if lane.name in names:
            index = names.index(lane.name)
            stale, early, self._ahead = (
                self._ahead[:index],
                self._ahead[index],
                self._ahead[index + 1 :],
            )
        else:  # not the lane expected next: plan again from this one
            stale, self._ahead = self._ahead, []
            self._last_lane = self._lane_after is None
        for ahead in stale:  # planned for a sync that did not come
            self._cancel(ahead)
        if early is not None and early.plan == lane.plan:
            lane = early
        elif early is not None:  # the stream planned differently since: start afresh
            self._cancel(early)
        handed: _Fetch | None = None
        try:
            self._fill(lane)
            while lane.started:
                handed = lane.started.popleft()
                yield handed
                handed = None
                self._in_flight -= 1
                self._fill(lane)
        finally:
            if handed is not None:
                handed.cancelled.set()
                self._in_flight -= 1
            self._cancel(lane)

    def _fill(self, current: Lane) -> None:
        """Start requests while slots are free: the current lane's first, then the next."""
        index = -1  # -1: the current lane; i: self._ahead[i]
        lane = current
        while self._in_flight < self.concurrency:
            if lane.unstarted < len(lane.plan):
                fetch = _Fetch(lane.plan[lane.unstarted])
                lane.unstarted += 1
                threading.Thread(target=fetch.run, args=(lane.produce,), daemon=True).start()
                lane.started.append(fetch)
                self._in_flight += 1
                continue
            index += 1
            if index == len(self._ahead):
                following = None if self._last_lane else self._plan_after(lane.name)
                if following is None:
                    self._last_lane = True
                    return
                self._ahead.append(following)
            lane = self._ahead[index]

    def _plan_after(self, name: str) -> Lane | None:
        """The lane that syncs after `name`; None when there is none or it cannot plan."""
        assert self._lane_after is not None
        try:
            return self._lane_after(name)
        except Exception:  # the stream meets the error again when it syncs
            return None

    def close(self) -> None:
        """Stop the requests started early for streams that will not sync (the run failed)."""
        for lane in self._ahead:
            self._cancel(lane)
        self._ahead = []
        self._last_lane = self._lane_after is None

    def _cancel(self, lane: Lane) -> None:
        """Stop a lane's started fetches that will never be handed over."""
        while lane.started:
            lane.started.popleft().cancelled.set()
            self._in_flight -= 1
