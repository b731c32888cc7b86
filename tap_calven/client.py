"""The one connection to Calven and the one base stream every endpoint shares.

`CalvenAPI` owns what a run shares: the authenticator, a small pool of HTTP sessions,
headers, retries and the mapping of HTTP errors to one-line messages. `CalvenStream`
turns SPEC §4 into requests: date windows (oldest first, no gap, no overlap), optional
location partitions, up to `max_concurrent_requests` of them in flight, their records
emitted strictly in request order so that the bookmark written after each completed
window is always safe to resume from.
"""

from __future__ import annotations

import codecs
import datetime as dt
import email.utils
import itertools
import json
import logging
import queue
import random
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from importlib import resources
from logging import Logger
from typing import TYPE_CHECKING, Any, ClassVar, cast

import msgspec
import requests
from singer_sdk.contrib import msgspec as sdk_msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers._typing import _is_exclusive_boolean_type
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams import RESTStream

from tap_calven.auth import CalvenAuth
from tap_calven.errors import (
    APIError,
    AuthError,
    CalvenError,
    ConfigError,
    ResponseError,
    RetryableError,
)

if TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.helpers.types import Context

    from tap_calven.tap import TapCalven

Record = dict[str, Any]

CHUNK_BYTES = 1 << 16  # read size of a response body
BATCH_RECORDS = 500  # records handed from a fetching thread to the writer at once
QUEUE_BATCHES = 4  # batches a fetching thread may run ahead before it waits
OUT_BYTES = 1 << 16  # RECORD lines gathered before one write to stdout
RETRY_AFTER_CAP = 300.0  # SPEC §5: Retry-After is honoured up to 5 minutes
BACKOFF_CAP = 60.0
BACKOFF_BASE = 0.5  # first back-off, doubled per retry, with jitter
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_SPACE = " \t\r\n"
_NOT_SPACE = re.compile(r"[^ \t\r\n]")


# --- dates and windows -----------------------------------------------------------------


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


# --- response bodies -------------------------------------------------------------------


def iter_json_array(chunks: Iterable[bytes]) -> Iterator[Record]:
    """Yield the objects of a JSON array as its bytes arrive, holding about one chunk.

    Calven answers with one bare array per request, up to ~100 MB; parsing it whole
    would make memory grow with the window. The records that a chunk completes are
    decoded together by msgspec, in one call: a cut just after a `}` that decodes as
    `[...]` is a real boundary between records, since a cut inside a string or a nested
    value cannot decode. Whatever msgspec refuses (NaN, lone surrogates, a body that is
    not an array of objects, a `}` inside a string at every cut tried) is read by
    `_iter_json_array_slowly`, which yields exactly what `json` would and names the
    fault. A body that ends early raises RetryableError, as a dropped connection does.
    """
    source = iter(chunks)
    pending = bytearray()
    state = _BEGIN
    for chunk in source:
        pending += chunk
        if state == _BEGIN:
            body = pending.lstrip(_SPACE_BYTES)
            if not body:
                pending.clear()
                continue
            if body[0] != _OPEN_BRACKET:
                break
            del pending[: len(pending) - len(body) + 1]
            state = _FIRST
        cut = pending.rfind(b"}")
        for _ in range(_CUTS_TRIED):
            if cut < 0:
                break
            head = b"[" if state == _FIRST else b"[{}"  # after a record: `,{...}` follows
            try:
                batch = _decode_records(head + pending[: cut + 1] + b"]")
            except (msgspec.DecodeError, ValueError):
                cut = pending.rfind(b"}", 0, cut)
                continue
            del pending[: cut + 1]
            yield from batch if state == _FIRST else batch[1:]
            state = _NEXT
            break
        else:
            break  # no cut decoded: read the rest the careful way
    else:
        if state != _BEGIN and pending.strip(_SPACE_BYTES) == b"]":
            return
    yield from _iter_json_array_slowly(itertools.chain((bytes(pending),), source), state)


_BEGIN, _FIRST, _NEXT = "begin", "first", "next"  # before `[`; after it; after a record
_CUTS_TRIED = 4  # cuts tried per chunk before falling back to the careful reader
_SPACE_BYTES = _SPACE.encode()
_OPEN_BRACKET = ord("[")
_decode_records = msgspec.json.Decoder(list[dict[str, Any]]).decode


def _iter_json_array_slowly(source: Iterator[bytes], state: str) -> Iterator[Record]:
    """Read a JSON array one object at a time with `json`, from `state` on.

    The careful reader behind `iter_json_array`: it accepts exactly what `json` accepts
    and says what is wrong with a body that is not a whole array of objects.
    """
    decode = json.JSONDecoder().raw_decode
    to_text = codecs.getincrementaldecoder("utf-8")().decode
    buf, pos, ended = "", 0, False

    def refill() -> bool:
        nonlocal buf, pos, ended
        if ended:
            return False
        chunk = next(source, None)
        ended = chunk is None
        try:
            text = to_text(b"", final=True) if chunk is None else to_text(chunk)
        except UnicodeDecodeError:
            raise RetryableError("the response body is not UTF-8 text") from None
        buf, pos = buf[pos:] + text, 0
        return bool(text) or not ended

    def peek() -> str | None:
        """The next character that is not white space, or None at the end of the body."""
        nonlocal pos
        while True:
            if pos < len(buf) and buf[pos] not in _SPACE:
                return buf[pos]
            found = _NOT_SPACE.search(buf, pos)
            if found:
                pos = found.start()
                return buf[pos]
            pos = len(buf)
            if not refill():
                return None

    if state == _BEGIN:
        first = peek()
        if first != "[":
            raise RetryableError(_not_an_array(first, buf[pos : pos + 80]))
        pos += 1
        state = _FIRST
    while True:
        char = peek()
        if state == _NEXT:
            if char == "]":
                pos += 1
                break
            if char != ",":
                raise RetryableError(_broken_body(char, "',' or ']'"))
            pos += 1
            char = peek()
        elif char == "]":
            pos += 1
            break
        if char != "{":
            raise RetryableError(_broken_body(char, "an object"))
        while True:
            try:
                record, pos = decode(buf, pos)
                break
            except json.JSONDecodeError:
                if not refill():
                    raise RetryableError(_broken_body(None, "the rest of an object")) from None
        yield record
        state = _NEXT
    if peek() is not None:
        raise RetryableError("the response body has data after its JSON array")


def _not_an_array(first: str | None, start: str) -> str:
    if first is None:
        return "the response body is empty, not a JSON array"
    return f"the response body is not a JSON array (it starts {start!r})"


def _broken_body(found: str | None, expected: str) -> str:
    if found is None:
        return f"the response body ended early (truncated JSON: expected {expected})"
    return f"the response body is not a valid JSON array (expected {expected}, found {found!r})"


# --- HTTP ------------------------------------------------------------------------------


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Read a Retry-After header: delta seconds or an HTTP date; capped at 300 s."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.timezone.utc)
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return float(min(max(seconds, 0.0), RETRY_AFTER_CAP))


def backoff_seconds(retry: int) -> float:
    """Exponential back-off with jitter: half fixed, half random, capped at 60 s."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**retry)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _api_message(response: requests.Response) -> str:
    """Calven's own words from an error body (`message` when JSON), kept to one short line."""
    try:
        body = response.json()
        text = body.get("message") if isinstance(body, dict) else None
        text = str(text) if text else response.text
    except ValueError:
        text = response.text
    text = " ".join(text.split())
    return (text[:300] + "...") if len(text) > 300 else text


class CalvenAPI:
    """The run's connection to Calven: shared by every stream and every fetching thread."""

    def __init__(self, config: Mapping[str, Any], *, logger: Logger) -> None:
        self.base_url = str(config["api_url"]).rstrip("/")
        self.max_retries = int(config["max_retries"])
        self.timeout = float(config["request_timeout"])
        self.logger = logger
        self.headers = {"User-Agent": str(config["user_agent"]), "Accept": "application/json"}
        if config.get("region"):
            self.headers["x-calven-region"] = str(config["region"])
        self.auth = CalvenAuth(
            method=str(config["auth_method"]),
            api_key=str(config["api_key"]),
            api_secret=str(config["api_secret"]),
            post_json=self.post_json,
        )
        self.today = dt.datetime.now(dt.timezone.utc).date()  # one "today" for the whole run
        self._sessions: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()

    def _session(self) -> requests.Session:
        """Borrow a keep-alive session; each thread uses one at a time."""
        try:
            return self._sessions.get_nowait()
        except queue.Empty:
            return requests.Session()

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body to a token endpoint, with retries; return the JSON answer."""
        for retry in range(self.max_retries + 1):
            session = self._session()
            try:
                response = session.post(
                    self.base_url + path, json=body, headers=self.headers, timeout=self.timeout
                )
                if response.status_code == 401:
                    raise AuthError(self._rejected(path))
                self._raise_for_status(response, "POST", path)
                answer = response.json()
                if not isinstance(answer, dict):
                    raise RetryableError("the token response is not a JSON object")
                # Calven does not document whether a failed login is a 401 or a 200 with
                # `authenticated: false`; both mean the credentials were rejected.
                if answer.get("authenticated") is False:
                    raise AuthError(self._rejected(path))
                if not answer.get("token") and not answer.get("access_token"):
                    raise RetryableError("the token response has no token")
                return answer
            except RetryableError as exc:
                self._wait_before_retry(exc, retry, "POST", path)
            except (requests.RequestException, ValueError) as exc:
                self._wait_before_retry(_transient(exc), retry, "POST", path)
            finally:
                self._sessions.put(session)
        raise AssertionError("unreachable")  # pragma: no cover

    def iter_records(
        self, path: str, params: Mapping[str, str], key_of: Callable[[Record], Hashable]
    ) -> Iterator[Record]:
        """GET one array of records, retrying transient failures without repeating records.

        A retry may come after part of the body was already yielded; those records
        (known by `key_of`) are skipped when the body is read again.
        """
        emitted: set[Hashable] = set()
        for retry in range(self.max_retries + 1):
            session = self._session()
            try:
                with self._get(session, path, params) as response:
                    for record in iter_json_array(response.iter_content(CHUNK_BYTES)):
                        key = key_of(record)
                        if retry and key in emitted:
                            continue
                        emitted.add(key)
                        yield record
                return
            except RetryableError as exc:
                self._wait_before_retry(exc, retry, "GET", path)
            except requests.RequestException as exc:
                self._wait_before_retry(_transient(exc), retry, "GET", path)
            finally:
                self._sessions.put(session)

    def _get(
        self, session: requests.Session, path: str, params: Mapping[str, str]
    ) -> requests.Response:
        """Send one authenticated GET; on a 401 fetch one new token and send it once more."""
        for second_try in (False, True):
            authorization = self.auth.authorization()
            response = session.get(
                self.base_url + path,
                params=params,
                headers={**self.headers, "Authorization": authorization},
                timeout=self.timeout,
                stream=True,
            )
            if response.status_code != 401:
                self._raise_for_status(response, "GET", path)
                return response
            response.close()
            if not self.auth.uses_tokens or second_try:
                raise AuthError(self._rejected(path))
            self.logger.warning("GET %s: HTTP 401, fetching a new token and retrying once", path)
            self.auth.invalidate(authorization)
        raise AssertionError("unreachable")  # pragma: no cover

    def _rejected(self, path: str) -> str:
        """The one line for a 401: name the credentials, and the clock for signed requests."""
        message = f"Calven rejected the API key or secret (HTTP 401 on {path})"
        if self.auth.method == "hmac":
            message += ", or this machine's clock is more than 5 minutes off"
        return message + "."

    def _raise_for_status(self, response: requests.Response, method: str, path: str) -> None:
        """Pass a 200; raise RetryableError for 429/5xx; APIError for any other status."""
        status = response.status_code
        if 200 <= status < 300:
            return
        message = _api_message(response)
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        response.close()
        if status in RETRY_STATUSES or status >= 500:
            raise RetryableError(f"HTTP {status}", retry_after=retry_after)
        hint = " The API key needs the Data Warehouse role." if status == 403 else ""
        raise APIError(
            f"Calven answered HTTP {status} to {method} {path}: {message or 'no message'}.{hint}",
            status=status,
        )

    def _wait_before_retry(self, exc: RetryableError, retry: int, method: str, path: str) -> None:
        """Sleep before the next attempt, or raise when the retries are used up."""
        if retry >= self.max_retries:
            raise ResponseError(
                f"{method} {path} failed after {retry + 1} attempts; last error: {exc}"
            ) from exc
        wait = exc.retry_after if exc.retry_after is not None else backoff_seconds(retry)
        self.logger.warning(
            "%s %s: %s; retry %d of %d in %.1f s",
            method,
            path,
            exc,
            retry + 1,
            self.max_retries,
            wait,
        )
        time.sleep(wait)


def _transient(exc: Exception) -> RetryableError:
    """Name a connection failure, a timeout or an unreadable body in one line."""
    if isinstance(exc, requests.Timeout):
        return RetryableError("the request timed out")
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.ConnectionError):
        return RetryableError(f"the connection failed ({type(exc).__name__})")
    return RetryableError(f"the response could not be read ({type(exc).__name__})")


# --- concurrency with in-order output --------------------------------------------------


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

    def fetches(self, lane: Lane) -> Iterator[_Fetch]:
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


def fetch_in_order(
    requests_: Iterable[Request],
    produce: Callable[[Request], Iterator[Record]],
    concurrency: int,
) -> Iterator[_Fetch]:
    """Run `produce` for up to `concurrency` requests at once; hand them back in order.

    A request's thread may run ahead by QUEUE_BATCHES batches and then waits, so memory
    is bounded by the records in flight, never by the size of a response.
    """
    return FetchScheduler(concurrency).fetches(Lane("", list(requests_), produce))


def lane_after(tap: Tap, name: str) -> Lane | None:
    """The lane of the stream that syncs after `name`, in the order of `Tap.sync_all`."""
    order = [
        stream
        for stream in tap.streams.values()
        if (stream.selected or stream.has_selected_descendents) and not stream.parent_stream_type
    ]
    names = [stream.name for stream in order]
    if name not in names or names.index(name) + 1 == len(order):
        return None
    following = order[names.index(name) + 1]
    return following.lane() if isinstance(following, CalvenStream) else None


# --- the base stream -------------------------------------------------------------------


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


# --- the record path ------------------------------------------------------------------

# Keys of a property schema that make the SDK's conformance look inside a value.
_NESTING_KEYS = frozenset({"properties", "items", "anyOf", "allOf", "oneOf", "patternProperties"})


def _is_flat(property_schema: Mapping[str, Any]) -> bool:
    """True when the SDK conforms this property as one primitive value, never recursing."""
    types = property_schema.get("type", ())
    types = (types,) if isinstance(types, str) else types
    return not _NESTING_KEYS & property_schema.keys() and not {"object", "array"} & set(types)


@dataclass(frozen=True)
class _FastRecordPath:
    """The SDK's record path for one sync, reduced to what it does to Calven's records.

    Decided once per sync: it exists only when that path is the identity on a record
    whose keys are all known (or extra keys are kept) and whose boolean fields hold
    booleans; `accepts` checks those two per record. A record it refuses, and every
    record of a stream it does not exist for, takes the SDK's own path.
    """

    stream: str
    version: int | None
    known: frozenset[str] | None  # None: any key passes through unchanged
    booleans: tuple[str, ...]  # the SDK turns a non-boolean value here into `value != 0`

    def accepts(self, record: Record) -> bool:
        """True when the SDK's path would leave this record exactly as it is."""
        if self.known is not None and not record.keys() <= self.known:
            return False
        for name in self.booleans:
            value = record.get(name)
            if value is not None and value.__class__ is not bool:
                return False
        return True

    def write(self, record: Record, out: bytearray) -> None:
        """Append the RECORD line the msgspec writer would write, byte for byte.

        The message is what `RecordMessage.to_dict` builds, key for key, encoded by the
        SDK's own msgspec encoder.
        """
        message: dict[str, Any] = {"type": "RECORD", "stream": self.stream, "record": record}
        if self.version is not None:
            message["version"] = self.version
        message["time_extracted"] = dt.datetime.now(dt.timezone.utc)
        _encode_into(message, out, -1)
        out += b"\n"


_encode_into = sdk_msgspec.encoder.encode_into


def _load_schema(stream_name: str) -> dict[str, Any]:
    text = resources.files("tap_calven").joinpath("schemas", f"{stream_name}.json").read_text()
    return cast("dict[str, Any]", json.loads(text))


class CalvenStream(RESTStream[Any]):
    """The one base stream: paths, windows, state, concurrency and progress logging.

    Streams with a `replication_key` are windowed: their bookmark is the last day of the
    last window whose records were all emitted, never later than today (UTC), and never
    taken from record values (SPEC §4). Streams without one are read whole every run.
    """

    path: str
    # SPEC §5: a 404 on a path the spec marks assumed skips the stream with a warning.
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

    def __init__(self, tap: TapCalven) -> None:
        super().__init__(tap=tap, schema=_load_schema(self.name))
        self._tap_calven = tap
        self._fast: _FastRecordPath | None = None
        self._out = bytearray()  # RECORD lines not yet written to stdout

    @property
    def url_base(self) -> str:
        """Calven's base URL (or the sandbox's)."""
        return self._tap_calven.api.base_url

    @property
    def api(self) -> CalvenAPI:
        """The run's shared connection."""
        return self._tap_calven.api

    @property
    def settings(self) -> dict[str, Any]:
        """The config with defaults applied (the SDK's `config` leaves them out)."""
        return self._tap_calven.settings

    @property
    def request_path(self) -> str:
        """The token-family path, or the Basic family's: the only place the two differ."""
        return self.path + "/basic" if self.api.auth.method == "basic" else self.path

    @property
    def is_windowed(self) -> bool:
        """Incremental streams are read in date windows."""
        return self.replication_key is not None

    # -- planning -----------------------------------------------------------------------

    def window_range(self) -> tuple[dt.date, dt.date]:
        """The days to read this run: from the bookmark minus the lookback, or start_date."""
        config = self.settings
        start = parse_day("Setting 'start_date'", config["start_date"])
        # Read, not `stream_state`: that creates an entry, and a stream may be planned
        # (its first requests started) while the one before it is still syncing.
        bookmarks = self.tap_state.get("bookmarks") or {}
        bookmark = (bookmarks.get(self.name) or {}).get("replication_key_value")
        if bookmark:
            resume = parse_day(f"The state bookmark of stream '{self.name}'", bookmark)
            start = max(start, resume - dt.timedelta(days=int(config["lookback_days"])))
        if config.get("end_date"):
            end = parse_day("Setting 'end_date'", config["end_date"])
        else:
            horizon = int(config["horizon_days"]) if self.reads_horizon else 0
            end = self.api.today + dt.timedelta(days=horizon)
        return start, end

    def plan_requests(self) -> list[Request]:
        """Every request of this run, in the order their records will be emitted."""
        if not self.is_windowed:
            return [Request(params={})]
        filters = {
            param: ",".join(self.settings[setting])
            for param, setting in self.list_params.items()
            if self.settings.get(setting)
        }
        locations = list(self.settings.get("location_ids") or []) if self.per_location_param else []
        start, end = self.window_range()
        plan = []
        for first, last in date_windows(start, end, int(self.settings["window_days"])):
            params = {"startDate": first.isoformat(), "endDate": last.isoformat(), **filters}
            window = (first, last)
            if not locations or self.per_location_param is None:
                plan.append(Request(params, window))
                continue
            for index, location in enumerate(locations):
                located = {**params, self.per_location_param: location}
                plan.append(Request(located, window, location, index == len(locations) - 1))
        return plan

    # -- reading --------------------------------------------------------------------------

    def get_records(self, context: Context | None) -> Iterator[Record]:
        """Emit every planned request's records in order; bookmark after each window."""
        self._fast = self._fast_record_path()
        try:
            yield from self._get_records()
        except Exception:
            # The run is failing: the requests started early for later streams are moot.
            self._tap_calven.fetch_scheduler.close()
            raise
        finally:
            self._write_pending_records()  # also when the run fails part-way

    def _get_records(self) -> Iterator[Record]:
        plan = self.plan_requests()
        if self.is_windowed and plan:
            first, last = plan[0].window or (None, None), plan[-1].window or (None, None)
            self.logger.info(
                "%s: %d request(s) for %s..%s", self.name, len(plan), first[0], last[1]
            )
        for fetch in self._tap_calven.fetch_scheduler.fetches(self.lane(plan)):
            count = 0
            try:
                for record in fetch.records():
                    count += 1
                    yield record
            except APIError as exc:
                if exc.status == 404 and self.path_is_assumed:
                    self.logger.warning(
                        "Stream '%s' skipped: Calven has no %s (HTTP 404); this path is "
                        "assumed, not documented.",
                        self.name,
                        self.request_path,
                    )
                    return
                raise
            self._complete(fetch.request, count, time.monotonic() - fetch.started)

    def lane(self, plan: list[Request] | None = None) -> Lane:
        """The requests of this stream, as a lane of the run's FetchScheduler."""
        return Lane(self.name, self.plan_requests() if plan is None else plan, self._fetch)

    def _fetch(self, request: Request) -> Iterator[Record]:
        return self.api.iter_records(self.request_path, request.params, self._key_of)

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
        bookmark = min(request.window[1], self.api.today)
        state = self.stream_state
        state["replication_key"] = self.replication_key
        state["replication_key_value"] = bookmark.isoformat()
        self.state_manager.is_flushed = False
        # In BATCH mode the SDK writes STATE after each BATCH message; a STATE written here
        # could reach the target before the batch file holding this window's records.
        if not self.get_batch_config(self.config):
            self._write_state_message()

    # -- the record path ----------------------------------------------------------------

    def _fast_record_path(self) -> _FastRecordPath | None:
        """The lean record path for this sync, or None when the SDK's path must run.

        The SDK's path (drop deselected properties, conform types, apply stream maps,
        build a RecordMessage, write and flush it) costs more than fetching and parsing
        the record. It is provably the identity when the msgspec writer is in use, the
        only stream map is the identity (no alias, filter, expression or flattening),
        every property is selected and the schema is flat.
        """
        if type(self._tap.message_writer) is not MsgSpecWriter:
            return None
        maps = self.stream_maps
        if len(maps) != 1 or type(maps[0]) is not SameRecordTransform:
            return None
        if maps[0].stream_alias != self.name or maps[0].flattening_enabled:
            return None
        if not all(self.mask.values()):
            return None
        version = self._stream_version
        if self.TYPE_CONFORMANCE_LEVEL == TypeConformanceLevel.NONE:
            return _FastRecordPath(self.name, version, None, ())
        schema = self.effective_schema
        properties: dict[str, dict[str, Any]] = schema.get("properties") or {}
        if not all(_is_flat(prop) for prop in properties.values()):
            return None
        known = None if schema.get("additionalProperties") else frozenset(properties)
        booleans = tuple(n for n, prop in properties.items() if _is_exclusive_boolean_type(prop))
        return _FastRecordPath(self.name, version, known, booleans)

    def _write_record_message(self, record: Record) -> None:
        """Write the RECORD message the SDK would write, without its per-record work.

        The bytes are the msgspec writer's own, gathered into writes of OUT_BYTES rather
        than written and flushed one line at a time. Every other message goes out
        through `_write_pending_records` first, so a STATE never reaches the target
        before the records it covers.
        """
        fast = self._fast
        if fast is not None and fast.accepts(record):
            fast.write(record, self._out)
            if len(self._out) >= OUT_BYTES:
                self._write_pending_records()
            self.state_manager.is_flushed = False
            return
        self._write_pending_records()
        super()._write_record_message(record)

    def _write_pending_records(self) -> None:
        """Write the gathered RECORD lines to stdout, ahead of any other message."""
        if self._out:
            sys.stdout.buffer.write(self._out)
            self._out.clear()

    def _write_state_message(self) -> None:
        """Write the records gathered so far, then the STATE that covers them."""
        self._write_pending_records()
        super()._write_state_message()

    def _process_record(
        self,
        record: Record,
        child_context: Context | None = None,
        partition_context: Context | None = None,
    ) -> None:
        """Skip the SDK's per-record child-context work: Calven's streams have no children."""
        if self.child_streams or partition_context:
            super()._process_record(record, child_context, partition_context)

    def log(self, message: str, *args: Any, level: int = logging.INFO, **kwargs: Any) -> None:
        """Demote the SDK's generic 'unhandled error' line to DEBUG.

        A failed run prints one ERROR line (SPEC §5): the cause, from `main`.
        """
        if level >= logging.ERROR and message.startswith("An unhandled error occurred"):
            level = logging.DEBUG
        super().log(message, *args, level=level, **kwargs)

    def _increment_stream_state(
        self, latest_record: Record, *, context: Context | None = None
    ) -> None:
        """Do nothing per record: the bookmark moves per completed window, in _complete."""

    def get_replication_key_signpost(self, context: Context | None = None) -> None:
        """No signpost: the bookmark is capped at today by _complete, not by the SDK."""
        return


__all__ = [
    "APIError",
    "AuthError",
    "CalvenAPI",
    "CalvenError",
    "CalvenStream",
    "FetchScheduler",
    "Lane",
    "Request",
    "date_windows",
    "fetch_in_order",
    "iter_json_array",
    "lane_after",
    "parse_day",
]
