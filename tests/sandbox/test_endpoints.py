"""Routing, date validation and filters of the Warehouse endpoints (docs/contract.md §2)."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

from tap_calven.sandbox import Sandbox

from .conftest import ACTIONS, BOOKINGS, PRESENCE, TODAY, USERS, Client

WINDOWED = [BOOKINGS, PRESENCE, ACTIONS]
FULL = [
    "/v1/analytics/users",
    "/v1/analytics/groups",
    "/v1/analytics/locations",
    "/v1/analytics/desks",
]


def _office_of(sb: Sandbox) -> dict[str, str]:
    """Every location/level/zone/place id -> its office id, from the desks table."""
    out: dict[str, str] = {}
    for d in sb.records("desks"):
        for key in ("deskId", "zoneId", "levelId", "locationId"):
            out[d[key]] = d["locationId"]
    return out


@pytest.mark.parametrize("path", FULL)
def test_full_table_endpoints_both_families(client: Client, path: str) -> None:
    token = client.get(path)
    basic = client.get(path, basic=True)
    assert token.status_code == basic.status_code == 200
    assert token.headers["Content-Type"] == "application/json"
    assert int(token.headers["Content-Length"]) == len(token.content)
    assert token.content == basic.content
    assert isinstance(token.json(), list)
    assert token.json()


def test_trailing_slash_accepted(client: Client) -> None:
    direct = client.get("/v1/analytics/users", basic=True)
    slash = client.s.get(
        f"{client.sb.url}/v1/analytics/users/basic/", auth=(client.sb.api_key, client.sb.api_secret)
    )
    assert slash.status_code == 200
    assert slash.content == direct.content
    token_slash = client.s.get(
        f"{client.sb.url}{BOOKINGS}/",
        params={"startDate": "2025-03-03", "endDate": "2025-03-03"},
        headers={"Authorization": f"Bearer {client.token}"},
    )
    assert token_slash.status_code == 200
    assert len(token_slash.json()) == USERS


@pytest.mark.parametrize(
    "path", ["/v1/analytics/nope", "/v1/analytics/nope/basic", "/", "/v2/analytics/users"]
)
def test_unknown_path_404(client: Client, path: str) -> None:
    r = client.s.get(f"{client.sb.url}{path}", headers={"Authorization": f"Bearer {client.token}"})
    assert r.status_code == 404
    assert r.json()["statusCode"] == 404


def test_keep_alive_serves_many_requests_on_one_connection(client: Client) -> None:
    for _ in range(5):
        assert client.get("/v1/analytics/locations").status_code == 200
    assert all(r.status == 200 for r in client.sb.requests)


# ------------------------------------------------------------------ dates


@pytest.mark.parametrize("path", WINDOWED)
def test_both_date_formats_equal(client: Client, path: str) -> None:
    dashed = client.get(path, startDate="2025-02-24", endDate="2025-03-07")
    compact = client.get(path, startDate="20250224", endDate="20250307")
    assert dashed.status_code == compact.status_code == 200
    assert dashed.content == compact.content
    assert dashed.json()


def test_end_date_is_inclusive(client: Client) -> None:
    one = client.get(BOOKINGS, startDate="2025-03-03", endDate="2025-03-03").json()
    assert len(one) == USERS
    assert {r["day"] for r in one} == {"2025-03-03T00:00:00.000Z"}
    two = client.get(BOOKINGS, startDate="2025-03-03", endDate="2025-03-04").json()
    assert {r["day"] for r in two} == {"2025-03-03T00:00:00.000Z", "2025-03-04T00:00:00.000Z"}
    presence = client.get(PRESENCE, startDate="2025-03-03", endDate="2025-03-03").json()
    assert presence
    assert all(p["timestamp"].startswith("2025-03-03T") for p in presence)


@pytest.mark.parametrize("path", WINDOWED)
def test_thirty_day_limit_boundary(client: Client, path: str) -> None:
    ok = client.get(path, startDate="2025-02-01", endDate="2025-03-02")  # 29 days apart: 30 days
    assert ok.status_code == 200
    too_long = client.get(path, startDate="2025-02-01", endDate="2025-03-03")  # 30 apart: 31 days
    assert too_long.status_code == 400
    assert too_long.json()["statusCode"] == 400
    assert "30 days" in too_long.json()["message"]


@pytest.mark.parametrize("path", WINDOWED)
@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"endDate": "2025-03-01"}, "startDate"),
        ({"startDate": "2025-03-01"}, "endDate"),
        ({"startDate": "", "endDate": "2025-03-01"}, "startDate"),
        ({"startDate": "2025-13-01", "endDate": "2025-03-01"}, "startDate"),
        ({"startDate": "2025/03/01", "endDate": "2025-03-01"}, "startDate"),
        ({"startDate": "2025-0301", "endDate": "2025-03-01"}, "startDate"),
        ({"startDate": "2025-03-01", "endDate": "2025-02-30"}, "endDate"),
        ({"startDate": "2025-03-01", "endDate": "yesterday"}, "endDate"),
        ({"startDate": "2025-03-01", "endDate": "2025-03-01T00:00:00.000Z"}, "endDate"),
        ({"startDate": "2025-03-05", "endDate": "2025-03-04"}, "endDate"),
    ],
)
def test_bad_dates_400_naming_parameter(
    client: Client, path: str, params: dict[str, str], named: str
) -> None:
    for basic in (False, True):
        r = client.get(path, basic=basic, **params)
        assert r.status_code == 400, params
        assert named in r.json()["message"]


# ------------------------------------------------------------------ filters


def test_bookings_location_filter_matches_primary_or_booked(client: Client) -> None:
    sb = client.sb
    everything = client.get(BOOKINGS, startDate="2025-02-10", endDate="2025-03-11").json()
    crossed = 0
    for loc in sb.records("locations"):
        lid = loc["locationId"]
        got = client.get(
            BOOKINGS, startDate="2025-02-10", endDate="2025-03-11", locationId=lid.upper()
        ).json()
        expected = [
            r for r in everything if lid in (r["primaryLocationId"], r["bookingLocationId"])
        ]
        assert got == expected
        assert got
        crossed += sum(
            1 for r in got if r["bookingLocationId"] not in (None, r["primaryLocationId"])
        )
    assert crossed > 0, "some users should book another office, appearing under two locations"
    unknown = client.get(BOOKINGS, startDate="2025-02-10", endDate="2025-03-11", locationId="0" * 8)
    assert unknown.status_code == 200
    assert unknown.json() == []


def test_presence_filters(client: Client) -> None:
    sb = client.sb
    office_of = _office_of(sb)
    window = {"startDate": "2025-02-10", "endDate": "2025-03-11"}
    everything = client.get(PRESENCE, **window).json()
    assert {e["locationType"] for e in everything} >= {"location", "level", "zone", "place"}
    offices = [loc["locationId"] for loc in sb.records("locations")]
    one = client.get(PRESENCE, locationIds=offices[0].upper(), **window).json()
    assert one == [e for e in everything if office_of[e["locationId"]] == offices[0]]
    assert {e["locationType"] for e in one} > {"location"}
    two = client.get(PRESENCE, locationIds=f"{offices[0]}, {offices[1]}", **window).json()
    assert two == [e for e in everything if office_of[e["locationId"]] in offices[:2]]
    users = sorted({e["userId"] for e in everything if e["userId"]})[:3]
    by_user = client.get(PRESENCE, userIds=",".join(u.upper() for u in users), **window).json()
    assert by_user == [e for e in everything if e["userId"] in users]
    assert by_user
    both = client.get(PRESENCE, userIds=",".join(users), locationIds=offices[0], **window).json()
    assert both == [e for e in by_user if office_of[e["locationId"]] == offices[0]]
    assert client.get(PRESENCE, userIds="nobody", **window).json() == []


def test_actions_user_filter(client: Client) -> None:
    window = {"startDate": "2025-02-10", "endDate": "2025-03-11"}
    everything = client.get(ACTIONS, **window).json()
    users = sorted({a["userId"] for a in everything})[:2]
    got = client.get(ACTIONS, userIds=",".join(u.upper() for u in users), **window).json()
    assert got == [a for a in everything if a["userId"] in users]
    assert got
    assert all(
        dt.date(2025, 2, 10).isoformat() <= a["timestamp"][:10] <= "2025-03-11" for a in everything
    )


def test_requests_log_and_today(client: Client) -> None:
    sb = client.sb
    assert sb.today == TODAY
    client.get(PRESENCE, startDate="2025-03-03", endDate="2025-03-04", userIds="a,b")
    rec = sb.requests[-1]
    assert (rec.method, rec.path, rec.status) == ("GET", PRESENCE, 200)
    assert rec.query == {"startDate": "2025-03-03", "endDate": "2025-03-04", "userIds": "a,b"}
    assert rec.headers["Authorization"] == f"Bearer {client.token}"
    assert rec.bytes_sent == 2
    assert rec.seconds >= 0
    assert rec.started > 0
    sb.clear_requests()
    assert sb.requests == []


def test_wrong_method_on_data_path(client: Client) -> None:
    r = requests.post(
        f"{client.sb.url}/v1/analytics/users/basic",
        auth=(client.sb.api_key, client.sb.api_secret),
        timeout=10,
    )
    assert r.status_code == 405
