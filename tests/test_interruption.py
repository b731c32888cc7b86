"""A run killed part-way loses nothing: re-run with its last STATE and the union is whole.

The real `tap-calven` command runs in a subprocess against a sandbox with some latency,
so that `bookings_attendance` (the first stream) takes many one-day windows. After a few
STATE messages the test sends SIGTERM, SIGINT or SIGKILL, then re-runs with the last STATE
the killed run printed (docs/contract.md §4).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tap_calven.sandbox import Sandbox
from tap_calven.sandbox.tenant import PRIMARY_KEYS
from tests.conftest import TAP, TODAY, keys, parse_messages, run_cli, sandbox_config

BOOKINGS = "/v1/analytics/user-booking-attendance"
STATES_BEFORE_KILL = 4
LOOKBACK = 2
HORIZON = 7


@pytest.fixture
def slow_tenant() -> Iterator[Sandbox]:
    """Small, with latency: each one-day window takes a moment, so a kill lands mid-stream."""
    sb = Sandbox(
        seed=21,
        users=10,
        locations=2,
        past_days=25,
        future_days=HORIZON,
        latency_ms=40,
        today=TODAY,
    )
    sb.start()
    yield sb
    sb.stop()


def interrupted_run(
    tmp_path: Path, config: dict[str, Any], signum: int
) -> tuple[int, list[dict[str, Any]], str]:
    """Start the tap, signal it after a few bookings STATEs; return status, messages, stderr."""
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [TAP, "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    states = 0
    for line in process.stdout:
        lines.append(line)
        message = json.loads(line)
        if message["type"] == "STATE" and "bookings_attendance" in json.dumps(message):
            states += 1
            if states == STATES_BEFORE_KILL:
                process.send_signal(signum)
                break
    rest, stderr = process.communicate(timeout=60)
    output = "".join(lines) + rest
    if signum == signal.SIGKILL:
        # The last line may have been cut short; only whole lines count.
        return process.returncode, parse_messages(output), stderr
    # Stopped by a handled signal: every line is a whole message.
    return process.returncode, [json.loads(line) for line in output.splitlines()], stderr


def bookmark_of(state: dict[str, Any]) -> dt.date:
    value = state["bookmarks"]["bookings_attendance"]["replication_key_value"]
    return dt.date.fromisoformat(value[:10])


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=lambda s: s.name
)
def test_a_killed_run_resumes_from_its_last_state_and_loses_nothing(
    tmp_path: Path, slow_tenant: Sandbox, signum: signal.Signals
) -> None:
    sb = slow_tenant
    config = sandbox_config(
        sb,
        window_days=1,
        max_concurrent_requests=1,
        lookback_days=LOOKBACK,
        horizon_days=HORIZON,
        # The tap runs in a subprocess, on the machine's clock: end where the tenant ends.
        end_date=(sb.today + dt.timedelta(days=HORIZON)).isoformat(),
    )
    start = dt.date.fromisoformat(config["start_date"])
    status, killed, stderr = interrupted_run(tmp_path, config, signum)

    states = [m["value"] for m in killed if m["type"] == "STATE"]
    last_state = states[-1]
    stopped_at = bookmark_of(last_state)
    last_day = sb.today + dt.timedelta(days=HORIZON)
    assert start < stopped_at < last_day  # killed part-way through the stream
    if signum == signal.SIGKILL:
        assert status == -signal.SIGKILL
    else:
        # The SDK would exit 0; a killed run must not look like a success.
        assert status == 128 + signum
        errors = [line for line in stderr.splitlines() if "| ERROR" in line]
        assert len(errors) == 1, stderr
        assert f"Stopped by {signal.Signals(signum).name}" in errors[0]
        assert "Traceback" not in stderr

    sb.latency_ms = 0  # the re-run need not be slow
    sb.clear_requests()
    rerun = run_cli(tmp_path, config, state=last_state)
    assert rerun.returncode == 0, rerun.stderr
    first_window = min(
        dt.date.fromisoformat(r.query["startDate"]) for r in sb.requests if r.path == BOOKINGS
    )
    # Contract §4: the bookmark minus the lookback (that day included), not start_date.
    assert first_window == stopped_at - dt.timedelta(days=LOOKBACK)
    assert first_window > start

    key = PRIMARY_KEYS["bookings_attendance"]
    truth = keys(sb.records("bookings_attendance", start, last_day), key)
    before = [
        m["record"]
        for m in killed
        if m["type"] == "RECORD" and m["stream"] == "bookings_attendance"
    ]
    after = rerun.records["bookings_attendance"]
    assert truth
    assert keys(before, key) < truth  # the killed run alone is missing records
    assert keys(before, key) | keys(after, key) == truth
