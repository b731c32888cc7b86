"""The fast paths change nothing a target can see.

- Concurrency (within a stream and across streams) emits exactly what a sequential run
  emits: the same records in the same order, the same STATE messages.
- The lean record path writes the SDK's own bytes, and gives way to the SDK's path for
  stream maps, flattening, deselected properties and records it cannot prove unchanged.
- The batch JSON reader yields exactly what `json` yields, whatever the chunking.
- The scheduler keeps at most `max_concurrent_requests` requests in flight, across streams.

No test here measures speed: `make bench` does (benchmarks/README.md).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

import pytest

from tap_calven import client, windows
from tap_calven.errors import APIError
from tap_calven.fetching import FetchScheduler, Lane, Request
from tap_calven.json_array import iter_json_array
from tap_calven.sandbox import Sandbox
from tap_calven.tap import TapCalven
from tap_calven.writer import LeanPath, RecordWriter, lean_path_for
from tests.conftest import TODAY, parse_messages, sandbox_config, sync

BOOKINGS = "bookings_attendance"
VOLATILE = re.compile(rb'"time_extracted":"[^"]*"|"version":\d+')


# -- helpers --------------------------------------------------------------------------


def masked(stdout: bytes) -> list[bytes]:
    """The output lines with what differs between two runs (extraction time, version) masked."""
    return [VOLATILE.sub(b"<volatile>", line) for line in stdout.splitlines()]


@pytest.fixture
def sdk_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every stream take the SDK's own record path."""
    monkeypatch.setattr(client, "lean_path_for", lambda *_, **__: None)


@pytest.fixture
def fast_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the records written by the lean path, by stream."""
    written: list[str] = []
    original = LeanPath.encode

    def spy(self: LeanPath, record: dict[str, Any], out: bytearray) -> None:
        written.append(self.stream)
        original(self, record, out)

    monkeypatch.setattr(LeanPath, "encode", spy)
    return written


def catalog_of(config: dict[str, Any]) -> dict[str, Any]:
    return TapCalven(config=config).catalog_dict


def overlapping(intervals: list[tuple[float, float, str]]) -> list[tuple[str, str]]:
    """Pairs of (label, label) whose [start, end) intervals overlap."""
    ordered = sorted(intervals)
    return [
        (label, other)
        for i, (_, end, label) in enumerate(ordered)
        for start, _, other in ordered[i + 1 :]
        if start < end
    ]


# -- concurrency emits what a sequential run emits ------------------------------------


@pytest.fixture(scope="module")
def slow_tenant() -> Iterator[Sandbox]:
    """A little latency, so that concurrent requests really overlap."""
    sb = Sandbox(
        seed=5, users=15, locations=3, past_days=40, future_days=7, latency_ms=15, today=TODAY
    )
    sb.start()
    yield sb
    sb.stop()


@pytest.mark.parametrize("partitioned", [False, True], ids=["windows", "windows-x-locations"])
def test_concurrent_runs_write_exactly_what_a_sequential_run_writes(
    slow_tenant: Sandbox, partitioned: bool
) -> None:
    sb = slow_tenant
    locations = sorted(r["locationId"] for r in sb.records("locations"))[:2]
    settings: dict[str, Any] = {"window_days": 5, "horizon_days": 7}
    if partitioned:
        settings["location_ids"] = locations
    outputs, logs = {}, {}
    for concurrency in (1, 4):
        sb.clear_requests()
        outputs[concurrency], _ = sync(
            sandbox_config(sb, max_concurrent_requests=concurrency, **settings)
        )
        logs[concurrency] = [
            (r.started, r.started + r.seconds, r.path) for r in sb.requests if r.method == "GET"
        ]

    # The same messages, byte for byte, in the same order: records and STATE alike.
    assert masked(outputs[4]) == masked(outputs[1])

    # And they are complete: every record the sandbox has, none twice.
    messages = parse_messages(outputs[4].decode())
    got = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == BOOKINGS]
    start, end = sb.date_range(BOOKINGS)[0], sb.today + dt.timedelta(days=7)
    truth = sb.records(BOOKINGS, start, end, location_ids=locations if partitioned else None)
    assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, truth))

    # In window order: days never go back to an earlier window, and once a window's
    # STATE is out no later record belongs to it.
    window_starts = [first for first, _ in windows.date_windows(start, end, 5)]
    last_window, bookmark = 0, ""
    for message in messages:
        if message["type"] == "STATE":
            state = message["value"]["bookmarks"].get(BOOKINGS, {})
            bookmark = state.get("replication_key_value", "")
        elif message["type"] == "RECORD" and message["stream"] == BOOKINGS:
            day = dt.date.fromisoformat(message["record"]["day"][:10])
            window = max(i for i, first in enumerate(window_starts) if first <= day)
            assert window >= last_window
            last_window = window
            assert not bookmark or day > dt.date.fromisoformat(bookmark)

    # The concurrent run really was concurrent: within a stream, and across streams.
    pairs = overlapping(logs[4])
    assert any(a == b for a, b in pairs)
    assert any(a != b for a, b in pairs)


def test_the_state_sequence_of_a_concurrent_run_is_the_sequential_one(slow_tenant) -> None:
    sb = slow_tenant
    states = {}
    for concurrency in (1, 4):
        stdout, _ = sync(sandbox_config(sb, window_days=3, max_concurrent_requests=concurrency))
        states[concurrency] = [
            m["value"] for m in parse_messages(stdout.decode()) if m["type"] == "STATE"
        ]
    assert states[4] == states[1]
    window_count = len(windows.date_windows(sb.date_range(BOOKINGS)[0], sb.today, 3))
    assert len(states[1]) > window_count  # one per completed window, at least


def test_a_failing_run_stops_the_requests_it_started_for_later_streams(
    fresh_sandbox: Sandbox,
) -> None:
    sb = fresh_sandbox
    sb.add_fault("400", path="/v1/analytics/user-booking-attendance", count=None)
    before = set(threading.enumerate())
    tap = TapCalven(config=sandbox_config(sb, window_days=30, max_concurrent_requests=4))
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with redirect_stdout(out), redirect_stderr(io.StringIO()), pytest.raises(APIError):
        tap.sync_all()  # bookings_attendance syncs first, and fails
    # Started early: the sandbox logs a request once its answer is sent, which can be a
    # moment after the run has already failed.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if any(r.path == "/v1/analytics/desks" for r in sb.requests):
            break
        time.sleep(0.05)
    assert any(r.path == "/v1/analytics/desks" for r in sb.requests)
    assert tap.fetch_scheduler._ahead == []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        fetching = [t for t in set(threading.enumerate()) - before if t.name.endswith("(run)")]
        if not fetching:
            break
        time.sleep(0.05)
    assert not fetching


# -- the lean record path writes the SDK's bytes --------------------------------------


@pytest.fixture(scope="module")
def drifting_tenant() -> Iterator[Sandbox]:
    """Records with unexpected fields (lists and objects too), nulls and missing fields."""
    sb = Sandbox(
        seed=9, users=12, locations=2, past_days=20, future_days=5, drift=True, today=TODAY
    )
    sb.start()
    yield sb
    sb.stop()


@pytest.mark.parametrize("tenant", ["sandbox", "drifting_tenant"])
@pytest.mark.parametrize("activate_version", [False, True])
def test_the_lean_record_path_writes_the_sdk_paths_bytes(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    fast_writes: list[str],
    tenant: str,
    activate_version: bool,
) -> None:
    sb: Sandbox = request.getfixturevalue(tenant)
    config = sandbox_config(sb, window_days=10, emit_activate_version_messages=activate_version)
    fast, _ = sync(config)
    assert set(fast_writes) == set(TapCalven(config=config).streams)
    monkeypatch.setattr(client, "lean_path_for", lambda *_, **__: None)
    slow, _ = sync(config)
    assert masked(fast) == masked(slow)
    assert b'"time_extracted":"' in fast


@pytest.mark.parametrize(
    "record",
    [
        {"userId": "U1", "day": "2024-01-01T00:00:00.000Z", "onWaitlist": True, "plan": "o"},
        {"userId": "U1", "day": "2024-01-01T00:00:00.000Z", "onWaitlist": None},
        {"userId": "U1", "day": "2024-01-01T00:00:00.000Z", "onWaitlist": 1},  # not a bool
        {"userId": "U1", "day": "2024-01-01T00:00:00.000Z", "onWaitlist": "false"},
        {"userId": "U1", "day": "2024-01-01T00:00:00.000Z", "bookingDepth": math.nan},
        {"userId": "U1", "day": "2024-01-01T00:00:00.000Z", "bookingDepth": 2**70},
        {"userId": "U1", "day": "2024-01-01T00:00:00.000Z", "plan": {"nested": [1, {"x": None}]}},
        {"userId": "U1", "day": "2024-01-01T00:00:00.000Z", "unknown": "Zo\u00eb \U0001f600"},
        {"day": "2024-01-01T00:00:00.000Z", "userId": "U1", "bookingZoneName": 'a\nb"c'},
    ],
)
@pytest.mark.parametrize("extra_keys_allowed", [True, False])
def test_one_record_written_either_way_is_the_same_line(
    record: dict[str, Any], extra_keys_allowed: bool
) -> None:
    config = {"api_key": "k", "api_secret": "s", "start_date": "2024-01-01"}
    catalog = catalog_of(config)
    for entry in catalog["streams"]:
        entry["schema"]["additionalProperties"] = extra_keys_allowed
    stream = TapCalven(config=config, catalog=catalog).streams[BOOKINGS]

    def write(fast: LeanPath | None) -> tuple[bytes, str]:
        stream.record_writer = RecordWriter(fast, stream.sdk_write_record, lambda: None)
        out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        err = io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            stream.write_record(json.loads(json.dumps(record)))
            stream.flush_records()
            out.flush()
        return out.buffer.getvalue(), err.getvalue()  # type: ignore[attr-defined]

    lean = lean_path_for(stream, stream.run.message_writer)
    assert lean is not None
    assert lean.accepts(record) == (
        (extra_keys_allowed or "unknown" not in record)
        and (record.get("onWaitlist") is None or isinstance(record["onWaitlist"], bool))
    )
    fast, _ = write(lean)
    sdk, _ = write(None)
    assert masked(fast) == masked(sdk)
    assert len(fast.splitlines()) == 1


def test_stream_maps_take_the_sdk_path(sandbox: Sandbox, fast_writes: list[str]) -> None:
    config = sandbox_config(
        sandbox,
        stream_maps={
            "users": {"email": None, "emailDomain": "email.split('@')[-1]"},
            "desks": {"__alias__": "places"},
            "groups": {"__filter__": "False"},
        },
        stream_map_config={},
    )
    stdout, _ = sync(config, streams=("users", "desks", "groups", "locations"))
    messages = parse_messages(stdout.decode())
    users = [m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == "users"]
    assert users
    assert all("email" not in u and u["emailDomain"] for u in users)
    streams = {m["stream"] for m in messages if m["type"] == "RECORD"}
    assert streams == {"users", "places", "locations"}
    assert set(fast_writes) == {"locations"}  # the one stream without a map


def test_flattening_takes_the_sdk_path(drifting_tenant, fast_writes) -> None:
    config = sandbox_config(drifting_tenant, flattening_enabled=True, flattening_max_depth=2)
    stdout, _ = sync(config, streams=("users",))
    assert fast_writes == []
    assert b'"type":"RECORD"' in stdout


def test_deselected_properties_take_the_sdk_path(sandbox: Sandbox, fast_writes) -> None:
    config = sandbox_config(sandbox)
    catalog = catalog_of(config)
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in ("users", "locations")
            if item["breadcrumb"] == ["properties", "email"]:
                item["metadata"]["selected"] = False
    stdout, _ = sync(config, catalog=catalog)
    users = [
        m["record"]
        for m in parse_messages(stdout.decode())
        if m["type"] == "RECORD" and m["stream"] == "users"
    ]
    assert users
    assert all("email" not in u for u in users)
    assert set(fast_writes) == {"locations"}


def test_a_catalog_without_extra_fields_drops_unknown_fields_the_same_on_both_paths(
    drifting_tenant: Sandbox, monkeypatch: pytest.MonkeyPatch, fast_writes: list[str], caplog
) -> None:
    config = sandbox_config(drifting_tenant, window_days=10)
    catalog = catalog_of(config)  # as saved by a release before `extra_fields` existed
    for entry in catalog["streams"]:
        del entry["schema"]["properties"]["extra_fields"]
        entry["metadata"] = [
            m for m in entry["metadata"] if m["breadcrumb"] != ["properties", "extra_fields"]
        ]
    fast, _ = sync(config, catalog=catalog)
    assert fast_writes  # the lean path ran
    assert b"syncedAt" not in fast
    assert b"extra_fields" not in fast
    assert "the catalog's schema has no extra_fields column" in caplog.text
    monkeypatch.setattr(client, "lean_path_for", lambda *_, **__: None)
    slow, _ = sync(config, catalog=catalog)
    assert masked(fast) == masked(slow)


# -- the batch JSON reader ------------------------------------------------------------


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize(
    "body",
    [
        # braces, brackets and commas inside strings, where a cut might fall
        json.dumps([{"a": "}],{", "b": i, "c": "x}" * (i % 5)} for i in range(200)]),
        # every cut tried lands inside a string: the careful reader takes over
        json.dumps([{"a": "}" * 50, "b": i} for i in range(50)]),
        # what msgspec refuses and json accepts
        '[{"a": NaN, "b": Infinity}, {"c": 1e400}, {"d": "\\ud800"}]',
        # objects nested in records, white space everywhere
        ' [ \n {"a": {"b": [1, {"c": "}"}]}} ,\n {"d": []} \n ] \n',
        "[]",
    ],
)
def test_the_reader_yields_what_json_yields_whatever_the_chunking(body: str) -> None:
    expected = json.loads(body)
    data = body.encode()
    for size in (1, 2, 3, 5, 17, 64, 1000, 1 << 16):
        got = list(iter_json_array(chunked(data, size)))
        assert len(got) == len(expected)
        assert json.dumps(got) == json.dumps(expected)  # NaN == NaN as text


def test_the_reader_reads_records_in_batches_before_the_body_ends() -> None:
    records = [{"id": i, "text": "x" * 50} for i in range(1000)]
    body = json.dumps(records).encode()
    seen: list[int] = []

    def source() -> Iterator[bytes]:
        for chunk in chunked(body, 4096):
            seen.append(len(got))
            yield chunk

    got: list[dict[str, Any]] = []
    for record in iter_json_array(source()):
        got.append(record)
    assert got == records
    assert 0 < seen[len(seen) // 2] < len(records)  # half-way, half the records were out


# -- the scheduler --------------------------------------------------------------------


class Producer:
    """A fake `produce`: records which requests ran, and how many ran at once."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.started: list[str] = []
        self.active = 0
        self.peak = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Iterator[dict[str, Any]]:
        name = request.params["n"]
        with self.lock:
            self.started.append(name)
            self.active += 1
            self.peak = max(self.peak, self.active)
        try:
            time.sleep(self.delay)
            for i in range(3):
                yield {"n": name, "i": i}
        finally:
            with self.lock:
                self.active -= 1


def plan(*names: str) -> list[Request]:
    return [Request(params={"n": name}) for name in names]


def test_the_next_streams_start_while_the_current_one_finishes() -> None:
    produce = Producer(delay=0.05)
    lanes = {
        "a": Lane("a", plan("a1", "a2"), produce),
        "b": Lane("b", plan("b1"), produce),
        "c": Lane("c", plan("c1", "c2", "c3"), produce),
    }
    order = ["a", "b", "c"]

    def lane_after(name: str) -> Lane | None:
        i = order.index(name) + 1
        return Lane(order[i], lanes[order[i]].plan, produce) if i < len(order) else None

    scheduler = FetchScheduler(4, lane_after)
    out: list[str] = []
    first = True
    for name in order:
        for fetch in scheduler.fetches(lanes[name]):
            if first:  # a's first fetch: a2, b1 and c1 are in flight already
                deadline = time.monotonic() + 10
                while len(produce.started) < 4 and time.monotonic() < deadline:
                    time.sleep(0.005)
                assert sorted(produce.started) == ["a1", "a2", "b1", "c1"]
                first = False
            out += [r["n"] for r in fetch.records()]
    assert out == [n for n in ("a1", "a2", "b1", "c1", "c2", "c3") for _ in range(3)]
    assert produce.peak <= 4
    assert scheduler._in_flight == 0
    assert sorted(produce.started) == ["a1", "a2", "b1", "c1", "c2", "c3"]  # none twice


@pytest.mark.parametrize("concurrency", [1, 2, 3])
def test_in_flight_requests_never_exceed_the_limit_across_streams(concurrency: int) -> None:
    produce = Producer(delay=0.01)
    sizes = {"a": 1, "b": 4, "c": 1, "d": 3}
    plans = {name: plan(*(f"{name}{i}" for i in range(n))) for name, n in sizes.items()}
    order = list(plans)

    def lane_after(name: str) -> Lane | None:
        i = order.index(name) + 1
        return Lane(order[i], plans[order[i]], produce) if i < len(order) else None

    scheduler = FetchScheduler(concurrency, lane_after)
    out = []
    for name in order:
        for fetch in scheduler.fetches(Lane(name, plans[name], produce)):
            out += [r["n"] for r in fetch.records() if r["i"] == 0]
    assert out == [r.params["n"] for name in order for r in plans[name]]
    assert produce.peak <= concurrency
    assert scheduler._in_flight == 0


def test_a_lane_planned_early_is_replaced_when_its_plan_changed_or_it_never_syncs() -> None:
    produce = Producer()
    early = {"b": plan("b1", "b2"), "c": plan("c1")}

    def lane_after(name: str) -> Lane | None:
        following = {"a": "b", "b": "c"}.get(name)
        return Lane(following, early[following], produce) if following else None

    scheduler = FetchScheduler(4, lane_after)
    out = [r["n"] for f in scheduler.fetches(Lane("a", plan("a1"), produce)) for r in f.records()]
    # b now plans differently (its state changed): what was started for it is dropped.
    out += [r["n"] for f in scheduler.fetches(Lane("b", plan("b9"), produce)) for r in f.records()]
    # c never syncs; d, not expected, syncs instead: c's early requests are dropped.
    out += [r["n"] for f in scheduler.fetches(Lane("d", plan("d1"), produce)) for r in f.records()]
    assert out == ["a1"] * 3 + ["b9"] * 3 + ["d1"] * 3
    assert scheduler._in_flight == 0


def test_a_stream_that_stops_early_frees_its_slots() -> None:
    produce = Producer()
    scheduler = FetchScheduler(2)
    fetches = scheduler.fetches(Lane("a", plan("a1", "a2", "a3"), produce))
    first = next(fetches)
    assert next(first.records())["n"] == "a1"
    fetches.close()
    assert scheduler._in_flight == 0
    out = [r["n"] for f in scheduler.fetches(Lane("b", plan("b1"), produce)) for r in f.records()]
    assert out == ["b1"] * 3


def test_a_stream_whose_plan_fails_is_not_started_early() -> None:
    produce = Producer()

    def lane_after(name: str) -> Lane | None:
        raise ValueError("bad bookmark")

    scheduler = FetchScheduler(4, lane_after)
    out = [r["n"] for f in scheduler.fetches(Lane("a", plan("a1"), produce)) for r in f.records()]
    assert out == ["a1"] * 3
    assert produce.started == ["a1"]
