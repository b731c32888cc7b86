"""The one base stream every endpoint shares.

`CalvenStream` turns the contract's windows and state (docs/contract.md) into requests:
date windows (oldest first, no gap, no overlap, planned by windows.py), optional location
partitions, and a bookmark after each completed window. The HTTP API and its retries are in
api.py, how requests run concurrently in fetching.py, how bodies are parsed in
json_array.py, and how RECORD messages are written in writer.py. The tap reaches a
stream only through the small `Run` protocol below, so this module never imports tap.py.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import time
from collections.abc import Generator, Hashable, Iterator
from importlib import resources
from typing import Any, ClassVar, Protocol, cast

from singer_sdk import Tap
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_calven.api import CalvenAPI
from tap_calven.conform import Conformer, with_extra_fields
from tap_calven.errors import APIError, GaveUpError, ResponseError
from tap_calven.fetching import FetchScheduler, Lane, Request
from tap_calven.sdk_internals import (
    BaseBatchFileEncoding,
    BatchConfig,
    StreamHooks,
    mark_state_unflushed,
    unwritten_records,
)
from tap_calven.types import Record
from tap_calven.windows import bookmark_after, date_windows, parse_day, read_range
from tap_calven.writer import JsonLinesBatcher, LeanPath, RecordWriter, lean_path_for

# What Calven may answer to a window longer than it serves (it documents 30 days at most).
WINDOW_REFUSALS = frozenset({400, 413})


class Run(Protocol):
    """What a stream needs from its tap's run (the tap is one; client.py never imports it)."""

    @property
    def settings(self) -> dict[str, Any]:
        """The config with defaults applied."""

    @property
    def today(self) -> dt.date:
        """The run's one UTC today."""

    @property
    def api(self) -> CalvenAPI:
        """The run's connection to Calven."""

    @property
    def fetch_scheduler(self) -> FetchScheduler:
        """The run's requests in flight."""

    @property
    def message_writer(self) -> object:
        """The tap's Singer message writer."""


def _load_schema(stream_name: str) -> dict[str, Any]:
    """The stream's schema file, plus the `extra_fields` column every stream has (conform.py)."""
    text = resources.files("tap_calven").joinpath("schemas", f"{stream_name}.json").read_text()
    return with_extra_fields(cast("dict[str, Any]", json.loads(text)))


class CalvenStream(StreamHooks):
    """The one base stream: paths, windows, state, concurrency and progress logging.

    Streams with a `replication_key` are windowed: their bookmark is the last day of the
    last window whose records were all emitted, never later than today (UTC), and never
    taken from record values (contract §4). Streams without one are read whole every run.
    """

    path: str
    # Contract §5: a 404 on a path the contract marks assumed skips the stream with a warning.
    path_is_assumed: ClassVar[bool] = False
    # bookings_attendance reads `horizon_days` past today when end_date is unset.
    reads_horizon: ClassVar[bool] = False
    # One request per configured location, with this single-id parameter.
    per_location_param: ClassVar[str | None] = None
    # API parameter -> list setting, sent comma-separated.
    list_params: ClassVar[dict[str, str]] = {}
    # Calven's records are flat JSON: conforming the top level is all there is to do, and
    # an unexpected nested value passes through as Calven sent it.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.ROOT_ONLY

    def __init__(self, tap: Tap, run: Run) -> None:
        super().__init__(tap=tap, schema=_load_schema(self.name))
        self.run = run
        self.record_writer = self._new_record_writer()
        # (refused window length, working window length) until a narrowed window completes
        self._narrowing: tuple[int, int] | None = None

    @property
    def api(self) -> CalvenAPI:
        """The run's shared connection."""
        return self.run.api

    @property
    def settings(self) -> dict[str, Any]:
        """The config with defaults applied (the SDK's `config` leaves them out)."""
        return self.run.settings

    @functools.cached_property
    def conformer(self) -> Conformer:
        """Fits this run's records to the schema; made at first use, once the catalog is in.

        The first use may be a lane started early, while the stream before is syncing.
        """
        return Conformer(
            self.name,
            self.effective_schema,  # the catalog's, when one was given
            self.primary_keys or (),
            self.settings["unknown_fields"],
        )

    @property
    def token_path(self) -> str:
        """The token-family path: the contract's, or the one `stream_paths` maps it to."""
        return str((self.settings.get("stream_paths") or {}).get(self.name, self.path))

    @property
    def request_path(self) -> str:
        """The token-family path, or the Basic family's: the only place the two differ."""
        path = self.token_path
        return path + "/basic" if self.api.auth.method == "basic" else path

    @property
    def may_be_absent(self) -> bool:
        """A 404 skips the stream: the contract assumes its path and the user kept it."""
        return self.path_is_assumed and self.token_path == self.path

    @property
    def is_windowed(self) -> bool:
        """Incremental streams are read in date windows."""
        return self.replication_key is not None

    # -- planning -----------------------------------------------------------------------

    def window_range(self) -> tuple[dt.date, dt.date]:
        """The days to read this run: from the bookmark minus the lookback, or start_date."""
        config = self.settings
        # Read, not `stream_state`: that creates an entry, and a stream may be planned
        # (its first requests started) while the one before it is still syncing.
        bookmarks = self.tap_state.get("bookmarks") or {}
        value = (bookmarks.get(self.name) or {}).get("replication_key_value")
        label = f"The state bookmark of stream '{self.name}'"
        end_date = config.get("end_date")
        return read_range(
            start_date=parse_day("Setting 'start_date'", config["start_date"]),
            end_date=parse_day("Setting 'end_date'", end_date) if end_date else None,
            bookmark=parse_day(label, value) if value else None,
            lookback_days=int(config["lookback_days"]),
            today=self.run.today,
            horizon_days=int(config["horizon_days"]) if self.reads_horizon else 0,
        )

    def plan_requests(
        self, first_day: dt.date | None = None, window_days: int | None = None
    ) -> list[Request]:
        """Every request of this run, in the order their records will be emitted.

        `first_day` and `window_days` re-plan the rest of a run after Calven refused a
        window (see `_narrowed_plan`).
        """
        if not self.is_windowed:
            return [Request(params={})]
        filters = self.filter_params()
        locations = list(self.settings.get("location_ids") or []) if self.per_location_param else []
        start, end = self.window_range()
        days = window_days or int(self.settings["window_days"])
        plan = []
        for first, last in date_windows(first_day or start, end, days):
            params = {"startDate": first.isoformat(), "endDate": last.isoformat(), **filters}
            window = (first, last)
            if not locations or self.per_location_param is None:
                plan.append(Request(params, window))
                continue
            for index, location in enumerate(locations):
                located = {**params, self.per_location_param: location}
                plan.append(Request(located, window, location, index == len(locations) - 1))
        return plan

    def filter_params(self) -> dict[str, str]:
        """The list settings this stream sends as comma-separated API parameters."""
        return {
            param: ",".join(self.settings[setting])
            for param, setting in self.list_params.items()
            if self.settings.get(setting)
        }

    # -- reading --------------------------------------------------------------------------

    @override
    def get_records(self, context: Context | None) -> Iterator[Record]:
        """Emit every planned request's records in order; bookmark after each window."""
        lean = lean_path_for(self, self.run.message_writer, conformed=True)
        self.record_writer = self._new_record_writer(lean)
        try:
            yield from self._get_records()
        except Exception:
            # The run is failing: the requests started early for later streams are moot.
            self.run.fetch_scheduler.close()
            raise
        finally:
            self.flush_records()  # also when the run fails part-way
            for line in self.conformer.warnings():
                self.logger.warning(line)

    def _get_records(self) -> Iterator[Record]:
        plan = self.plan_requests()
        if self.is_windowed and plan:
            first, last = plan[0].window or (None, None), plan[-1].window or (None, None)
            self.logger.info(
                "%s: %d request(s) for %s..%s", self.name, len(plan), first[0], last[1]
            )
        while plan:
            refused = yield from self._read(plan)
            plan = self._narrowed_plan(*refused) if refused else []

    def _read(self, plan: list[Request]) -> Generator[Record, None, tuple[Request, str] | None]:
        """Emit the plan's records in order; return the request whose window Calven refused."""
        fetches = self.run.fetch_scheduler.fetches(self.lane(plan))
        try:
            for fetch in fetches:
                count = 0
                try:
                    for record in fetch.records():
                        count += 1
                        yield record
                except (APIError, GaveUpError) as exc:
                    if self._is_absent(exc):
                        return None
                    if count == 0 and self._refuses_window(exc, fetch.request):
                        return fetch.request, str(exc)
                    raise
                self._complete(fetch.request, count, time.monotonic() - fetch.started)
        finally:
            fetches.close()  # cancels the requests started for the rest of this plan
        return None

    def _is_absent(self, exc: Exception) -> bool:
        """A 404 on an assumed path: skip the stream with one warning (contract §5)."""
        if not (isinstance(exc, APIError) and exc.status == 404 and self.may_be_absent):
            return False
        if exc.path != self.request_path:
            return False
        self.logger.warning(
            "Stream '%s' skipped: Calven has no %s (HTTP 404); this path is assumed, not "
            "documented. If Calven serves it elsewhere, set `stream_paths`.",
            self.name,
            self.request_path,
        )
        return True

    def _refuses_window(self, exc: Exception, request: Request) -> bool:
        """Calven refused a window longer than a day (see `refuses_window`)."""
        if request.window is None or request.window[0] == request.window[1]:
            return False
        return self.refuses_window(exc)

    def refuses_window(self, exc: Exception) -> bool:
        """How Calven may refuse a window too long for it: HTTP 400 or 413, or a timeout."""
        if isinstance(exc, APIError):
            return exc.status in WINDOW_REFUSALS and exc.path == self.request_path
        return isinstance(exc, GaveUpError) and exc.timed_out

    def _narrowed_plan(self, refused: Request, reason: str) -> list[Request]:
        """The rest of the run from the refused window's first day, in windows half as long.

        Each window still gets its own STATE once read, as with that `window_days` set, so
        no day is skipped and a stop resumes from a complete window.
        """
        assert refused.window is not None
        first, last = refused.window
        days = max(1, ((last - first).days + 1) // 2)
        self.logger.info("%s: %s; trying %d-day windows", self.name, reason, days)
        refused_days = self._narrowing[0] if self._narrowing else (last - first).days + 1
        self._narrowing = (refused_days, days)
        return self.plan_requests(first_day=first, window_days=days)

    def lane(self, plan: list[Request] | None = None) -> Lane:
        """The requests of this stream, as a lane of the run's FetchScheduler."""
        return Lane(self.name, self.plan_requests() if plan is None else plan, self._fetch)

    def _fetch(self, request: Request) -> Iterator[Record]:
        return self.api.iter_records(
            self.request_path, request.params, self._key_of, self.conformer
        )

    def _key_of(self, record: Record) -> Hashable:
        """The record's primary key (ids compared case-insensitively); it must be present."""
        key = []
        for name in self.primary_keys or ():
            value = record.get(name)
            if value is None or value == "":
                raise ResponseError(
                    f"Stream '{self.name}': a record from {self.request_path} has no "
                    f"primary key field '{name}'."
                )
            key.append(value.lower() if isinstance(value, str) else value)
        return hash(tuple(key))

    def _complete(self, request: Request, count: int, seconds: float) -> None:
        """Log progress; after the last request of a window, move the bookmark and emit STATE."""
        self.logger.info(
            "%s: %s: %d records in %.1f s", self.name, request.describe(), count, seconds
        )
        if request.window is None or not request.closes_window:
            return
        if self._narrowing is not None:
            refused_days, days = self._narrowing
            self._narrowing = None
            self.logger.warning(
                "%s: Calven refused %d-day windows; %d-day windows work, and the rest of "
                "this run reads them. Set window_days to %d to start that way.",
                self.name,
                refused_days,
                days,
                days,
            )
        bookmark = bookmark_after(request.window[1], self.run.today)
        state = self.stream_state
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = bookmark.isoformat()
        mark_state_unflushed(self)
        # In BATCH mode the SDK writes STATE after each BATCH message; a STATE written here
        # could reach the target before the batch file holding this window's records.
        if not self.get_batch_config(self.config):
            self.write_state()

    # -- the record path ----------------------------------------------------------------

    def _new_record_writer(self, lean: LeanPath | None = None) -> RecordWriter:
        return RecordWriter(lean, self.sdk_write_record, lambda: mark_state_unflushed(self))

    def write_record(self, record: Record) -> None:
        """Write one RECORD message through this sync's record writer (writer.py)."""
        self.record_writer.write(record)

    def flush_records(self) -> None:
        """Write the gathered RECORD lines to stdout, ahead of any other message."""
        self.record_writer.flush()

    @override
    def get_batches(
        self, batch_config: BatchConfig, context: Context | None = None
    ) -> Iterator[tuple[BaseBatchFileEncoding, list[str]]]:
        """BATCH files: JSON lines by the tap's own encoder (writer.py), parquet by the SDK's."""
        if batch_config.encoding.format != "jsonl":
            yield from super().get_batches(batch_config, context)
            return
        batcher = JsonLinesBatcher(self.tap_name, self.name, batch_config)
        for manifest in batcher.get_batches(unwritten_records(self, context)):
            yield batch_config.encoding, manifest

    @override
    def log(self, message: str, *args: Any, level: int = logging.INFO, **kwargs: Any) -> None:
        """Demote the SDK's generic 'unhandled error' line to DEBUG.

        A failed run prints one ERROR line (contract §5): the cause, from `main`.
        """
        if level >= logging.ERROR and message.startswith("An unhandled error occurred"):
            level = logging.DEBUG
        super().log(message, *args, level=level, **kwargs)

    @override
    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: the bookmark is capped at today by _complete, not by the SDK."""
        return
