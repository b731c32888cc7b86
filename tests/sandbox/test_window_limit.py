"""`max_window_days`: a sandbox that serves shorter windows than Calven's documented 30 days."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox
from tap_calven.sandbox.cli import build_parser, main

from .conftest import ACTIONS, BOOKINGS, PRESENCE, TODAY, Client
from .test_cli import _command, _first_line

WINDOWED = (BOOKINGS, PRESENCE, ACTIONS)


@pytest.fixture(scope="module")
def seven_day_sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=3, users=8, locations=2, past_days=40, today=TODAY, max_window_days=7) as sb:
        yield sb


def span(days: int) -> dict[str, str]:
    """startDate..endDate covering `days` days, inclusive, ending today."""
    start = TODAY - dt.timedelta(days=days - 1)
    return {"startDate": start.isoformat(), "endDate": TODAY.isoformat()}


@pytest.mark.parametrize("path", WINDOWED)
def test_the_limit_is_inclusive_and_applies_to_both_families(
    seven_day_sandbox: Sandbox, path: str
) -> None:
    client = Client(seven_day_sandbox)
    for basic in (False, True):
        assert client.get(path, basic=basic, **span(7)).status_code == 200
        assert client.get(path, basic=basic, **span(1)).status_code == 200
        too_long = client.get(path, basic=basic, **span(8))
        assert too_long.status_code == 400
        body = too_long.json()
        assert body["statusCode"] == 400
        assert body["message"] == "endDate: the range may span at most 7 days (inclusive)"


def test_full_tables_ignore_the_limit(seven_day_sandbox: Sandbox) -> None:
    client = Client(seven_day_sandbox)
    assert client.get("/v1/analytics/users").status_code == 200


def test_a_served_window_holds_the_same_records_as_without_a_limit(
    seven_day_sandbox: Sandbox,
) -> None:
    """The limit refuses requests; it does not change what a served window holds."""
    client = Client(seven_day_sandbox)
    with Sandbox(seed=3, users=8, locations=2, past_days=40, today=TODAY) as plain:
        expected = Client(plain).get(BOOKINGS, **span(7)).json()
    assert client.get(BOOKINGS, **span(7)).json() == expected


def test_the_default_limit_is_thirty_days(sb: Sandbox) -> None:
    assert sb.max_window_days == 30


def test_a_limit_below_one_day_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Sandbox(max_window_days=0)


def test_the_command_line_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args([]).max_window_days == 30
    assert build_parser().parse_args(["--max-window-days", "3"]).max_window_days == 3
    for bad in ("0", "x"):
        with pytest.raises(SystemExit) as stopped:
            main(["--max-window-days", bad])
        assert stopped.value.code == 2
        assert "--max-window-days" in capsys.readouterr().err
    help_text = subprocess.run(
        [*_command(), "--help"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    assert "--max-window-days" in help_text


def test_the_command_serves_the_limit() -> None:
    proc = subprocess.Popen(
        [*_command(), "--port", "0", "--today", TODAY.isoformat(), "--max-window-days", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = _first_line(proc).strip().removeprefix("tap-calven-sandbox listening on ")
        credentials = (DEFAULT_API_KEY, DEFAULT_API_SECRET)

        def get(days: int) -> requests.Response:
            return requests.get(
                f"{url}{BOOKINGS}/basic", params=span(days), auth=credentials, timeout=30
            )

        assert get(2).status_code == 200
        refused = get(3)
        assert refused.status_code == 400
        assert refused.json()["message"] == "endDate: the range may span at most 2 days (inclusive)"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
