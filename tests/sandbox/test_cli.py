"""The tap-calven-sandbox command, run as a real process."""

from __future__ import annotations

import datetime as dt
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, hmac_signature
from tap_calven.sandbox.cli import build_parser, main


def _command() -> list[str]:
    script = Path(sys.executable).with_name("tap-calven-sandbox")
    return [str(script)] if script.exists() else [sys.executable, "-m", "tap_calven.sandbox.cli"]


def _first_line(proc: subprocess.Popen[str], timeout: float = 30) -> str:
    lines: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.put(proc.stdout.readline()), daemon=True).start()  # type: ignore[union-attr]
    return lines.get(timeout=timeout)


def test_cli_serves_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [
            *_command(),
            "--port",
            "0",
            "--users",
            "12",
            "--seed",
            "5",
            "--faults",
            "404:path=/v1/analytics/groups",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(proc)
        prefix = "tap-calven-sandbox listening on http://127.0.0.1:"
        assert line.startswith(prefix), line
        url = line.strip().removeprefix("tap-calven-sandbox listening on ")
        ts = int(time.time())
        auth = requests.post(
            f"{url}/v1/auth",
            json={
                "apiKey": DEFAULT_API_KEY,
                "timestamp": ts,
                "hash": hmac_signature(DEFAULT_API_KEY, DEFAULT_API_SECRET, ts),
            },
            timeout=10,
        )
        assert auth.status_code == 200
        token = auth.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        users = requests.get(f"{url}/v1/analytics/users", headers=headers, timeout=10)
        assert users.status_code == 200
        assert len(users.json()) == 12
        assert (
            requests.get(f"{url}/v1/analytics/groups", headers=headers, timeout=10).status_code
            == 404
        )
        assert (
            requests.get(f"{url}/v1/analytics/groups", headers=headers, timeout=10).status_code
            == 200
        )
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert "GET /v1/analytics/users 200" in err
        assert "POST /v1/auth 200" in err
        assert token not in err
        assert "Bearer" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_help_documents_fault_grammar() -> None:
    out = subprocess.run(
        [*_command(), "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    for needle in (
        "--faults",
        "retry_after",
        "count=",
        "sandbox-key",
        "sandbox-secret",
        "--latency-ms",
        "--drift",
    ):
        assert needle in out


def test_cli_rejects_bad_fault_spec() -> None:
    done = subprocess.run(
        [*_command(), "--faults", "teapot"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "teapot" in done.stderr


def test_a_plain_curl_session_authenticates_and_reads() -> None:
    """What the README promises a newcomer: no Python client, just curl."""
    proc = subprocess.Popen(
        [*_command(), "--port", "0", "--users", "6"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = _first_line(proc).strip().removeprefix("tap-calven-sandbox listening on ")
        ts = int(time.time())
        body = json.dumps(
            {
                "apiKey": DEFAULT_API_KEY,
                "timestamp": ts,
                "hash": hmac_signature(DEFAULT_API_KEY, DEFAULT_API_SECRET, ts),
            }
        )

        def curl(*args: str) -> str:
            done = subprocess.run(
                ["curl", "--silent", "--show-error", "--fail", *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            return done.stdout

        login = curl(
            "-X", "POST", f"{url}/v1/auth", "-H", "Content-Type: application/json", "-d", body
        )
        token = json.loads(login)["token"]
        offices = json.loads(
            curl(f"{url}/v1/analytics/locations", "-H", f"Authorization: Bearer {token}")
        )
        assert offices
        assert {"locationId", "locationName", "address", "status"} <= offices[0].keys()
        users = json.loads(
            curl("-u", f"{DEFAULT_API_KEY}:{DEFAULT_API_SECRET}", f"{url}/v1/analytics/users/basic")
        )
        assert len(users) == 6
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def test_today_pins_the_tenant_and_a_bad_one_is_one_usage_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert build_parser().parse_args(["--today", "2028-02-29"]).today == dt.date(2028, 2, 29)
    with pytest.raises(SystemExit) as stopped:
        main(["--today", "2027-02-29"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("argument --today: not a date (YYYY-MM-DD): '2027-02-29'")


def test_move_refuses_an_unknown_stream_or_a_relative_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--move", "bookings=/v2/bookings"]) == 2
    assert "unknown streams: bookings" in capsys.readouterr().err
    assert main(["--move", "desks=v2/places"]) == 2
    assert "STREAM=/path" in capsys.readouterr().err
