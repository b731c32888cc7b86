"""Each fault kind, its count and path scoping, and latency."""

from __future__ import annotations

import json
import threading

import pytest
import requests

from tap_calven.sandbox import Fault, Sandbox, parse_fault_spec

from .conftest import BOOKINGS, PRESENCE, Client

USERS_PATH = "/v1/analytics/users"
WINDOW = {"startDate": "2025-03-03", "endDate": "2025-03-07"}


def test_429_with_retry_after_seconds_then_recovers(client: Client) -> None:
    client.sb.add_fault("429", count=2, retry_after=7)
    for _ in range(2):
        r = client.get(USERS_PATH)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "7"
        assert r.json()["statusCode"] == 429
    assert client.get(USERS_PATH).status_code == 200


def test_429_with_http_date(client: Client) -> None:
    when = "Wed, 21 Oct 2015 07:28:00 GMT"
    client.sb.add_fault("429", retry_after=when)
    r = client.get(USERS_PATH)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == when


def test_5xx_burst_and_status(client: Client) -> None:
    client.sb.add_fault("5xx", count=3)
    assert [client.get(USERS_PATH).status_code for _ in range(4)] == [503, 503, 503, 200]
    client.sb.add_fault("5xx", status=502)
    assert client.get(USERS_PATH).status_code == 502


def test_fault_scoped_to_path_prefix(client: Client) -> None:
    client.sb.add_fault("5xx", path=PRESENCE, count=1)
    assert client.get(BOOKINGS, **WINDOW).status_code == 200
    assert client.get(PRESENCE, basic=True, **WINDOW).status_code == 503  # /basic shares the prefix
    assert client.get(PRESENCE, **WINDOW).status_code == 200


def test_faults_consumed_in_order_added(client: Client) -> None:
    client.sb.add_fault("429", retry_after=1)
    client.sb.add_fault("5xx", status=500)
    client.sb.add_fault("404")
    assert [client.get(USERS_PATH).status_code for _ in range(4)] == [429, 500, 404, 200]


def test_fault_until_cleared(client: Client) -> None:
    client.sb.add_fault("403", count=None)
    for _ in range(3):
        r = client.get(USERS_PATH)
        assert r.status_code == 403
        assert r.json()["message"]
    client.sb.clear_faults()
    assert client.get(USERS_PATH).status_code == 200


def test_faults_hit_token_endpoints(sb: Sandbox) -> None:
    sb.add_fault("5xx", path="/v1/auth")
    sb.add_fault("401", path="/v1/auth/token")
    creds = {"client_id": sb.api_key, "client_secret": sb.api_secret}
    assert requests.post(f"{sb.url}/v1/auth/token", json=creds, timeout=10).status_code == 503
    assert requests.post(f"{sb.url}/v1/auth/token", json=creds, timeout=10).status_code == 401
    assert requests.post(f"{sb.url}/v1/auth/token", json=creds, timeout=10).status_code == 200


def test_401_fault_despite_valid_token(client: Client) -> None:
    client.sb.add_fault("401", count=2)
    assert [client.get(USERS_PATH).status_code for _ in range(3)] == [401, 401, 200]


def test_404_fault(client: Client) -> None:
    client.sb.add_fault("404", path="/v1/analytics/groups")
    assert client.get("/v1/analytics/groups").status_code == 404
    assert client.get("/v1/analytics/groups").status_code == 200


def test_not_array(client: Client) -> None:
    client.sb.add_fault("not_array")
    r = client.get(BOOKINGS, **WINDOW)
    assert r.status_code == 200
    assert isinstance(r.json(), dict)
    assert "message" in r.json()


def test_truncate_is_well_framed_but_cut_mid_record(client: Client) -> None:
    full = client.get(BOOKINGS, **WINDOW).content
    client.sb.add_fault("truncate")
    r = client.get(BOOKINGS, **WINDOW)
    assert r.status_code == 200
    assert int(r.headers["Content-Length"]) == len(r.content)
    assert 0 < len(r.content) < len(full)
    assert full.startswith(r.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert client.get(BOOKINGS, **WINDOW).content == full


def test_drop_closes_mid_body(client: Client) -> None:
    full = client.get(BOOKINGS, **WINDOW).content
    client.sb.add_fault("drop")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        client.get(BOOKINGS, **WINDOW)
    rec = client.sb.requests[-1]
    assert rec.status == 200
    assert 0 < rec.bytes_sent < len(full)
    assert client.get(BOOKINGS, **WINDOW).content == full  # a new connection works


def test_slow_triggers_client_timeout(client: Client) -> None:
    client.sb.add_fault("slow", seconds=1.0)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.s.get(
            f"{client.sb.url}{USERS_PATH}/basic",
            auth=(client.sb.api_key, client.sb.api_secret),
            timeout=0.3,
        )
    fresh = Client(client.sb)
    assert fresh.get(USERS_PATH).status_code == 200


def test_unknown_fault_rejected(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        sb.add_fault("teapot")
    with pytest.raises(ValueError, match="no parameter"):
        sb.add_fault("drop", seconds=3)


def test_latency_applies_concurrently(sb: Sandbox) -> None:
    sb.latency_ms = 300
    clients = [Client(sb) for _ in range(4)]
    sb.clear_requests()
    statuses: list[int] = []

    def fetch(c: Client) -> None:
        statuses.append(c.get(USERS_PATH).status_code)

    threads = [threading.Thread(target=fetch, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 4
    log = sb.requests
    assert len(log) == 4
    assert all(r.seconds >= 0.29 for r in log)  # the latency was applied to each
    # they overlapped: every request started before any of them finished
    assert max(r.started for r in log) < min(r.started + r.seconds for r in log)


def test_parse_fault_spec() -> None:
    faults = parse_fault_spec(
        "429:count=2,retry_after=1; 5xx:count=3,path=/v1/analytics/presence;"
        "drop;slow:seconds=0.5,count=inf"
    )
    assert faults == [
        Fault("429", count=2, params={"retry_after": 1}),
        Fault("5xx", path="/v1/analytics/presence", count=3),
        Fault("drop"),
        Fault("slow", count=None, params={"seconds": 0.5}),
    ]
    assert parse_fault_spec("") == []
    for bad in ["nope", "429:count", "429:count=x", "5xx:seconds=1", "404:count=0"]:
        with pytest.raises(ValueError):
            parse_fault_spec(bad)
