"""The synthetic tenant: record shapes, realism, consistency, determinism, drift, revisions."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from typing import Any

import pytest

from tap_calven.sandbox import Sandbox

from .conftest import ACTIONS, BOOKINGS, PRESENCE, TODAY, USERS, Client

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
DAY = re.compile(r"\d{4}-\d{2}-\d{2}T00:00:00\.000Z")

FIELDS = {
    "users": [
        "userId",
        "email",
        "firstName",
        "lastName",
        "userName",
        "onboarded",
        "primaryGroupId",
        "primaryLocationId",
        "status",
    ],
    "groups": ["groupId", "groupName", "groupType", "parentGroupId", "status"],
    "locations": ["locationId", "locationName", "address", "status"],
    "desks": [
        "deskId",
        "deskName",
        "zoneId",
        "zoneName",
        "levelId",
        "levelName",
        "locationId",
        "locationName",
        "status",
    ],
    "bookings_attendance": [
        "userId",
        "primaryLocationId",
        "primaryLocationName",
        "day",
        "plan",
        "bookingDepth",
        "attendanceType",
        "bookingLocationId",
        "bookingLocationName",
        "bookingLevelId",
        "bookingLevelName",
        "bookingZoneId",
        "bookingZoneName",
        "bookingPlaceId",
        "bookingPlaceName",
        "primaryGroupId",
        "primaryGroupName",
        "bookingGroupId",
        "bookingGroupName",
        "bookingSource",
        "bookingReasonCode",
        "onWaitlist",
    ],
    "presence": [
        "sourceId",
        "eventId",
        "timestamp",
        "userId",
        "userEmail",
        "sourceUserId",
        "locationId",
        "locationType",
    ],
    "user_actions_log": [
        "actionId",
        "timestamp",
        "userId",
        "day",
        "actionType",
        "description",
        "changedBy",
        "changedByUserId",
        "reason",
    ],
}
PATHS = {
    "users": "/v1/analytics/users",
    "groups": "/v1/analytics/groups",
    "locations": "/v1/analytics/locations",
    "desks": "/v1/analytics/desks",
    "bookings_attendance": BOOKINGS,
    "presence": PRESENCE,
    "user_actions_log": ACTIONS,
}
WINDOW = {"startDate": "2025-02-10", "endDate": "2025-03-11"}


def _d(s: str) -> dt.date:
    return dt.date.fromisoformat(s[:10])


@pytest.mark.parametrize("stream", list(FIELDS))
def test_record_shapes(sb: Sandbox, stream: str) -> None:
    recs = sb.records(stream)
    assert recs
    for r in recs:
        assert list(r) == FIELDS[stream]
        for key, value in r.items():
            if key.endswith("Id") and key not in ("sourceUserId",) and value is not None:
                assert UUID.fullmatch(value), (key, value)
            if key == "day":
                assert DAY.fullmatch(value)
            if key == "timestamp":
                assert TS.fullmatch(value)


def test_dimensions_hang_together(sb: Sandbox) -> None:
    groups = {g["groupId"]: g for g in sb.records("groups")}
    locations = {loc["locationId"] for loc in sb.records("locations")}
    users = sb.records("users")
    assert len(users) == USERS
    assert len(locations) == 3
    assert {g["groupType"] for g in groups.values()} >= {"Department", "Team"}
    for g in groups.values():
        assert g["parentGroupId"] is None or g["parentGroupId"] in groups
    assert any(
        g["parentGroupId"] and groups[g["parentGroupId"]]["parentGroupId"] for g in groups.values()
    )
    statuses = Counter(u["status"] for u in users)
    assert statuses.most_common(1)[0][0] == "active"
    assert len(statuses) > 1
    for u in users:
        assert u["primaryLocationId"] in locations
        assert u["primaryGroupId"] is None or u["primaryGroupId"] in groups
        assert u["userName"] == u["email"]
    desks = sb.records("desks")
    assert len({d["deskId"] for d in desks}) == len(desks)
    levels: dict[str, str] = {}
    zones: dict[str, str] = {}
    for d in desks:
        assert d["locationId"] in locations
        assert levels.setdefault(d["levelId"], d["locationId"]) == d["locationId"]
        assert zones.setdefault(d["zoneId"], d["levelId"]) == d["levelId"]


def test_bookings_look_like_a_company(sb: Sandbox) -> None:
    rows = sb.records("bookings_attendance")
    first, last = sb.date_range("bookings_attendance")
    assert first >= TODAY - dt.timedelta(days=60)
    assert last <= TODAY + dt.timedelta(days=21)
    per_day = Counter(r["day"] for r in rows)
    assert all(_d(day).weekday() < 5 for day in per_day)
    assert set(per_day.values()) == {USERS}
    assert len({(r["userId"], r["day"]) for r in rows}) == len(rows)
    plans = Counter(r["plan"] for r in rows)
    assert set(plans) == {"o", "r", "a"}
    assert plans["o"] > plans["a"]
    assert plans["r"] > plans["a"]
    past = [r for r in rows if _d(r["day"]) < TODAY]
    future = [r for r in rows if _d(r["day"]) >= TODAY]
    attendance = Counter(r["attendanceType"] for r in past if r["plan"] == "o")
    assert set(attendance) == {"confirmed", "unconfirmed", "noShow"}
    assert attendance["confirmed"] > attendance["noShow"]
    assert any(r["attendanceType"] == "walkIn" for r in past)
    assert {r["attendanceType"] for r in future} <= {None, "unconfirmed"}
    assert any(r["plan"] == "o" and r["bookingLocationId"] for r in future)
    assert {r["bookingDepth"] for r in rows if r["plan"] == "o"} == {1, 2, 3}
    for r in rows:
        if r["plan"] != "o":
            assert r["bookingDepth"] is None
            assert r["bookingLocationId"] is None
            continue
        depth = r["bookingDepth"]
        assert r["bookingLocationId"]
        assert r["bookingLocationName"]
        assert (r["bookingZoneId"] is not None) == (depth >= 2)
        assert (r["bookingPlaceId"] is not None) == (depth == 3)
        assert r["bookingSource"]
        assert r["bookingReasonCode"]
        assert isinstance(r["onWaitlist"], bool)


def _presence_by_user_day(
    events: list[dict[str, Any]],
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        out[(e["userId"], e["timestamp"][:10])].append(e)
    return out


def _assert_presence_consistent(sb: Sandbox) -> None:
    rows = sb.records("bookings_attendance", end=TODAY - dt.timedelta(days=1))
    office_of = {}
    for d in sb.records("desks"):
        for key in ("deskId", "zoneId", "levelId", "locationId"):
            office_of[d[key]] = d["locationId"]
    presence = sb.records("presence")
    assert all(_d(e["timestamp"]) < TODAY for e in presence)
    by = _presence_by_user_day(presence)
    detected = set()
    for r in rows:
        key = (r["userId"], r["day"][:10])
        events = [e for e in by.get(key, []) if e["userId"]]
        if r["attendanceType"] in ("confirmed", "walkIn"):
            detected.add(key)
            if not events:
                continue  # unmatched badge (userId null): the event exists without a user
            assert 1 <= len(events) <= 3
            office = r["bookingLocationId"] or r["primaryLocationId"]
            assert {office_of[e["locationId"]] for e in events} == {office}
            if r["bookingPlaceId"]:
                allowed = {r["bookingPlaceId"], r["bookingZoneId"], r["bookingLevelId"], office}
                assert {e["locationId"] for e in events} <= allowed
        else:
            assert not events, (r, events)
    assert {k for k in by if k[0]} <= detected


def test_presence_consistent_with_attendance(sb: Sandbox) -> None:
    _assert_presence_consistent(sb)


def _assert_actions_explain_bookings(sb: Sandbox) -> None:
    rows = sb.records("bookings_attendance")
    actions = sb.records("user_actions_log")
    assert {a["changedBy"] for a in actions} >= {"user", "autoBooking", "integration"}
    per_row: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for a in actions:
        assert _d(a["timestamp"]) <= _d(a["day"])
        assert _d(a["timestamp"]) <= TODAY
        per_row[(a["userId"], a["day"])].append(a)
    for r in rows:
        acts = sorted(per_row.get((r["userId"], r["day"]), []), key=lambda a: a["timestamp"])
        if r["plan"] == "o":
            assert any(a["actionType"] in ("bookingCreated", "bookingChanged") for a in acts), r
            plan_changes = [a for a in acts if a["actionType"] == "planChanged"]
            assert plan_changes[-1]["description"].startswith("Plan set to office")
        elif r["plan"] == "a" and acts:
            assert acts[-1]["description"].startswith("Plan set to away")


def test_actions_explain_bookings(sb: Sandbox) -> None:
    _assert_actions_explain_bookings(sb)


@pytest.mark.parametrize("stream", ["bookings_attendance", "presence", "user_actions_log"])
def test_date_range(sb: Sandbox, stream: str) -> None:
    first, last = sb.date_range(stream)
    recs = sb.records(stream)
    key = "day" if stream == "bookings_attendance" else "timestamp"
    days = sorted(_d(r[key]) for r in recs)
    assert (days[0], days[-1]) == (first, last)
    assert sb.records(stream, first - dt.timedelta(days=30), first - dt.timedelta(days=1)) == []


@pytest.mark.parametrize("stream", list(PATHS))
def test_records_equal_what_is_served(client: Client, stream: str) -> None:
    sb = client.sb
    if stream in ("users", "groups", "locations", "desks"):
        assert client.get(PATHS[stream]).json() == sb.records(stream)
        return
    served = client.get(PATHS[stream], **WINDOW).json()
    assert served == sb.records(stream, dt.date(2025, 2, 10), dt.date(2025, 3, 11))
    assert served


def test_records_with_filters(client: Client) -> None:
    sb = client.sb
    start, end = dt.date(2025, 2, 24), dt.date(2025, 3, 7)
    locs = [loc["locationId"] for loc in sb.records("locations")]
    union: list[dict[str, Any]] = []
    for loc in locs:
        union += client.get(BOOKINGS, startDate=str(start), endDate=str(end), locationId=loc).json()
    assert sb.records("bookings_attendance", start, end, location_ids=locs) == union
    assert len(union) > len(sb.records("bookings_attendance", start, end))  # duplicates kept
    users = [u["userId"] for u in sb.records("users")[:5]]
    served = client.get(
        PRESENCE,
        startDate=str(start),
        endDate=str(end),
        locationIds=locs[0],
        userIds=",".join(users),
    ).json()
    assert sb.records("presence", start, end, location_ids=[locs[0]], user_ids=users) == served
    served = client.get(
        ACTIONS, startDate=str(start), endDate=str(end), userIds=",".join(users)
    ).json()
    assert sb.records("user_actions_log", start, end, user_ids=users) == served
    assert served


def _bodies(sb: Sandbox) -> list[bytes]:
    c = Client(sb)
    responses = [c.get(PATHS[s]) for s in ("users", "groups", "locations", "desks")]
    responses += [c.get(path, **WINDOW) for path in (BOOKINGS, PRESENCE, ACTIONS)]
    assert all(r.status_code == 200 for r in responses)
    return [r.content for r in responses]


def test_determinism() -> None:
    kwargs: dict[str, Any] = {"users": 25, "past_days": 40, "future_days": 10, "today": TODAY}
    with (
        Sandbox(seed=3, **kwargs) as a,
        Sandbox(seed=3, **kwargs) as b,
        Sandbox(seed=4, **kwargs) as c,
    ):
        ba, bb, bc = _bodies(a), _bodies(b), _bodies(c)
    assert ba == bb
    assert all(len(x) > 2 for x in ba)
    assert all(x != y for x, y in zip(ba, bc, strict=True))


def test_drift_adds_fields_and_nulls_but_keeps_keys() -> None:
    keys = {
        "users": ["userId"],
        "desks": ["deskId"],
        "bookings_attendance": ["userId", "day"],
        "presence": ["sourceId", "eventId"],
        "user_actions_log": ["actionId"],
    }
    with (
        Sandbox(seed=7, users=USERS, today=TODAY) as plain,
        Sandbox(seed=7, users=USERS, today=TODAY, drift=True) as drifted,
    ):
        for stream, pk in keys.items():
            calm = plain.records(stream)
            wild = drifted.records(stream)
            assert [[r[k] for k in pk] for r in wild] == [[r[k] for k in pk] for r in calm]
            assert all(set(r) <= set(FIELDS[stream]) for r in calm)
            extra = [r for r in wild if set(r) - set(FIELDS[stream])]
            missing = [r for r in wild if set(FIELDS[stream]) - set(r)]
            nulled = sum(
                1
                for w, c in zip(wild, calm, strict=True)
                for k in w
                if w[k] is None and c.get(k) is not None
            )
            assert extra, stream
            assert missing, stream
            assert nulled, stream
        c = Client(drifted)
        assert c.get(BOOKINGS, **WINDOW).json() == drifted.records(
            "bookings_attendance", dt.date(2025, 2, 10), dt.date(2025, 3, 11)
        )


def test_revise_changes_values_for_the_same_keys() -> None:
    with Sandbox(seed=7, users=USERS, today=TODAY) as sb:
        c = Client(sb)
        day = dt.date(2025, 3, 5)
        other = dt.date(2025, 3, 6)
        before = c.get(BOOKINGS, startDate=str(day), endDate=str(other)).json()
        actions_before = sb.records("user_actions_log")
        sb.revise([day])
        after = c.get(BOOKINGS, startDate=str(day), endDate=str(other)).json()
        assert [(r["userId"], r["day"]) for r in after] == [(r["userId"], r["day"]) for r in before]
        changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
        assert changed
        assert all(a["day"].startswith(str(day)) for _, a in changed)
        assert len(changed) < USERS // 2
        sigs = ("plan", "attendanceType", "bookingLocationId", "bookingZoneId", "bookingPlaceId")
        assert all(any(b[k] != a[k] for k in sigs) for b, a in changed)
        # the revision counter advances: a second revision changes something again
        sb.revise([day])
        again = c.get(BOOKINGS, startDate=str(day), endDate=str(day)).json()
        assert again != [r for r in after if r["day"].startswith(str(day))]
        # presence and actions follow the new rows
        _assert_presence_consistent(sb)
        _assert_actions_explain_bookings(sb)
        actions_after = sb.records("user_actions_log")
        assert {a["actionId"] for a in actions_after} != {a["actionId"] for a in actions_before}
        assert any(a["reason"] == "adminCorrection" for a in actions_after)
    # deterministic: the same revisions on a fresh tenant give the same bytes
    with Sandbox(seed=7, users=USERS, today=TODAY) as again_sb:
        again_sb.revise([day])
        again_sb.revise([day])
        assert again_sb.records("bookings_attendance", day, day) == again
