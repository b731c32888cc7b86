"""The seven streams against the sandbox: completeness, windows, state, horizon, filters."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tap_calven.errors import APIError
from tap_calven.sandbox import Sandbox
from tap_calven.streams import STREAM_TYPES
from tests.conftest import TODAY, day_of, keys, run_tap, sandbox_config

KEYS = {cls.name: tuple(cls.primary_keys or ()) for cls in STREAM_TYPES}
PATHS = {cls.name: cls.path for cls in STREAM_TYPES}
WINDOWED = ("bookings_attendance", "presence", "user_actions_log")


def data_requests(sb: Sandbox, stream: str) -> list[Any]:
    return [r for r in sb.requests if r.path.rstrip("/").removesuffix("/basic") == PATHS[stream]]


def windows_of(sb: Sandbox, stream: str) -> list[tuple[dt.date, dt.date]]:
    return [
        (dt.date.fromisoformat(r.query["startDate"]), dt.date.fromisoformat(r.query["endDate"]))
        for r in data_requests(sb, stream)
    ]


def by_key(records: list[dict[str, Any]], stream: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    return {tuple(r[k] for k in KEYS[stream]): r for r in records}


@pytest.fixture(scope="module")
def full_run(sandbox: Sandbox):
    sandbox.clear_requests()
    run = run_tap(sandbox_config(sandbox, window_days=20))
    return run, list(sandbox.requests)


def test_every_stream_emits_every_record_of_the_sandbox(sandbox: Sandbox, full_run) -> None:
    run, _ = full_run
    start = sandbox.date_range("bookings_attendance")[0]
    today = sandbox.today
    ends = {"bookings_attendance": today + dt.timedelta(days=14)}
    for stream in KEYS:
        truth = sandbox.records(stream, start, ends.get(stream, today))
        got = run.records.get(stream, [])
        assert truth, f"the sandbox has no {stream}: the test would prove nothing"
        assert len(got) == len(truth), stream
        assert by_key(got, stream) == by_key(truth, stream), stream


def test_schema_state_and_record_messages_for_all_seven_streams(full_run) -> None:
    run, _ = full_run
    schemas = {m["stream"] for m in run.messages if m["type"] == "SCHEMA"}
    assert schemas == set(KEYS)
    assert set(run.records) == set(KEYS)
    assert run.states
    for message in run.messages:
        if message["type"] == "SCHEMA":
            assert tuple(message["key_properties"]) == KEYS[message["stream"]]


def test_windows_have_no_gap_no_overlap_and_respect_window_days(sandbox, full_run) -> None:
    _run, requests = full_run
    today = sandbox.today
    start = sandbox.date_range("bookings_attendance")[0]
    for stream in WINDOWED:
        windows = [
            (dt.date.fromisoformat(r.query["startDate"]), dt.date.fromisoformat(r.query["endDate"]))
            for r in requests
            if r.path == PATHS[stream]
        ]
        windows.sort()
        assert windows[0][0] == start
        end = today + dt.timedelta(days=14) if stream == "bookings_attendance" else today
        assert windows[-1][1] == end, stream
        for first, last in windows:
            assert 1 <= (last - first).days + 1 <= 20
        for (_, last), (first, _) in itertools.pairwise(windows):
            assert first == last + dt.timedelta(days=1), stream


def test_bookmark_is_the_last_completed_window_never_past_today(sandbox, full_run) -> None:
    run, _ = full_run
    for stream in WINDOWED:
        assert run.bookmark(stream) == sandbox.today.isoformat(), stream
    # STATE follows each window, and bookmarks only move forward.
    marks = [
        s["bookmarks"]["bookings_attendance"].get("replication_key_value")
        for s in run.states
        if "bookings_attendance" in s.get("bookmarks", {})
    ]
    marks = [m for m in marks if m]
    assert len(set(marks)) >= 4
    assert marks == sorted(marks)


def test_a_second_run_rereads_only_the_lookback(sandbox: Sandbox, full_run) -> None:
    run, _ = full_run
    sandbox.clear_requests()
    second = run_tap(sandbox_config(sandbox, window_days=20, lookback_days=3), state=run.last_state)
    resume = sandbox.today - dt.timedelta(days=3)
    for stream in WINDOWED:
        windows = windows_of(sandbox, stream)
        assert min(first for first, _ in windows) == resume, stream
        for record in second.records.get(stream, []):
            field = "day" if stream == "bookings_attendance" else "timestamp"
            assert day_of(record[field]) >= resume
    horizon_end = sandbox.today + dt.timedelta(days=14)
    truth = sandbox.records("bookings_attendance", resume, horizon_end)
    assert keys(second.records["bookings_attendance"], KEYS["bookings_attendance"]) == keys(
        truth, KEYS["bookings_attendance"]
    )
    # Full-table streams are read whole again.
    assert len(second.records["users"]) == len(run.records["users"])


def test_start_date_later_than_bookmark_minus_lookback_wins(sandbox: Sandbox) -> None:
    start = sandbox.today - dt.timedelta(days=2)
    state = {
        "bookmarks": {
            "presence": {
                "replication_key": "timestamp",
                "replication_key_value": (sandbox.today - dt.timedelta(days=1)).isoformat(),
            }
        }
    }
    sandbox.clear_requests()
    run_tap(
        sandbox_config(sandbox, start_date=start.isoformat(), lookback_days=30),
        state=state,
        streams=["presence"],
    )
    assert windows_of(sandbox, "presence") == [(start, sandbox.today)]


def test_horizon_and_end_date(sandbox: Sandbox) -> None:
    today = sandbox.today
    sandbox.clear_requests()
    run = run_tap(
        sandbox_config(
            sandbox, start_date=(today - dt.timedelta(days=5)).isoformat(), horizon_days=3
        ),
        streams=["bookings_attendance", "presence"],
    )
    assert max(
        last for _, last in windows_of(sandbox, "bookings_attendance")
    ) == today + dt.timedelta(days=3)
    assert max(last for _, last in windows_of(sandbox, "presence")) == today
    assert max(day_of(r["day"]) for r in run.records["bookings_attendance"]) > today
    assert run.bookmark("bookings_attendance") == today.isoformat()

    end = today - dt.timedelta(days=10)
    sandbox.clear_requests()
    run = run_tap(
        sandbox_config(
            sandbox, start_date=(end - dt.timedelta(days=4)).isoformat(), end_date=end.isoformat()
        ),
        streams=["bookings_attendance"],
    )
    assert windows_of(sandbox, "bookings_attendance") == [(end - dt.timedelta(days=4), end)]
    assert run.bookmark("bookings_attendance") == end.isoformat()


def test_location_ids_make_one_request_per_location_per_window(sandbox: Sandbox) -> None:
    locations = [r["locationId"] for r in sandbox.records("locations")][:2]
    start = sandbox.today - dt.timedelta(days=30)
    sandbox.clear_requests()
    run = run_tap(
        sandbox_config(
            sandbox,
            start_date=start.isoformat(),
            window_days=10,
            horizon_days=0,
            location_ids=[locations[0].upper(), locations[1]],
        ),
        streams=["bookings_attendance", "presence"],
    )
    requests = data_requests(sandbox, "bookings_attendance")
    assert len(requests) == 4 * 2  # 31 days in windows of 10 -> 4 windows, two locations each
    per_window: dict[str, list[str]] = {}
    for request in requests:  # concurrent requests reach the server in any order
        per_window.setdefault(request.query["startDate"], []).append(request.query["locationId"])
    assert len(per_window) == 4
    for sent in per_window.values():
        assert sorted(i.lower() for i in sent) == sorted(i.lower() for i in locations)
    truth = sandbox.records("bookings_attendance", start, sandbox.today, location_ids=locations)
    got = run.records["bookings_attendance"]
    assert len(got) == len(truth)
    assert keys(got, KEYS["bookings_attendance"]) == keys(truth, KEYS["bookings_attendance"])
    # presence takes all locations in one comma-separated filter
    presence = data_requests(sandbox, "presence")
    assert {r.query["locationIds"].lower() for r in presence} == {",".join(locations).lower()}
    truth = sandbox.records("presence", start, sandbox.today, location_ids=locations)
    assert keys(run.records["presence"], KEYS["presence"]) == keys(truth, KEYS["presence"])


def test_user_ids_filter_presence_and_the_actions_log(sandbox: Sandbox) -> None:
    users = [r["userId"] for r in sandbox.records("users")][:3]
    start = sandbox.today - dt.timedelta(days=40)
    sandbox.clear_requests()
    run = run_tap(
        sandbox_config(sandbox, start_date=start.isoformat(), user_ids=users),
        streams=["presence", "user_actions_log", "bookings_attendance"],
    )
    for stream in ("presence", "user_actions_log"):
        assert {r.query["userIds"] for r in data_requests(sandbox, stream)} == {",".join(users)}
        truth = sandbox.records(stream, start, sandbox.today, user_ids=users)
        assert truth, stream
        assert keys(run.records[stream], KEYS[stream]) == keys(truth, KEYS[stream])
    assert all("userIds" not in r.query for r in data_requests(sandbox, "bookings_attendance"))


@pytest.mark.parametrize("method", ["hmac", "client_secret", "basic"])
def test_each_auth_method_reads_end_to_end(sandbox: Sandbox, method: str) -> None:
    sandbox.clear_requests()
    start = sandbox.today - dt.timedelta(days=3)
    run = run_tap(
        sandbox_config(
            sandbox,
            auth_method=method,
            start_date=start.isoformat(),
            region="ause1",
            user_agent="nightly-elt/1.0",
        )
    )
    assert len(run.records["users"]) == len(sandbox.records("users"))
    token_paths = {"hmac": ["/v1/auth"], "client_secret": ["/v1/auth/token"], "basic": []}[method]
    data = [r for r in sandbox.requests if r.path.startswith("/v1/analytics")]
    assert [r.path for r in sandbox.requests if r.path.startswith("/v1/auth")] == token_paths
    assert all(r.path.endswith("/basic") == (method == "basic") for r in data)
    assert all(r.status == 200 for r in sandbox.requests)
    for request in sandbox.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["user-agent"] == "nightly-elt/1.0"
        assert headers["x-calven-region"] == "ause1"


def test_no_region_header_unless_configured(sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    run_tap(sandbox_config(sandbox), streams=["users"])
    assert sandbox.requests
    for request in sandbox.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert "x-calven-region" not in headers
        assert headers["user-agent"].startswith("tap-calven/")


def test_full_table_streams_emit_activate_version_when_asked(sandbox: Sandbox) -> None:
    run = run_tap(
        sandbox_config(sandbox, emit_activate_version_messages=True), streams=["users", "presence"]
    )
    versions = [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    assert {m["stream"] for m in versions} == {"users"}
    users = [m for m in run.messages if m["type"] == "RECORD" and m["stream"] == "users"]
    assert all(m["version"] == versions[0]["version"] for m in users)
    plain = run_tap(sandbox_config(sandbox), streams=["users"])
    assert not [m for m in plain.messages if m["type"] == "ACTIVATE_VERSION"]


def test_an_assumed_path_that_404s_is_skipped_with_a_warning(
    fresh_sandbox: Sandbox, caplog
) -> None:
    fresh_sandbox.add_fault("404", path="/v1/analytics/groups", count=None)
    run = run_tap(sandbox_config(fresh_sandbox), streams=["groups", "users"])
    assert "groups" not in run.records
    assert len(run.records["users"]) == len(fresh_sandbox.records("users"))
    text = run.stderr + caplog.text
    assert "groups" in text
    assert "/v1/analytics/groups" in text
    assert "404" in text


def test_progress_is_logged_once_per_window(sandbox: Sandbox, caplog) -> None:
    start = sandbox.today - dt.timedelta(days=29)
    with caplog.at_level("INFO"):
        run_tap(
            sandbox_config(sandbox, start_date=start.isoformat(), window_days=10),
            streams=["presence"],
        )
    lines = [r.getMessage() for r in caplog.records if "presence: window" in r.getMessage()]
    assert len(lines) == 3
    assert all("records in" in line for line in lines)


def test_batch_mode_never_states_a_bookmark_before_its_records_are_in_a_batch(
    sandbox: Sandbox, tmp_path
) -> None:
    import gzip
    import json
    from urllib.parse import urlparse

    start = sandbox.today - dt.timedelta(days=40)
    config = sandbox_config(
        sandbox,
        start_date=start.isoformat(),
        window_days=5,
        batch_config={
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": f"file://{tmp_path}", "prefix": "b-"},
            "batch_size": 100,
        },
    )
    run = run_tap(config, streams=["bookings_attendance"])
    batched: set[tuple[Any, ...]] = set()
    checked = 0
    for message in run.messages:
        if message["type"] == "BATCH":
            for url in message["manifest"]:
                with gzip.open(urlparse(url).path, "rt") as handle:
                    batched |= keys(
                        [json.loads(line) for line in handle], KEYS["bookings_attendance"]
                    )
        if message["type"] == "STATE":
            mark = message["value"]["bookmarks"]["bookings_attendance"].get("replication_key_value")
            if mark:
                covered = sandbox.records("bookings_attendance", start, dt.date.fromisoformat(mark))
                assert keys(covered, KEYS["bookings_attendance"]) <= batched, mark
                checked += 1
    assert checked >= 2
    assert run.bookmark("bookings_attendance") == sandbox.today.isoformat()


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_batch_files_hold_exactly_the_records_of_a_record_run(
    sandbox: Sandbox, tmp_path, compression: str
) -> None:
    import gzip
    import json
    from urllib.parse import urlparse

    start = sandbox.today - dt.timedelta(days=12)
    settings = {"start_date": start.isoformat(), "window_days": 5}
    streams = ["bookings_attendance", "users"]
    plain = run_tap(sandbox_config(sandbox, **settings), streams=streams)
    batch_config = {
        "encoding": {"format": "jsonl", "compression": compression},
        "storage": {"root": f"file://{tmp_path}", "prefix": "b-"},
        "batch_size": 70,
    }
    batched = run_tap(
        sandbox_config(sandbox, **settings, batch_config=batch_config), streams=streams
    )
    assert not [m for m in batched.messages if m["type"] == "RECORD"]
    opener = gzip.open if compression == "gzip" else open
    files: dict[str, list[dict[str, Any]]] = {}
    for message in batched.messages:
        if message["type"] == "BATCH":
            assert message["encoding"] == {"format": "jsonl", "compression": compression}
            for url in message["manifest"]:
                path = urlparse(url).path
                assert path.endswith(".json.gz" if compression == "gzip" else ".json"), path
                with opener(path, "rt", encoding="utf-8") as handle:
                    lines = [json.loads(line) for line in handle]
                assert 0 < len(lines) <= 70
                files.setdefault(message["stream"], []).extend(lines)
    for stream in streams:
        expected = [
            m["record"] for m in plain.messages if m["type"] == "RECORD" and m["stream"] == stream
        ]
        assert expected
        assert files[stream] == expected, stream
    assert batched.bookmark("bookings_attendance") == plain.bookmark("bookings_attendance")


def test_dates_are_sent_as_yyyy_mm_dd(full_run) -> None:
    _, requests = full_run
    dated = [r for r in requests if "startDate" in r.query]
    assert dated
    for request in dated:
        for name in ("startDate", "endDate"):
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", request.query[name]), request.query


def test_progress_names_the_location_when_partitioned(sandbox: Sandbox, caplog) -> None:
    locations = [r["locationId"] for r in sandbox.records("locations")][:2]
    start = sandbox.today - dt.timedelta(days=9)
    with caplog.at_level("INFO"):
        run_tap(
            sandbox_config(
                sandbox, start_date=start.isoformat(), horizon_days=0, location_ids=locations
            ),
            streams=["bookings_attendance"],
        )
    lines = [
        r.getMessage() for r in caplog.records if "bookings_attendance: window" in r.getMessage()
    ]
    assert len(lines) == 2
    for line, location in zip(lines, locations, strict=True):
        assert f"window {start}..{sandbox.today}, location {location}:" in line
        assert "records in" in line


def test_a_404_from_the_token_endpoint_is_not_taken_for_a_missing_groups_path(
    fresh_sandbox: Sandbox,
) -> None:
    from tap_calven.errors import APIError

    fresh_sandbox.add_fault("404", path="/v1/auth", count=None)
    with pytest.raises(APIError, match="/v1/auth"):
        run_tap(sandbox_config(fresh_sandbox), streams=["groups"])


# -- a tenant whose paths differ from the docs: `stream_paths` -------------------------


@pytest.fixture
def moved_tenant() -> Iterator[Sandbox]:
    """Desks and groups served at paths Calven's docs do not name; theirs answer 404."""
    moved = {"desks": "/v2/places", "groups": "/v1/directory/groups"}
    sb = Sandbox(seed=3, users=8, locations=2, past_days=10, today=TODAY, moved_paths=moved)
    sb.start()
    yield sb
    sb.stop()


def test_the_sandbox_serves_a_moved_stream_at_its_new_path_only(moved_tenant: Sandbox) -> None:
    with pytest.raises(APIError, match="HTTP 404 to GET /v1/analytics/desks"):
        run_tap(sandbox_config(moved_tenant), streams=["desks"])


@pytest.mark.parametrize("method", ["hmac", "basic"])
def test_stream_paths_reads_a_stream_where_the_tenant_serves_it(
    moved_tenant: Sandbox, method: str
) -> None:
    paths = {"desks": "/v2/places", "groups": "/v1/directory/groups"}
    config = sandbox_config(moved_tenant, auth_method=method, stream_paths=paths)
    run = run_tap(config, streams=["desks", "groups"])
    for stream in ("desks", "groups"):
        truth = moved_tenant.records(stream)
        assert keys(run.records[stream], KEYS[stream]) == keys(truth, KEYS[stream])
    suffix = "/basic" if method == "basic" else ""
    read = {r.path for r in moved_tenant.requests if r.status == 200}
    assert {"/v2/places" + suffix, "/v1/directory/groups" + suffix} <= read


def test_an_assumed_path_that_moved_says_which_setting_finds_it(
    moved_tenant: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    run = run_tap(sandbox_config(moved_tenant), streams=["groups", "users"])
    assert "groups" not in run.records
    assert "set `stream_paths`" in run.stderr + caplog.text


def test_a_mapped_path_that_404s_fails_even_for_an_assumed_stream(moved_tenant: Sandbox) -> None:
    config = sandbox_config(moved_tenant, stream_paths={"groups": "/v1/teams"})
    with pytest.raises(APIError, match="HTTP 404 to GET /v1/teams"):
        run_tap(config, streams=["groups"])
