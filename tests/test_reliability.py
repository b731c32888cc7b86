"""The tap against the sandbox's faults: retries, waits, token lifecycle, errors, bad output.

Every test arms a fault on a private sandbox and checks what the tap did through the
sandbox's request log (what reached "Calven", and when) and the tap's own log lines.
Waits are kept short: Retry-After 0 or 1 and a tiny back-off base for in-process runs.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tap_calven import api
from tap_calven.api import CHUNK_BYTES, CalvenAPI
from tap_calven.errors import APIError, AuthError, CalvenError, ResponseError
from tap_calven.sandbox import RequestRecord, Sandbox
from tap_calven.sandbox.tenant import PRIMARY_KEYS
from tests.conftest import TODAY, keys, lost_values, run_cli, run_tap, sandbox_config

USERS = "/v1/analytics/users"
PRESENCE = "/v1/analytics/presence"
BOOKINGS = "/v1/analytics/user-booking-attendance"
TOKEN_PATHS = {"hmac": "/v1/auth", "client_secret": "/v1/auth/token"}
RETRIES = 2

# Each transient fault, its parameters, the config it needs, and how the tap names it.
TRANSIENT: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "429": ({"retry_after": 0}, {}, "HTTP 429"),
    "5xx": ({"status": 502}, {}, "HTTP 502"),
    "drop": ({}, {}, "the connection failed"),
    "truncate": ({}, {}, "ended early"),
    "not_array": ({}, {}, "not a JSON array"),
    "slow": ({"seconds": 0.6}, {"request_timeout": 0.2}, "timed out"),
}
# At the token endpoints a `not_array` body is a JSON object without a token.
TOKEN_REASON = {"not_array": "has no token", "truncate": "could not be read"}


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Back-off waits of milliseconds: these tests prove retries, not patience."""
    monkeypatch.setattr(api, "BACKOFF_BASE", 0.01)


@pytest.fixture
def tenant() -> Iterator[Sandbox]:
    """A small private tenant: faults and revocations must not leak into other tests."""
    sb = Sandbox(seed=5, users=10, locations=2, past_days=20, future_days=5, today=TODAY)
    sb.start()
    yield sb
    sb.stop()


def hits(sb: Sandbox, path: str, *, wait_for: int = 0) -> list[RequestRecord]:
    """The requests to `path`, oldest first; waits (briefly) until `wait_for` were logged.

    A `slow` request is logged only when the sandbox finishes it, after the tap gave up.
    """
    for _ in range(100):
        found = sorted((r for r in sb.requests if r.path == path), key=lambda r: r.started)
        if len(found) >= wait_for:
            break
        time.sleep(0.05)
    return found


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "| ERROR" in line]


def the_one_error_line(stderr: str) -> str:
    """A failed run says why in exactly one ERROR line, with no traceback."""
    errors = error_lines(stderr)
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def assert_complete(sb: Sandbox, run_records: list[dict[str, Any]], stream: str) -> None:
    """Every record of the sandbox, each exactly once (by primary key)."""
    key = PRIMARY_KEYS[stream]
    truth = sb.records(stream)
    assert truth, f"the sandbox has no {stream}: the test would prove nothing"
    assert len(run_records) == len(truth)
    assert keys(run_records, key) == keys(truth, key)


# -- transient faults on data requests ----------------------------------------------------


@pytest.mark.parametrize("kind", list(TRANSIENT))
def test_a_transient_fault_on_a_data_request_is_retried_and_each_retry_logged(
    tenant: Sandbox, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    params, extra, reason = TRANSIENT[kind]
    tenant.add_fault(kind, path=USERS, count=RETRIES, **params)
    with caplog.at_level(logging.WARNING):
        run = run_tap(sandbox_config(tenant, max_retries=RETRIES, **extra), streams=["users"])
    assert_complete(tenant, run.records["users"], "users")
    assert len(hits(tenant, USERS, wait_for=RETRIES + 1)) == RETRIES + 1
    lines = warnings_about(caplog, f"GET {USERS}")
    assert len(lines) == RETRIES
    for n, line in enumerate(lines, start=1):
        assert reason in line
        assert f"retry {n} of {RETRIES} in " in line
        assert line.rstrip().endswith(" s")


@pytest.mark.parametrize("kind", list(TRANSIENT))
def test_a_transient_fault_that_outlasts_max_retries_stops_the_run_naming_the_path(
    tenant: Sandbox, kind: str
) -> None:
    params, extra, reason = TRANSIENT[kind]
    tenant.add_fault(kind, path=USERS, count=RETRIES + 1, **params)
    with pytest.raises(ResponseError) as failure:
        run_tap(sandbox_config(tenant, max_retries=RETRIES, **extra), streams=["users"])
    message = str(failure.value)
    assert f"GET {USERS} failed after {RETRIES + 1} attempts" in message
    assert reason in message
    assert "\n" not in message
    assert len(hits(tenant, USERS, wait_for=RETRIES + 1)) == RETRIES + 1


@pytest.mark.parametrize("kind", ["5xx", "not_array"])
def test_running_out_of_retries_on_the_command_line_is_one_line_exit_1(
    tmp_path: Path, tenant: Sandbox, kind: str
) -> None:
    tenant.add_fault(kind, path=USERS, count=None)
    run = run_cli(tmp_path, sandbox_config(tenant, max_retries=1))
    assert run.returncode == 1
    assert f"GET {USERS} failed after 2 attempts" in the_one_error_line(run.stderr)
    assert len(hits(tenant, USERS)) == 2


def test_a_fractional_request_timeout_from_a_config_file_times_out_and_retries(
    tmp_path: Path, tenant: Sandbox
) -> None:
    """JSON config numbers reach the tap as Decimal: 0.3 must be a valid timeout."""
    tenant.add_fault("slow", path=USERS, seconds=0.8)
    run = run_cli(tmp_path, sandbox_config(tenant, request_timeout=0.3, max_retries=1))
    assert run.returncode == 0, error_lines(run.stderr)
    assert len(run.records["users"]) == len(tenant.records("users"))
    retries = [line for line in run.stderr.splitlines() if "| WARNING" in line and USERS in line]
    assert len(retries) == 1
    assert "the request timed out; retry 1 of 1 in " in retries[0]


def test_retry_after_in_seconds_is_obeyed(tenant: Sandbox, caplog) -> None:
    tenant.add_fault("429", path=USERS, retry_after=1)
    with caplog.at_level(logging.WARNING):
        run_tap(sandbox_config(tenant, max_retries=RETRIES), streams=["users"])
    refused, served = hits(tenant, USERS)
    assert (refused.status, served.status) == (429, 200)
    # The next attempt started no sooner than 1 s after the 429 was sent (not the
    # ~10 ms back-off this test configures).
    assert served.started - (refused.started + refused.seconds) >= 0.98
    assert "in 1.0 s" in warnings_about(caplog, f"GET {USERS}")[0]


def test_retry_after_as_an_http_date_is_obeyed(tenant: Sandbox, caplog) -> None:
    until = int(time.time()) + 2
    tenant.add_fault("429", path=USERS, retry_after=email.utils.formatdate(until, usegmt=True))
    with caplog.at_level(logging.WARNING):
        run_tap(sandbox_config(tenant, max_retries=RETRIES), streams=["users"])
    refused, served = hits(tenant, USERS)
    assert (refused.status, served.status) == (429, 200)
    assert served.started >= until - 0.02  # not before the date Calven named
    assert warnings_about(caplog, "HTTP 429")


def test_a_5xx_burst_across_concurrent_windows_loses_nothing(tenant: Sandbox) -> None:
    tenant.add_fault("5xx", path=PRESENCE, count=4, status=503)
    config = sandbox_config(tenant, max_retries=4, window_days=3, max_concurrent_requests=4)
    run = run_tap(config, streams=["presence"])
    start = tenant.date_range("bookings_attendance")[0]
    truth = tenant.records("presence", start, tenant.today)
    assert keys(run.records["presence"], PRIMARY_KEYS["presence"]) == keys(
        truth, PRIMARY_KEYS["presence"]
    )
    assert len(run.records["presence"]) == len(truth)
    assert [r.status for r in hits(tenant, PRESENCE)].count(503) == 4


def test_a_retry_after_a_drop_mid_body_repeats_no_record() -> None:
    """Records read before the connection dropped are not emitted again by the retry.

    The range is exactly one 30-day window, so the dropped request and its retry are the
    only two requests to the path, whatever order concurrent requests would arrive in.
    """
    sb = Sandbox(seed=9, users=40, locations=1, past_days=30, future_days=0, today=TODAY).start()
    try:
        first = sb.date_range("bookings_attendance")[0]
        last = first + dt.timedelta(days=29)
        sb.add_fault("drop", path=BOOKINGS)
        config = sandbox_config(sb, window_days=30, end_date=last.isoformat(), max_retries=2)
        run = run_tap(config, streams=["bookings_attendance"])
        truth = sb.records("bookings_attendance", first, last)
    finally:
        sb.stop()
    dropped, served = [r for r in sb.requests if r.path == BOOKINGS]
    assert (
        dropped.query
        == served.query
        == {
            **dropped.query,
            "startDate": first.isoformat(),
            "endDate": last.isoformat(),
        }
    )
    # The first attempt delivered several read-sized chunks, so whole records were read
    # (and emitted) before the drop; the retry read them again.
    assert dropped.bytes_sent > 2 * CHUNK_BYTES
    got = run.records["bookings_attendance"]
    assert len(got) == len(truth)
    assert len(keys(got, PRIMARY_KEYS["bookings_attendance"])) == len(got)  # no duplicate


# -- transient faults at the token endpoints ----------------------------------------------


@pytest.mark.parametrize("method", list(TOKEN_PATHS))
@pytest.mark.parametrize("kind", list(TRANSIENT))
def test_a_transient_fault_at_the_token_endpoint_is_retried(
    tenant: Sandbox, caplog: pytest.LogCaptureFixture, kind: str, method: str
) -> None:
    path = TOKEN_PATHS[method]
    params, extra, reason = TRANSIENT[kind]
    tenant.add_fault(kind, path=path, count=RETRIES, **params)
    config = sandbox_config(tenant, auth_method=method, max_retries=RETRIES, **extra)
    with caplog.at_level(logging.WARNING):
        run = run_tap(config, streams=["users"])
    assert_complete(tenant, run.records["users"], "users")
    assert len(hits(tenant, path, wait_for=RETRIES + 1)) == RETRIES + 1
    lines = warnings_about(caplog, f"POST {path}:")
    assert len(lines) == RETRIES
    assert all(TOKEN_REASON.get(kind, reason) in line for line in lines)


@pytest.mark.parametrize("method", list(TOKEN_PATHS))
@pytest.mark.parametrize("kind", list(TRANSIENT))
def test_a_token_endpoint_fault_that_outlasts_max_retries_stops_the_run(
    tenant: Sandbox, kind: str, method: str
) -> None:
    path = TOKEN_PATHS[method]
    params, extra, reason = TRANSIENT[kind]
    tenant.add_fault(kind, path=path, count=RETRIES + 1, **params)
    config = sandbox_config(tenant, auth_method=method, max_retries=RETRIES, **extra)
    with pytest.raises(ResponseError) as failure:
        run_tap(config, streams=["users"])
    assert f"POST {path} failed after {RETRIES + 1} attempts" in str(failure.value)
    assert TOKEN_REASON.get(kind, reason) in str(failure.value)
    assert hits(tenant, USERS) == []


def test_a_login_answered_with_authenticated_false_is_a_rejection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Calven may refuse a login with 200 and `authenticated: false` (undocumented).

    The sandbox always answers a bad login with 401, so this one case is mocked at the
    HTTP boundary: the rejection must not be retried, and must read as one.
    """
    calls: list[str] = []

    def post(self: requests.Session, url: str, **kwargs: Any) -> requests.Response:
        calls.append(url)
        response = requests.Response()
        response.status_code = 200
        response._content = json.dumps({"authenticated": False, "message": "bad"}).encode()
        return response

    monkeypatch.setattr(requests.Session, "post", post)
    config = {
        "api_url": "http://calven.invalid",
        "api_key": "k",
        "api_secret": "s",
        "auth_method": "hmac",
        "max_retries": 3,
        "request_timeout": 5,
        "user_agent": "t",
    }
    api = CalvenAPI(config, logger=logging.getLogger("test"))
    with pytest.raises(AuthError, match="rejected the API key or secret"):
        api.auth.authorization()
    assert len(calls) == 1


# -- 401s and the token lifecycle ---------------------------------------------------------


def token_posts(sb: Sandbox, path: str = "/v1/auth") -> list[RequestRecord]:
    return [r for r in sb.requests if r.method == "POST" and r.path == path]


@pytest.mark.parametrize("method", list(TOKEN_PATHS))
def test_a_401_on_a_data_request_fetches_one_new_token_then_succeeds(
    tenant: Sandbox, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    tenant.add_fault("401", path=USERS)
    with caplog.at_level(logging.WARNING):
        run = run_tap(sandbox_config(tenant, auth_method=method), streams=["users"])
    assert_complete(tenant, run.records["users"], "users")
    assert [r.status for r in hits(tenant, USERS)] == [401, 200]
    assert len(token_posts(tenant, TOKEN_PATHS[method])) == 2
    assert len(tenant.issued_tokens) == 2
    assert warnings_about(caplog, f"GET {USERS}: HTTP 401")


def test_a_second_401_in_a_row_stops_the_run_as_rejected(tenant: Sandbox) -> None:
    tenant.add_fault("401", path=USERS, count=2)
    with pytest.raises(AuthError, match="rejected the API key or secret") as failure:
        run_tap(sandbox_config(tenant), streams=["users"])
    assert USERS in str(failure.value)
    assert [r.status for r in hits(tenant, USERS)] == [401, 401]
    assert len(token_posts(tenant)) == 2


def test_a_401_with_basic_credentials_is_not_retried(tenant: Sandbox) -> None:
    tenant.add_fault("401", path=USERS)
    with pytest.raises(AuthError, match="rejected the API key or secret"):
        run_tap(sandbox_config(tenant, auth_method="basic"), streams=["users"])
    assert [r.status for r in tenant.requests] == [401]


def test_tokens_revoked_mid_run_are_replaced_once_and_nothing_is_lost() -> None:
    sb = Sandbox(
        seed=5, users=10, locations=2, past_days=20, future_days=5, latency_ms=20, today=TODAY
    )
    sb.start()
    stop = threading.Event()

    def revoke_after_a_few_windows() -> None:
        while not stop.is_set():
            if sum(r.path == PRESENCE for r in sb.requests) >= 3:
                sb.revoke_tokens()
                return
            time.sleep(0.002)

    revoker = threading.Thread(target=revoke_after_a_few_windows)
    revoker.start()
    try:
        config = sandbox_config(sb, window_days=1, max_concurrent_requests=2)
        run = run_tap(config, streams=["presence"])
    finally:
        stop.set()
        revoker.join()
        sb.stop()
    start = sb.date_range("bookings_attendance")[0]
    truth = sb.records("presence", start, sb.today)
    assert keys(run.records["presence"], PRIMARY_KEYS["presence"]) == keys(
        truth, PRIMARY_KEYS["presence"]
    )
    statuses = [r.status for r in hits(sb, PRESENCE)]
    assert 1 <= statuses.count(401) <= 2  # the requests in flight at the revocation
    assert len(token_posts(sb)) == 2  # one new token, however many met the 401


@pytest.mark.parametrize("method", list(TOKEN_PATHS))
def test_short_lived_tokens_are_refreshed_before_they_expire(method: str) -> None:
    """Two-second tokens, one after another over 41 data requests of at least 100 ms each.

    The requests span over 4.1 s, longer than two tokens live, so the run must use at
    least three tokens: counted from the Authorization headers the sandbox saw, not timed.
    Refreshing only at expiry would send some requests with a token that expires before
    the sandbox checks it, 100 ms later (401s); refreshing ahead, with the margin, sends
    none. Only data requests are slow: a slow token endpoint would hide a missing margin.
    """
    sb = Sandbox(
        seed=5, users=10, locations=2, past_days=45, future_days=0, token_lifetime=2, today=TODAY
    )
    sb.start()
    sb.add_fault("slow", path=PRESENCE, count=None, seconds=0.1)
    try:
        config = sandbox_config(
            sb,
            auth_method=method,
            window_days=1,
            max_concurrent_requests=1,
            end_date=(TODAY - dt.timedelta(days=1)).isoformat(),
        )
        run = run_tap(config, streams=["presence"])
    finally:
        sb.stop()
    data = hits(sb, PRESENCE)
    days = (
        dt.date.fromisoformat(config["end_date"]) - dt.date.fromisoformat(config["start_date"])
    ).days
    assert len(data) == days + 1 > 41  # one request per day: over 4.1 s of 100 ms requests
    assert len({r.headers.get("Authorization") for r in data}) >= 3  # outlived two tokens
    assert run.records["presence"]
    assert [r.status for r in sb.requests if r.status != 200] == []  # no 401: none expired
    assert len(token_posts(sb, TOKEN_PATHS[method])) >= 3  # refreshed ahead, not on a 401


def test_concurrent_requests_meeting_a_401_together_cause_one_refresh() -> None:
    sb = Sandbox(
        seed=5, users=10, locations=2, past_days=20, future_days=5, latency_ms=150, today=TODAY
    )
    sb.start()
    try:
        # The first four windows are in flight together and all meet a 401.
        sb.add_fault("401", path=PRESENCE, count=4)
        config = sandbox_config(sb, window_days=2, max_concurrent_requests=4)
        run = run_tap(config, streams=["presence"])
    finally:
        sb.stop()
    assert run.records["presence"]
    statuses = [r.status for r in hits(sb, PRESENCE)]
    assert statuses.count(401) == 4
    assert len(token_posts(sb)) == 2
    assert len(sb.issued_tokens) == 2


# -- errors that retrying cannot fix ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("400", "Bad request (sandbox fault)"),
        ("403", "Forbidden (sandbox fault). The API key needs the Data Warehouse role."),
        ("404", "Not found (sandbox fault)"),
    ],
)
def test_400_403_404_are_not_retried_and_name_status_path_and_message(
    tmp_path: Path, tenant: Sandbox, kind: str, words: str
) -> None:
    tenant.add_fault(kind, path=USERS, count=None)
    run = run_cli(tmp_path, sandbox_config(tenant, max_retries=3))
    assert run.returncode == 1
    line = the_one_error_line(run.stderr)
    assert f"Calven answered HTTP {kind} to GET {USERS}: {words}" in line
    assert len(hits(tenant, USERS)) == 1


@pytest.mark.parametrize("method", ["hmac", "client_secret", "basic"])
def test_bad_credentials_are_one_line_exit_1_no_traceback(
    tmp_path: Path, tenant: Sandbox, method: str
) -> None:
    config = sandbox_config(tenant, auth_method=method, api_secret="not-the-secret")
    run = run_cli(tmp_path, config)
    assert run.returncode == 1
    line = the_one_error_line(run.stderr)
    assert "Calven rejected the API key or secret (HTTP 401" in line
    assert ("clock" in line) == (method == "hmac")
    assert not run.records
    sent = tenant.requests
    assert {r.status for r in sent} == {401}
    if method == "basic":
        # Requests already in flight together each meet the 401; none is sent again.
        sent_keys = [(r.path, tuple(sorted(r.query.items()))) for r in sent]
        assert len(set(sent_keys)) == len(sent_keys) <= 4
    else:
        assert len(sent) == 1  # one login for the whole run, not one per waiting request


# -- bad API output -----------------------------------------------------------------------


def test_drift_loses_no_value_and_says_once_per_stream_what_differs(caplog) -> None:
    sb = Sandbox(
        seed=5, users=10, locations=2, past_days=20, future_days=5, drift=True, today=TODAY
    )
    sb.start()
    try:
        run = run_tap(sandbox_config(sb, end_date=sb.today.isoformat()))
    finally:
        sb.stop()
    start = sb.date_range("bookings_attendance")[0]
    retyped = unknown = 0
    for stream, key in PRIMARY_KEYS.items():
        truth = sb.records(stream, start, sb.today)
        got = run.records.get(stream, [])
        assert truth, stream
        assert len(got) == len(truth), stream
        assert keys(got, key) == keys(truth, key), stream
        by_key = {tuple(r[k] for k in key): r for r in got}
        for served in truth:
            loaded = by_key[tuple(served[k] for k in key)]
            assert lost_values(served, loaded) == [], (stream, served)
        with_extra = [r for r in got if r.get("extra_fields")]
        unknown += sum("syncedAt" in r["extra_fields"] for r in with_extra)
        retyped += sum(bool(set(r["extra_fields"]) & set(r)) for r in with_extra)
        warned = [m for m in caplog.messages if m.startswith(f"{stream}: Calven sent")]
        assert len(warned) == 1, (stream, warned)  # once per stream, not per record
        assert "syncedAt (string)" in warned[0]
        assert "kept in the extra_fields column" in warned[0]
    assert unknown
    assert retyped
    assert "not found in catalog schema" not in caplog.text  # nothing left for the SDK to drop
    mismatch_lines = [m for m in caplog.messages if "is declared" in m]
    assert mismatch_lines
    assert all(m.count("'") == 2 for m in mismatch_lines)


@pytest.mark.parametrize("stream", ["users", "presence"])
def test_a_record_without_its_primary_key_stops_the_run_naming_the_stream(
    tenant: Sandbox, stream: str
) -> None:
    path = {"users": USERS, "presence": PRESENCE}[stream]
    tenant.add_fault("missing_key", path=path)
    with pytest.raises(CalvenError) as failure:
        run_tap(sandbox_config(tenant, max_retries=RETRIES), streams=[stream])
    message = str(failure.value)
    assert f"Stream '{stream}'" in message
    assert f"primary key field '{PRIMARY_KEYS[stream][0]}'" in message
    assert not isinstance(failure.value, APIError)
