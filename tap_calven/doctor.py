"""`tap-calven doctor`: a few bounded requests that show how a tenant differs from the tap.

The first run against a real tenant is the first real test of the schemas (Calven documents
only some of them). The doctor signs in once, reads a small sample of every stream (one
request per full-table stream, a one- or seven-day window per windowed stream, never a
backfill), and reports what drift.py finds: field names, JSON types and date/time shapes,
never a value. Rendering is in doctor_report.py. The doctor reuses the tap's own settings
validation, authenticator, API client (with its retries) and stream definitions; it takes
the tap class as an argument, so this module never imports tap.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import re
import sys
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from singer_sdk.logging import ConsoleFormatter

from tap_calven.api import CalvenAPI
from tap_calven.client import CalvenStream, Run
from tap_calven.conform import EXTRA_FIELDS
from tap_calven.doctor_report import Report, StreamReport, write_report
from tap_calven.drift import StreamDrift
from tap_calven.errors import (
    APIError,
    AuthError,
    CalvenError,
    ConfigError,
    GaveUpError,
    ResponseError,
)
from tap_calven.types import Record
from tap_calven.windows import parse_day

COMMAND = "doctor"
#: Windows tried, longest first; a shorter one only after Calven refused the longer.
PROBE_DAYS = (30, 7, 1)
#: The sample of a windowed stream is its first accepted window of at most this many days.
SAMPLE_DAYS = 7
#: At most this many records are read from one response (the rest is left unread).
SAMPLE_LIMIT = 5000
#: Options of the tap's command line that take a value (Meltano adds --catalog, --state).
_VALUE_OPTIONS = frozenset({"--config", "--catalog", "--state", "--properties", "--json"})
_HTTP_STATUS = re.compile(r"\bHTTP (\d{3})\b")

logger = logging.getLogger("tap-calven")


class DoctorTap(Run, Protocol):
    """What the doctor needs from a tap (a stream's Run, and the streams): TapCalven is one."""

    @property
    def streams(self) -> Mapping[str, Any]:
        """The tap's streams by name."""


TapFactory = Callable[..., DoctorTap]


# -- probing ------------------------------------------------------------------------------


def sample_end(settings: Mapping[str, Any], today: dt.date) -> dt.date:
    """The last day sampled: today, or `end_date` when that is earlier."""
    end_date = settings.get("end_date")
    if not end_date:
        return today
    return min(parse_day("Setting 'end_date'", end_date), today)


def diagnose(tap: DoctorTap) -> Report:
    """Sign in once, then sample every stream in the tap's order."""
    api = tap.api
    report = Report(auth_method=api.auth.method, sample_end=sample_end(tap.settings, tap.today))
    auth_failure = _sign_in(api, report)
    for stream in tap.streams.values():
        if isinstance(stream, CalvenStream):
            report.streams.append(_diagnose_stream(api, stream, report.sample_end, auth_failure))
    return report


def _sign_in(api: CalvenAPI, report: Report) -> CalvenError | None:
    """Fetch the run's token (none for Basic) and note its lifetime, never the token."""
    if not api.auth.uses_tokens:
        return None
    try:
        api.auth.authorization()
    except CalvenError as exc:
        report.auth_error = str(exc)
        return exc
    report.token_lifetime = api.auth.token_lifetime
    return None


def _diagnose_stream(
    api: CalvenAPI, stream: CalvenStream, end: dt.date, auth_failure: CalvenError | None
) -> StreamReport:
    report = StreamReport(
        name=stream.name,
        path=stream.request_path,
        windowed=stream.is_windowed,
        drift=StreamDrift(_calven_schema(stream)),
        may_be_absent=stream.may_be_absent,
    )
    try:
        if auth_failure is not None:
            raise auth_failure
        if stream.is_windowed:
            _sample_windows(api, stream, end, report)
        else:
            _sample(api, stream, {}, report)
    except CalvenError as exc:
        report.error, report.error_kind, report.status = str(exc), _kind(exc), _status(exc)
    return report


def _sample_windows(
    api: CalvenAPI, stream: CalvenStream, end: dt.date, report: StreamReport
) -> None:
    """Probe 30, 7, then 1 days, a shorter one only after a refusal; sample at most 7 days.

    A refusal is what client.py's adaptive windows treat as one: HTTP 400 or 413 or a
    request that timed out, on a window longer than one day. The longest window accepted
    is only opened (one record read); the sample is read from the first accepted window
    of at most SAMPLE_DAYS days.
    """
    filters = _filters(stream)
    for days in PROBE_DAYS:
        first = end - dt.timedelta(days=days - 1)
        params = {"startDate": first.isoformat(), "endDate": end.isoformat(), **filters}
        try:
            if days > SAMPLE_DAYS:
                _open(api, stream, params)
            else:
                _sample(api, stream, params, report)
        except (APIError, GaveUpError) as exc:
            if days > 1 and stream.refuses_window(exc):
                report.refused_windows.append(days)
                continue
            raise
        report.largest_window = report.largest_window or days
        if days <= SAMPLE_DAYS:
            report.sample = (first, end)
            return


def _calven_schema(stream: CalvenStream) -> dict[str, Any]:
    """The stream's schema as Calven's records should match it: without our extra_fields."""
    properties = {k: v for k, v in stream.schema["properties"].items() if k != EXTRA_FIELDS}
    return {**stream.schema, "properties": properties}


def _filters(stream: CalvenStream) -> dict[str, str]:
    """The filters the tap would send; a per-location stream asks for its first location."""
    params = stream.filter_params()
    locations = stream.settings.get("location_ids") or []
    if stream.per_location_param and locations:
        params[stream.per_location_param] = str(locations[0])
    return params


def _key_of(stream: CalvenStream) -> Callable[[Record], Hashable]:
    """The record's primary key, for the API's no-repeat-after-retry rule."""
    names = tuple(stream.primary_keys or ())
    return lambda record: tuple(str(record.get(name)).lower() for name in names)


def _open(api: CalvenAPI, stream: CalvenStream, params: Mapping[str, str]) -> None:
    """Send one request and read at most one record: enough to know Calven accepts it."""
    records = api.iter_records(stream.request_path, params, _key_of(stream))
    try:
        next(records, None)
    finally:
        _close(records)


def _sample(
    api: CalvenAPI, stream: CalvenStream, params: Mapping[str, str], report: StreamReport
) -> None:
    """Read up to SAMPLE_LIMIT records into a fresh StreamDrift; a failure leaves none."""
    drift, count = StreamDrift(_calven_schema(stream)), 0
    records = api.iter_records(stream.request_path, params, _key_of(stream))
    try:
        for record in records:
            drift.add(record)
            count += 1
            if count >= SAMPLE_LIMIT:
                break
    finally:
        _close(records)
    # Calven documents 200 for every warehouse GET; api.py passes any 2xx.
    report.drift, report.records, report.status = drift, count, 200
    report.truncated = count >= SAMPLE_LIMIT


def _close(records: Iterator[Record]) -> None:
    """Stop reading a response part-way (the generator releases its connection)."""
    close = getattr(records, "close", None)
    if close is not None:
        close()


def _status(exc: CalvenError) -> int | None:
    """The HTTP status behind a failure, when there was one."""
    if isinstance(exc, APIError):
        return exc.status
    if isinstance(exc, AuthError):
        return 401
    if isinstance(exc, GaveUpError):
        match = _HTTP_STATUS.search(str(exc.__cause__ or ""))
        return int(match[1]) if match else None
    return None


def _kind(exc: CalvenError) -> str:
    """A value-free name for a failure, for the JSON report."""
    if isinstance(exc, AuthError):
        return "auth_rejected"
    if isinstance(exc, APIError):
        return "http_error"
    if isinstance(exc, GaveUpError):
        return "timed_out" if exc.timed_out else "retries_exhausted"
    return "unreadable_response" if isinstance(exc, ResponseError) else "connection"


# -- command line -------------------------------------------------------------------------


def is_doctor_command(argv: Sequence[str]) -> bool:
    """Whether the first positional argument is `doctor` (Meltano puts options first)."""
    skip = False
    for token in argv:
        if skip:
            skip = False
        elif token in _VALUE_OPTIONS:
            skip = True
        elif not token.startswith("-"):
            return token == COMMAND
    return False


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ConfigError line, not usage text and exit 2."""

    def error(self, message: str) -> Any:
        raise ConfigError(f"tap-calven doctor: {message}.")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tap-calven doctor",
        description="Sample every stream and report how the tenant differs from the schemas.",
    )
    parser.add_argument("command", choices=[COMMAND])
    parser.add_argument("--config", action="append", required=True, help="config file(s), or ENV")
    parser.add_argument(
        "--json", metavar="PATH", help="also write the report as JSON ('-': stdout)"
    )
    # Meltano's `invoke` passes these to every extractor; the doctor reads all streams.
    parser.add_argument("--catalog", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--properties", help=argparse.SUPPRESS)
    return parser


def build_tap(tap_factory: TapFactory, configs: Sequence[str]) -> DoctorTap:
    """The tap with the user's config, validated exactly as a run validates it."""
    files = [c for c in configs if c != "ENV"]
    for name in files:
        if not Path(name).is_file():
            raise ConfigError(f"Config file '{name}' not found.")
    return tap_factory(config=files or None, parse_env_config="ENV" in configs, setup_mapper=False)


def _setup_logging() -> str:
    """The tap's console log format on stderr, unless a handler is already there."""
    level = os.environ.get("TAP_CALVEN_LOGLEVEL") or os.environ.get("LOGLEVEL") or "INFO"
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(ConsoleFormatter())
        root.addHandler(handler)
        known = isinstance(logging.getLevelName(level.upper()), int)
        root.setLevel(level.upper() if known else "INFO")
    return level.upper()


def main(argv: Sequence[str], tap_factory: TapFactory) -> int:
    """Run the doctor: 0 all readable, 1 a stream unreadable, 2 bad input (one line)."""
    level = _setup_logging()
    try:
        options = _parser().parse_args(list(argv))
        report = diagnose(build_tap(tap_factory, options.config))
        write_report(report, options.json)
    except Exception as exc:
        detail = str(exc) if str(exc) else type(exc).__name__
        logger.error("%s", detail, exc_info=level == "DEBUG")
        return 2
    return report.exit_status
