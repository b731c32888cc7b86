"""The HTTP API: one connection to Calven shared by the whole run, and its retry policy.

`CalvenAPI` owns what a run shares: the authenticator, a small pool of keep-alive sessions,
headers, retries (declared once, with `backoff`) and the mapping of HTTP errors to one-line
messages (docs/contract.md §5). It knows nothing of streams: it takes a path
and parameters and yields records.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
import queue
import random
import time
from collections.abc import Callable, Generator, Hashable, Iterator, Mapping
from logging import Logger
from typing import Any

import backoff
import requests

from tap_calven.auth import CalvenAuth
from tap_calven.errors import APIError, AuthError, CalvenError, GaveUpError, RetryableError
from tap_calven.json_array import PLAIN_RECORDS, RecordDecoder, iter_json_array
from tap_calven.types import Record

CHUNK_BYTES = 1 << 16  # read size of a response body
RETRY_AFTER_CAP = 300.0  # Retry-After is honoured up to 5 minutes
BACKOFF_CAP = 60.0
BACKOFF_BASE = 0.5  # first back-off, doubled per retry, with jitter
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


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
    if not math.isfinite(seconds):  # `nan` or `inf` would crash time.sleep
        return None
    return float(min(max(seconds, 0.0), RETRY_AFTER_CAP))


def retry_waits() -> Generator[float, RetryableError | None, None]:
    """`backoff`'s wait generator: the server's Retry-After if sent, else `backoff_seconds`.

    `backoff` sends each failure in before it takes the wait, so the wait can read it.
    """
    retry = 0
    failure = yield 0.0  # the priming value, discarded by backoff
    while True:
        if failure is not None and failure.retry_after is not None:
            wait = failure.retry_after
        else:
            wait = backoff_seconds(retry)
        retry += 1
        failure = yield wait


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
        self._sessions: queue.SimpleQueue[requests.Session] = queue.SimpleQueue()

    def _session(self) -> requests.Session:
        """Borrow a keep-alive session; each thread uses one at a time."""
        try:
            return self._sessions.get_nowait()
        except queue.Empty:
            return requests.Session()

    def post_json(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a JSON body to a token endpoint, with retries; return the JSON answer."""
        for attempt in self._attempts("POST", path):
            with attempt:
                return self._post_once(path, body)
        raise AssertionError("unreachable")  # pragma: no cover: the last attempt raises

    def _post_once(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        session = self._session()
        try:
            response = session.post(
                self.base_url + path, json=body, headers=self.headers, timeout=self.timeout
            )
            if response.status_code == 401:
                raise AuthError(self._rejected(path))
            self._raise_for_status(response, "POST", path)
            answer = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise _failure(exc, self.base_url) from exc
        finally:
            self._sessions.put(session)
        if not isinstance(answer, dict):
            raise RetryableError("the token response is not a JSON object")
        # Calven does not document whether a failed login is a 401 or a 200 with
        # `authenticated: false`; both mean the credentials were rejected.
        if answer.get("authenticated") is False:
            raise AuthError(self._rejected(path))
        if not answer.get("token") and not answer.get("access_token"):
            raise RetryableError("the token response has no token")
        return answer

    def iter_records(
        self,
        path: str,
        params: Mapping[str, str],
        key_of: Callable[[Record], Hashable],
        decoder: RecordDecoder = PLAIN_RECORDS,
    ) -> Iterator[Record]:
        """GET one array of records, retrying transient failures without repeating records.

        A retry may come after part of the body was already yielded; those records
        (known by `key_of`) are skipped when the body is read again. `decoder` turns the
        body's records into the stream's (json_array.RecordDecoder).
        """
        emitted: set[Hashable] = set()
        for number, attempt in enumerate(self._attempts("GET", path)):
            with attempt:
                session = self._session()
                try:
                    with self._get(session, path, params) as response:
                        chunks = response.iter_content(CHUNK_BYTES)
                        for record in iter_json_array(chunks, decoder):
                            key = key_of(record)
                            if number and key in emitted:
                                continue  # yielded before the failure this retry follows
                            emitted.add(key)
                            yield record
                except requests.RequestException as exc:
                    raise _failure(exc, self.base_url) from exc
                finally:
                    self._sessions.put(session)

    def _attempts(self, method: str, path: str) -> Iterator[backoff.Attempt]:
        """The retry policy, declared once with `backoff`.

        A transient failure is retried `max_retries` times, waiting as `retry_waits` says,
        one WARNING per retry; after the last attempt the run stops with one line.
        """

        def log_retry(details: Any) -> None:
            self.logger.warning(
                "%s %s: %s; retry %d of %d in %.1f s",
                method,
                path,
                details["exception"],
                details["tries"],
                self.max_retries,
                details["wait"],
            )

        def give_up(details: Any) -> None:
            last = details["exception"]
            raise GaveUpError(
                f"{method} {path} failed after {details['tries']} attempts; last error: {last}",
                timed_out=getattr(last, "timed_out", False),
            ) from last

        return backoff.retry_context(
            RetryableError,
            retry_waits,
            max_tries=self.max_retries + 1,
            jitter=None,  # backoff_seconds jitters; a Retry-After is obeyed as given
            on_backoff=log_retry,
            on_giveup=give_up,
            logger=None,  # our own WARNING per retry and one line at the end, nothing more
        )

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
            path=path,
        )


def _failure(exc: Exception, base_url: str) -> CalvenError | RetryableError:
    """Name a connection failure, a timeout or an unreadable body in one line.

    A certificate that does not verify is not transient: retrying cannot fix it, and the
    tap never turns verification off.
    """
    if isinstance(exc, requests.exceptions.SSLError):
        return CalvenError(
            f"The TLS certificate of {base_url} could not be verified, so no credentials "
            "were sent. Behind a proxy with its own certificate authority, set "
            "REQUESTS_CA_BUNDLE to that authority's certificate file."
        )
    if isinstance(exc, requests.Timeout):
        return RetryableError("the request timed out", timed_out=True)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.ConnectionError):
        return RetryableError(f"the connection failed ({type(exc).__name__})")
    return RetryableError(f"the response could not be read ({type(exc).__name__})")
