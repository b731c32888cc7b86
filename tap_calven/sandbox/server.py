"""The sandbox's HTTP server: Calven's auth and Warehouse endpoints, faults and a request log.

Behaviour follows Calven's API documentation and docs/contract.md §2, §5 and §6. Where
Calven documents nothing the sandbox makes an assumption, marked here:

- Error bodies are JSON ``{"statusCode": N, "message": "..."}`` (Calven's shape is undocumented).
- ``endDate`` is inclusive; a request may span at most 30 days inclusive (Calven documents
  30 days as "generally the longest range"; its real limit and its answer to a longer range
  are unknown); longer spans, reversed, missing or malformed dates get 400 naming the
  parameter. ``max_window_days`` sets another limit, to emulate a tenant that serves less.
- ``/v1/analytics/groups`` exists; ``change-log/user`` requires ``startDate`` and ``endDate``.
- ``locationId`` (bookings) matches the primary or the booked location; ``locationIds``
  (presence) matches an event's office whatever level, zone or place it happened at.
- The clock-skew tolerance of ``POST /v1/auth`` is 5 minutes either way.
- Tokens from ``/v1/auth`` and ``/v1/auth/token`` are interchangeable opaque strings.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tap_calven.sandbox.faults import Fault, FaultQueue
from tap_calven.sandbox.tenant import (
    FULL_TABLE_STREAMS,
    PRIMARY_KEYS,
    STREAMS,
    Tenant,
    decode_array,
    join_array,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "RequestRecord",
    "Sandbox",
    "hmac_signature",
]

DEFAULT_API_KEY = "sandbox-key"
DEFAULT_API_SECRET = "sandbox-secret"  # noqa: S105 - a documented, public sandbox credential
MAX_SKEW_SECONDS = 300
MAX_SPAN_DAYS = 30
SEND_CHUNK = 1 << 20

logger = logging.getLogger("tap_calven.sandbox")

#: Warehouse path (token family, no trailing slash) -> stream.
ROUTES = {
    "/v1/analytics/users": "users",
    "/v1/analytics/groups": "groups",
    "/v1/analytics/locations": "locations",
    "/v1/analytics/desks": "desks",
    "/v1/analytics/user-booking-attendance": "bookings_attendance",
    "/v1/analytics/presence": "presence",
    "/v1/analytics/change-log/user": "user_actions_log",
}
AUTH_PATH = "/v1/auth"
TOKEN_PATH = "/v1/auth/token"  # noqa: S105 - a path, not a password
_DATE_DASHED = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_DATE_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")


def hmac_signature(api_key: str, api_secret: str, timestamp: int) -> str:
    """Calven's ``/v1/auth`` hash: lowercase hex HMAC-SHA256(secret, apiKey + str(timestamp))."""
    msg = f"{api_key}{timestamp}".encode()
    return hmac.new(api_secret.encode(), msg, hashlib.sha256).hexdigest()


@dataclass
class RequestRecord:
    """One request as the sandbox saw it (headers as received, Authorization included)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    started: float
    seconds: float
    bytes_sent: int


class _HTTPError(Exception):
    """An error response: status and message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass
class _Response:
    status: int
    parts: Sequence[bytes]
    headers: dict[str, str]

    @property
    def length(self) -> int:
        return sum(len(p) for p in self.parts)


def _json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Response:
    return _Response(status, [json.dumps(payload).encode()], headers or {})


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> _Response:
    return _json_response(status, {"statusCode": status, "message": message}, headers)


def _without_key(resp: _Response, stream: str | None) -> _Response:
    """The ``missing_key`` fault: the last record loses its first primary-key field."""
    records = decode_array(resp.parts)
    if stream is None or not records:
        return resp
    records[-1].pop(PRIMARY_KEYS[stream][0], None)
    return _json_response(resp.status, records, resp.headers)


def _routes(moved: Mapping[str, str]) -> dict[str, str]:
    """The path -> stream table, with moved streams at their new paths only."""
    unknown = set(moved) - set(ROUTES.values())
    if unknown:
        raise ValueError(f"moved_paths names unknown streams: {', '.join(sorted(unknown))}")
    routes = {path: stream for path, stream in ROUTES.items() if stream not in moved}
    routes.update({"/" + path.strip("/"): stream for stream, path in moved.items()})
    return routes


def _parse_date(query: dict[str, str], name: str) -> dt.date:
    raw = query.get(name, "").strip()
    if not raw:
        raise _HTTPError(400, f"{name} is required (YYYY-MM-DD or YYYYMMDD)")
    m = _DATE_DASHED.fullmatch(raw) or _DATE_COMPACT.fullmatch(raw)
    if m is None:
        raise _HTTPError(400, f"{name} must be a date in YYYY-MM-DD or YYYYMMDD form, got {raw!r}")
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise _HTTPError(400, f"{name} is not a valid date: {raw!r}") from None


def _id_list(raw: str | None) -> set[str] | None:
    if raw is None:
        return None
    ids = {i.strip().lower() for i in raw.split(",") if i.strip()}
    return ids or None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "calven-sandbox"
    sys_version = ""
    server: _Server

    def version_string(self) -> str:
        """``Server`` header value."""
        return self.server_version

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
        # and the client's delayed ACK stall every keep-alive response by ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silence the default access log; requests are logged in ``_serve``."""

    def log_message(self, format: str, *args: Any) -> None:
        """Route http.server's own messages (malformed requests) to logging."""
        logger.warning("%s - %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        """Serve a GET."""
        self._serve()

    def do_POST(self) -> None:
        """Serve a POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Serve a PUT (always refused)."""
        self._serve()

    def do_DELETE(self) -> None:
        """Serve a DELETE (always refused)."""
        self._serve()

    def do_PATCH(self) -> None:
        """Serve a PATCH (always refused)."""
        self._serve()

    def _serve(self) -> None:
        sb = self.server.sandbox
        started = time.time()
        split = urlsplit(self.path)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        headers = dict(self.headers.items())
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        fault = sb._faults.take(path)
        latency = sb.latency_ms
        if latency > 0:
            time.sleep(latency / 1000)
        if fault is not None and fault.kind == "slow":
            time.sleep(float(fault.params.get("seconds", 5.0)))
        resp = self._apply(fault, path, query, body)
        sent = 0
        status = resp.status
        sb._will_log()
        try:
            sent = self._send(resp, drop=fault is not None and fault.kind == "drop")
        except OSError:
            self.close_connection = True
        seconds = time.time() - started
        logger.info("%s %s %d %d bytes %.3fs", self.command, path, status, sent, seconds)
        sb._log(RequestRecord(self.command, path, query, status, headers, started, seconds, sent))

    def _apply(
        self, fault: Fault | None, path: str, query: dict[str, str], body: bytes
    ) -> _Response:
        kind = fault.kind if fault is not None else None
        params = fault.params if fault is not None else {}
        if kind == "429":
            retry = params.get("retry_after", 1)
            return _error(429, "Too many requests (sandbox fault)", {"Retry-After": str(retry)})
        if kind == "5xx":
            status = int(params.get("status", 503))
            return _error(status, "Service unavailable (sandbox fault)")
        if kind in ("400", "401", "403", "404"):
            assert kind is not None
            msgs = {
                "400": "Bad request",
                "401": "Unauthorized",
                "403": "Forbidden",
                "404": "Not found",
            }
            return _error(int(kind), f"{msgs[kind]} (sandbox fault)")
        if kind == "not_array":
            return _json_response(200, {"message": "Unexpected response shape (sandbox fault)"})
        try:
            resp = self._route(path, query, body)
        except _HTTPError as exc:
            resp = _error(exc.status, exc.message, exc.headers)
        if kind == "truncate":
            whole = b"".join(resp.parts)
            cut = max(1, len(whole) // 2) if len(whole) > 1 else 0
            resp = _Response(resp.status, [whole[:cut]], resp.headers)
        if kind == "missing_key" and resp.status == 200:
            stream = self.server.sandbox.routes.get(path.rstrip("/").removesuffix("/basic"))
            resp = _without_key(resp, stream)
        return resp

    def _send(self, resp: _Response, *, drop: bool) -> int:
        total = resp.length
        self.send_response(resp.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(total))
        for k, v in resp.headers.items():
            self.send_header(k, v)
        self.end_headers()
        limit = total // 2 if drop else total
        sent = 0
        for part in resp.parts:
            view = memoryview(part)
            for i in range(0, len(view), SEND_CHUNK):
                piece = view[i : i + SEND_CHUNK]
                if sent + len(piece) > limit:
                    piece = piece[: limit - sent]
                if piece:
                    self.wfile.write(piece)
                    sent += len(piece)
                if sent >= limit:
                    break
            if sent >= limit:
                break
        if drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
        return sent

    # ------------------------------------------------------------------ routing

    def _route(self, path: str, query: dict[str, str], body: bytes) -> _Response:
        sb = self.server.sandbox
        norm = path.rstrip("/") or "/"
        method = self.command
        if norm in (AUTH_PATH, TOKEN_PATH):
            if method != "POST":
                raise _HTTPError(405, f"Cannot {method} {path}")
            data = self._json_body(body)
            if norm == AUTH_PATH:
                return sb._hmac_login(data)
            return sb._secret_login(data)
        basic = norm.endswith("/basic")
        base = norm[: -len("/basic")] if basic else norm
        stream = sb.routes.get(base)
        if stream is None:
            raise _HTTPError(404, f"Cannot {method} {path}")
        if method != "GET":
            raise _HTTPError(405, f"Cannot {method} {path}")
        sb._check_auth(self.headers.get("Authorization"), basic=basic)
        return _Response(200, sb._serve_stream(stream, query), {})

    def _json_body(self, body: bytes) -> dict[str, Any]:
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _HTTPError(400, "Content-Type must be application/json")
        try:
            data = json.loads(body or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _HTTPError(400, "Request body is not valid JSON") from None
        if not isinstance(data, dict):
            raise _HTTPError(400, "Request body must be a JSON object")
        return data


class Sandbox:
    """A local Calven emulator: start it, point the tap at ``url``, read the ground truth."""

    def __init__(
        self,
        seed: int = 1,
        users: int = 40,
        locations: int = 3,
        past_days: int = 60,
        future_days: int = 21,
        api_key: str = DEFAULT_API_KEY,
        api_secret: str = DEFAULT_API_SECRET,
        latency_ms: float = 0,
        drift: bool = False,
        today: dt.date | None = None,
        token_lifetime: float = 600,
        host: str = "127.0.0.1",
        port: int = 0,
        moved_paths: Mapping[str, str] | None = None,
        max_window_days: int = MAX_SPAN_DAYS,
    ) -> None:
        """Build the tenant; serve nothing until `start`.

        `moved_paths` ({stream: path}) serves a stream at another path and makes its
        documented path answer 404: a tenant whose API differs from the docs.
        `max_window_days` emulates a tenant that serves shorter windows than documented.
        """
        if max_window_days < 1:
            raise ValueError("max_window_days must be at least 1")
        self.routes = _routes(moved_paths or {})
        self.tenant = Tenant(
            seed=seed,
            users=users,
            locations=locations,
            past_days=past_days,
            future_days=future_days,
            today=today,
            drift=drift,
        )
        self.api_key = api_key
        self.api_secret = api_secret
        self.latency_ms = latency_ms
        self.token_lifetime = token_lifetime
        #: Longest startDate..endDate span served, inclusive; longer windows get 400.
        self.max_window_days = max_window_days
        self.host = host
        self.port = port
        self._faults = FaultQueue()
        self._tokens: dict[str, float] = {}
        self._issued: list[str] = []  # every token ever issued, revoked ones included
        self._tokens_lock = threading.Lock()
        self._requests: list[RequestRecord] = []
        self._requests_lock = threading.Lock()
        # Responses on the wire whose requests are not logged yet: `requests` waits for them.
        self._unlogged = 0
        self._logged = threading.Condition(self._requests_lock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def today(self) -> dt.date:
        """The UTC day the tenant is anchored on."""
        return self.tenant.today

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Sandbox:
        """Bind and serve in a background thread; returns self."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="calven-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        with server.conn_lock:
            conns = list(server.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ test controls

    def add_fault(
        self, kind: str, *, path: str | None = None, count: int | None = 1, **params: Any
    ) -> None:
        """Arm a fault for the next ``count`` matching requests (None: until cleared)."""
        self._faults.add(Fault(kind, path=path, count=count, params=params))

    def clear_faults(self) -> None:
        """Disarm every fault."""
        self._faults.clear()

    @property
    def faults_armed(self) -> int:
        """Faults not yet fired their full count, so a test can check that all of them did."""
        return len(self._faults)

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far."""
        with self._tokens_lock:
            self._tokens.clear()

    @property
    def issued_tokens(self) -> list[str]:
        """Every token issued so far, revoked and expired ones included (for leak scans)."""
        with self._tokens_lock:
            return list(self._issued)

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, oldest first (by completion).

        It holds every request whose response was sent: a client that has just read a
        response may ask before the server thread logged it, so this waits (up to 1 s).
        """
        with self._logged:
            self._logged.wait_for(lambda: self._unlogged <= 0, timeout=1.0)
            return list(self._requests)

    def clear_requests(self) -> None:
        """Empty the request log, after the answers still being sent have been logged."""
        with self._logged:
            self._logged.wait_for(lambda: self._unlogged <= 0, timeout=1.0)
            self._requests.clear()

    def _will_log(self) -> None:
        with self._logged:
            self._unlogged += 1

    def _log(self, rec: RequestRecord) -> None:
        with self._logged:
            self._requests.append(rec)
            self._unlogged -= 1
            self._logged.notify_all()

    def revise(self, days: Iterable[dt.date]) -> None:
        """Change the tenant on ``days``: some users' rows there get new values (same keys)."""
        self.tenant.revise(list(days))

    def warm(self) -> None:
        """Generate every day now rather than on first request (for benchmarks)."""
        for day in self.tenant.booking_days():
            self.tenant.day(day)

    # ------------------------------------------------------------------ ground truth

    def date_range(self, stream: str) -> tuple[dt.date, dt.date]:
        """First and last day that hold data for a windowed stream."""
        return self.tenant.date_range(stream)

    def records(
        self,
        stream: str,
        start: dt.date | None = None,
        end: dt.date | None = None,
        *,
        location_ids: Sequence[str] | None = None,
        user_ids: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Exactly the records the endpoint serves for ``stream`` over inclusive [start, end].

        As the tap asks: bookings_attendance returns the union (duplicates kept) of one request
        per location in ``location_ids`` and ignores ``user_ids``; presence filters by both;
        user_actions_log ignores ``location_ids``; full-table streams ignore every argument.
        No 30-day limit applies here. Missing dates default to the stream's date range.
        """
        if stream not in STREAMS:
            raise ValueError(f"unknown stream {stream!r}")
        if stream in FULL_TABLE_STREAMS:
            return decode_array([self.tenant.full_table(stream)])
        if start is None or end is None:
            try:
                lo, hi = self.date_range(stream)
            except ValueError:
                return []
            start, end = start or lo, end or hi
        t = self.tenant
        users = self._user_set(",".join(user_ids)) if user_ids is not None else None
        if stream == "bookings_attendance":
            if location_ids is None:
                return decode_array(join_array(t.window(stream, start, end)))
            out: list[dict[str, Any]] = []
            for loc in location_ids:
                office = t.office_by_id.get(loc.strip().lower(), -2)
                out.extend(decode_array(join_array(t.window(stream, start, end, office=office))))
            return out
        if stream == "presence":
            offices = self._office_set(",".join(location_ids)) if location_ids is not None else None
            chunks = t.window(stream, start, end, offices=offices, users=users)
        else:
            chunks = t.window(stream, start, end, users=users)
        return decode_array(join_array(chunks))

    # ------------------------------------------------------------------ auth

    def _issue(self) -> tuple[str, float]:
        token = secrets.token_urlsafe(32)
        expires = time.time() + float(self.token_lifetime)
        with self._tokens_lock:
            self._tokens[token] = expires
            self._issued.append(token)
        return token, expires

    def _hmac_login(self, data: dict[str, Any]) -> _Response:
        api_key, ts, sig = data.get("apiKey"), data.get("timestamp"), data.get("hash")
        if not isinstance(api_key, str) or not isinstance(sig, str):
            raise _HTTPError(400, "apiKey, timestamp and hash are required")
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise _HTTPError(400, "timestamp must be an integer number of epoch seconds")
        if abs(time.time() - ts) > MAX_SKEW_SECONDS:
            raise _HTTPError(401, "timestamp is more than 5 minutes from the server's clock")
        expected = hmac_signature(self.api_key, self.api_secret, ts)
        key_ok = hmac.compare_digest(api_key.encode(), self.api_key.encode())
        if not (key_ok and hmac.compare_digest(sig.encode(), expected.encode())):
            raise _HTTPError(401, "Invalid API key or signature")
        token, expires = self._issue()
        return _json_response(
            200,
            {
                "authenticated": True,
                "message": "Authentication successful",
                "token": token,
                "expiration": int(expires),
            },
        )

    def _secret_login(self, data: dict[str, Any]) -> _Response:
        cid, csecret = data.get("client_id"), data.get("client_secret")
        if not isinstance(cid, str) or not isinstance(csecret, str):
            raise _HTTPError(400, "client_id and client_secret are required")
        if not (self._same(cid, self.api_key) and self._same(csecret, self.api_secret)):
            raise _HTTPError(401, "Invalid client credentials")
        token, _ = self._issue()
        return _json_response(
            200,
            {"access_token": token, "expires_in": int(self.token_lifetime), "token_type": "Bearer"},
        )

    @staticmethod
    def _same(a: str, b: str) -> bool:
        return hmac.compare_digest(a.encode(), b.encode())

    def _check_auth(self, header: str | None, *, basic: bool) -> None:
        if not header:
            raise _HTTPError(401, "Authorization header missing")
        scheme, _, cred = header.strip().partition(" ")
        cred = cred.strip()
        if basic:
            if scheme.lower() != "basic":
                raise _HTTPError(401, "Basic credentials required on /basic endpoints")
            try:
                user, sep, password = base64.b64decode(cred, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise _HTTPError(401, "Malformed Basic credentials") from None
            if not (
                sep and self._same(user, self.api_key) and self._same(password, self.api_secret)
            ):
                raise _HTTPError(401, "Invalid Basic credentials")
            return
        if scheme.lower() != "bearer" or not cred:
            raise _HTTPError(401, "Bearer token required")
        with self._tokens_lock:
            expires = self._tokens.get(cred)
        if expires is None:
            raise _HTTPError(401, "Invalid or revoked token")
        if time.time() >= expires:
            raise _HTTPError(401, "Token expired")

    # ------------------------------------------------------------------ data

    def _office_set(self, raw: str | None) -> set[int] | None:
        ids = _id_list(raw)
        if ids is None:
            return None
        return {self.tenant.office_by_id[i] for i in ids if i in self.tenant.office_by_id}

    def _user_set(self, raw: str | None) -> set[int] | None:
        ids = _id_list(raw)
        if ids is None:
            return None
        return {self.tenant.user_by_id[i] for i in ids if i in self.tenant.user_by_id}

    def _serve_stream(self, stream: str, query: dict[str, str]) -> list[bytes]:
        t = self.tenant
        if stream in FULL_TABLE_STREAMS:
            return [t.full_table(stream)]
        start = _parse_date(query, "startDate")
        end = _parse_date(query, "endDate")
        if end < start:
            raise _HTTPError(400, "endDate must not be before startDate")
        limit = self.max_window_days
        if (end - start).days >= limit:
            raise _HTTPError(400, f"endDate: the range may span at most {limit} days (inclusive)")
        if stream == "bookings_attendance":
            loc = query.get("locationId", "").strip().lower()
            office = t.office_by_id.get(loc, -2) if loc else None
            return join_array(t.window(stream, start, end, office=office))
        users = self._user_set(query.get("userIds"))
        if stream == "presence":
            offices = self._office_set(query.get("locationIds"))
            return join_array(t.window(stream, start, end, offices=offices, users=users))
        return join_array(t.window(stream, start, end, users=users))
