"""Windows adapt to the limit Calven really enforces (docs/contract.md §4).

A window longer than a day that Calven refuses (HTTP 400 or 413, or a request that still
times out after its retries) is read again in windows half as long, down to one day; no day
is skipped, no record repeated, and each window gets its STATE as with that window_days.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tap_calven.errors import APIError, GaveUpError
from tap_calven.fetching import Request
from tap_calven.sandbox import Sandbox
from tap_calven.tap import TapCalven
from tests.conftest import TODAY, Run, keys, parse_messages, run_cli, sandbox_config, sync

PRESENCE = "/v1/analytics/presence"
KEY = ("sourceId", "eventId")


@pytest.fixture
def tenant() -> Iterator[Sandbox]:
    sb = Sandbox(seed=23, users=10, locations=2, past_days=45, future_days=3, today=TODAY)
    sb.start()
    yield sb
    sb.stop()


def presence_run(sb: Sandbox, **settings: Any) -> tuple[Run, str]:
    config = sandbox_config(sb, end_date=TODAY.isoformat(), **settings)
    out, err = sync(config, streams=["presence"])
    return Run(parse_messages(out.decode())), err


def window_lengths(sb: Sandbox) -> list[int]:
    """The length in days of every presence request the sandbox saw, in order."""
    sent = sorted((r for r in sb.requests if r.path == PRESENCE), key=lambda r: r.started)
    return [
        (
            dt.date.fromisoformat(r.query["endDate"]) - dt.date.fromisoformat(r.query["startDate"])
        ).days
        + 1
        for r in sent
    ]


def presence_states(run: Run) -> list[str]:
    return [s["bookmarks"]["presence"]["replication_key_value"] for s in run.states]


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_refused_window_is_read_again_in_halves_and_nothing_is_lost(
    tenant: Sandbox, caplog: pytest.LogCaptureFixture, concurrency: int
) -> None:
    tenant.add_fault("400", path=PRESENCE, count=1)
    run, _ = presence_run(tenant, max_concurrent_requests=concurrency)
    if concurrency == 1:  # with more in flight, which window meets the fault is a race
        lengths = window_lengths(tenant)
        assert lengths[:2] == [30, 15]
        assert set(lengths[1:-1]) == {15}  # the rest of the run keeps the length that worked
    start = dt.date.fromisoformat(sandbox_config(tenant)["start_date"])
    truth = tenant.records("presence", start, TODAY)
    assert len(run.records["presence"]) == len(truth)
    assert keys(run.records["presence"], KEY) == keys(truth, KEY)
    warnings = warnings_of(caplog)
    assert len(warnings) == 1, warnings
    # With more in flight the fault may meet the last, shorter window: its half works.
    found = re.match(
        r"presence: Calven refused (\d+)-day windows; (\d+)-day windows work", warnings[0]
    )
    assert found, warnings[0]
    refused, working = int(found[1]), int(found[2])
    assert working == refused // 2
    assert refused == 30 or concurrency > 1


def test_after_a_refusal_state_is_what_that_window_days_writes(tenant: Sandbox) -> None:
    tenant.add_fault("400", path=PRESENCE, count=1)  # the first window: one in flight
    narrowed, _ = presence_run(tenant, max_concurrent_requests=1)
    tenant.clear_faults()
    planned, _ = presence_run(tenant, window_days=15)
    assert presence_states(narrowed) == presence_states(planned)
    assert narrowed.records == planned.records


def test_halving_stops_at_one_day_and_then_the_run_fails_with_calvens_words(
    tmp_path: Path, tenant: Sandbox
) -> None:
    tenant.add_fault("400", path=PRESENCE, count=None)
    config = sandbox_config(tenant, end_date=TODAY.isoformat(), max_concurrent_requests=1)
    run = run_cli(tmp_path, config, "--catalog", str(presence_only(tmp_path, config)))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert f"Calven answered HTTP 400 to GET {PRESENCE}: Bad request (sandbox fault)" in errors[0]
    assert window_lengths(tenant) == [30, 15, 7, 3, 1]
    assert "presence" not in run.records


def presence_only(tmp_path: Path, config: dict[str, Any]) -> Path:
    catalog = TapCalven(config=config).catalog_dict
    for entry in catalog["streams"]:
        selected = entry["tap_stream_id"] == "presence"
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = selected
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def test_a_window_that_times_out_after_its_retries_is_halved(
    tenant: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    tenant.add_fault("slow", path=PRESENCE, count=1, seconds=2)
    run, _ = presence_run(tenant, max_retries=0, request_timeout=0.5, max_concurrent_requests=1)
    start = dt.date.fromisoformat(sandbox_config(tenant)["start_date"])
    truth = tenant.records("presence", start, TODAY)
    assert keys(run.records["presence"], KEY) == keys(truth, KEY)
    assert any("15-day windows work" in w for w in warnings_of(caplog))


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (APIError("x", status=400, path=PRESENCE), True),
        (APIError("x", status=413, path=PRESENCE), True),
        (APIError("x", status=403, path=PRESENCE), False),
        (APIError("x", status=400, path="/v1/auth"), False),  # not this stream's request
        (GaveUpError("x", timed_out=True), True),
        (GaveUpError("x", timed_out=False), False),
    ],
)
def test_what_counts_as_a_refused_window(error: Exception, refused: bool) -> None:
    config = {"api_key": "k", "api_secret": "s", "start_date": "2024-01-01"}
    stream = TapCalven(config=config).streams["presence"]
    week = Request({}, (dt.date(2024, 1, 1), dt.date(2024, 1, 7)))
    day = Request({}, (dt.date(2024, 1, 1), dt.date(2024, 1, 1)))
    assert stream._refuses_window(error, week) is refused
    assert stream._refuses_window(error, day) is False


def test_a_tenant_with_a_ten_day_limit_is_read_whole_in_seven_day_windows(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with Sandbox(
        seed=29, users=8, past_days=40, future_days=0, today=TODAY, max_window_days=10
    ) as sb:
        run, _ = presence_run(sb, max_concurrent_requests=1)
        start = dt.date.fromisoformat(sandbox_config(sb)["start_date"])
        truth = sb.records("presence", start, TODAY)
        lengths = window_lengths(sb)
    assert keys(run.records["presence"], KEY) == keys(truth, KEY)
    assert lengths[:3] == [30, 15, 7]
    assert max(lengths[3:]) == 7
    warnings = warnings_of(caplog)
    assert warnings == [
        "presence: Calven refused 30-day windows; 7-day windows work, and the rest of this run "
        "reads them. Set window_days to 7 to start that way."
    ]
