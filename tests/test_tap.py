"""The command line and the settings: --about, --discover, --version, --test, bad config."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tap_calven import __version__
from tap_calven.errors import ConfigError
from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox
from tap_calven.settings import OWN_SETTINGS, validate_settings
from tap_calven.streams import STREAM_TYPES
from tap_calven.tap import TapCalven
from tests.conftest import run_cli, sandbox_config

SETTINGS = [
    "api_key",
    "api_secret",
    "auth_method",
    "api_url",
    "region",
    "start_date",
    "end_date",
    "lookback_days",
    "horizon_days",
    "window_days",
    "location_ids",
    "user_ids",
    "max_concurrent_requests",
    "max_retries",
    "request_timeout",
    "user_agent",
]


def test_about_lists_every_setting_with_default_enum_and_required(tmp_path: Path) -> None:
    run = run_cli(tmp_path, None, "--about", "--format=json")
    assert run.returncode == 0, run.stderr
    about = json.loads(run.stdout)  # type: ignore[attr-defined]
    assert about["version"] == __version__
    properties = about["settings"]["properties"]
    for name in [
        *SETTINGS,
        "stream_maps",
        "flattening_enabled",
        "batch_config",
        "emit_activate_version_messages",
    ]:
        assert name in properties, name
        if name in SETTINGS:
            assert properties[name].get("description"), name
    assert set(about["settings"]["required"]) == {"api_key", "api_secret", "start_date"}
    assert properties["auth_method"]["enum"] == ["hmac", "client_secret", "basic"]
    assert properties["auth_method"]["default"] == "hmac"
    assert properties["region"]["enum"] == ["usce1", "ause1"]
    assert properties["api_secret"]["writeOnly"] is True
    defaults = {k: properties[k].get("default") for k in SETTINGS}
    assert {
        k: defaults[k]
        for k in (
            "lookback_days",
            "horizon_days",
            "window_days",
            "max_concurrent_requests",
            "max_retries",
            "request_timeout",
            "api_url",
            "user_agent",
        )
    } == {
        "lookback_days": 7,
        "horizon_days": 14,
        "window_days": 30,
        "max_concurrent_requests": 4,
        "max_retries": 8,
        "request_timeout": 300,
        "api_url": "https://api.calven.com",
        "user_agent": f"tap-calven/{__version__}",
    }
    markdown = run_cli(tmp_path, None, "--about", "--format=markdown")
    assert "| window_days |" in markdown.stdout  # type: ignore[attr-defined]


def test_version_comes_from_package_metadata(tmp_path: Path) -> None:
    run = run_cli(tmp_path, None, "--version")
    assert run.returncode == 0
    assert f"v{__version__}" in run.stdout + run.stderr  # type: ignore[attr-defined]
    assert __version__ != "0.0.0"


def test_discover_needs_no_config(tmp_path: Path) -> None:
    run = run_cli(tmp_path, None, "--discover")
    assert run.returncode == 0, run.stderr
    catalog = json.loads(run.stdout)  # type: ignore[attr-defined]
    entries = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert set(entries) == {
        "users",
        "groups",
        "locations",
        "desks",
        "bookings_attendance",
        "presence",
        "user_actions_log",
    }
    booking = entries["bookings_attendance"]
    assert booking["replication_key"] == "day"
    assert booking["key_properties"] == ["userId", "day"]
    assert entries["presence"]["replication_key"] == "timestamp"
    assert entries["users"].get("replication_method", "FULL_TABLE") == "FULL_TABLE"
    for entry in entries.values():
        for name, prop in entry["schema"]["properties"].items():
            assert prop.get("description"), f"{entry['tap_stream_id']}.{name} has no description"


def test_connection_test_reads_from_the_sandbox(tmp_path: Path, sandbox: Sandbox) -> None:
    sandbox.clear_requests()
    run = run_cli(tmp_path, sandbox_config(sandbox), "--test")
    assert run.returncode == 0, run.stderr
    read = {r.path for r in sandbox.requests if r.status == 200}
    assert {cls.path for cls in STREAM_TYPES} <= read  # one request per stream, at least


def good(sb: Sandbox) -> dict[str, Any]:
    return sandbox_config(sb, start_date="2024-01-01")


BAD_CONFIGS = [
    ({"api_key": None}, "api_key"),
    ({"api_secret": None}, "api_secret"),
    ({"api_secret": ""}, "api_secret"),
    ({"start_date": None}, "start_date"),
    ({"start_date": "2024-02-30"}, "start_date"),
    ({"start_date": "last week"}, "start_date"),
    ({"end_date": "2024-13-01"}, "end_date"),
    ({"end_date": "2023-12-31"}, "end_date"),  # before start_date
    ({"window_days": 0}, "window_days"),
    ({"window_days": 31}, "window_days"),
    ({"window_days": "30"}, "window_days"),
    ({"lookback_days": -1}, "lookback_days"),
    ({"horizon_days": -3}, "horizon_days"),
    ({"max_retries": -1}, "max_retries"),
    ({"max_concurrent_requests": 0}, "max_concurrent_requests"),
    ({"request_timeout": 0}, "request_timeout"),
    ({"request_timeout": -5}, "request_timeout"),
    ({"request_timeout": "nan"}, "request_timeout"),
    ({"request_timeout": "soon"}, "request_timeout"),
    ({"batch_config": {"encoding": {"format": "xml"}}}, "batch_config.encoding.format"),
    ({"flattening_enabled": "yes"}, "flattening_enabled"),
    ({"auth_method": "oauth"}, "auth_method"),
    ({"region": "eu"}, "region"),
    ({"api_url": "calven.example"}, "api_url"),
    ({"api_url": "http://api.calven.com"}, "api_url"),  # the secret would cross in clear
    ({"api_url": "http://10.0.0.5:8585"}, "api_url"),
    ({"stream_paths": ["desks"]}, "stream_paths"),
    ({"stream_paths": {"bookings": "/v1/analytics/bookings"}}, "stream_paths"),
    ({"stream_paths": {"desks": "v2/places"}}, "stream_paths"),
    ({"stream_paths": {"desks": "/v2/places?all=1"}}, "stream_paths"),
    ({"location_ids": "abc"}, "location_ids"),
    ({"user_ids": [""]}, "user_ids"),
]


@pytest.mark.parametrize(("change", "setting"), BAD_CONFIGS)
def test_bad_config_is_refused_before_any_request(
    change: dict[str, Any], setting: str, sandbox: Sandbox
) -> None:
    config = {k: v for k, v in {**good(sandbox), **change}.items() if v is not None}
    if setting in OWN_SETTINGS:  # the SDK's built-ins are checked against their schema
        with pytest.raises(ConfigError, match=f"'{setting}'"):
            validate_settings(config)
    with pytest.raises(ConfigError, match=f"'{setting}'"):
        TapCalven(config=config)


@pytest.mark.parametrize(("change", "setting"), [BAD_CONFIGS[i] for i in (0, 4, 7, 9, 11, 17)])
def test_bad_config_on_the_command_line_is_one_line_and_a_non_zero_exit(
    tmp_path: Path, sandbox: Sandbox, change: dict[str, Any], setting: str
) -> None:
    config = {k: v for k, v in {**good(sandbox), **change}.items() if v is not None}
    sandbox.clear_requests()
    run = run_cli(tmp_path, config)
    assert run.returncode != 0
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert f"'{setting}'" in errors[0]
    assert "Traceback" not in run.stderr
    assert not run.messages
    assert sandbox.requests == []


def test_a_date_time_start_date_is_read_as_its_utc_day(sandbox: Sandbox) -> None:
    tap = TapCalven(config=sandbox_config(sandbox, start_date="2024-03-01T23:30:00-05:00"))
    assert tap.streams["presence"].window_range()[0].isoformat() == "2024-03-02"


def test_a_traceback_appears_only_at_debug(tmp_path: Path, sandbox: Sandbox) -> None:
    config = sandbox_config(sandbox, window_days=99)
    quiet = run_cli(tmp_path, config)
    loud = run_cli(tmp_path, config, env={"TAP_CALVEN_LOGLEVEL": "DEBUG"})
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
    assert quiet.returncode == loud.returncode == 1


def test_settings_from_the_environment(tmp_path: Path, sandbox: Sandbox) -> None:
    """`--config=ENV`: integers, lists and a timeout in seconds arrive as strings."""
    start = sandbox.today - dt.timedelta(days=9)
    env = {
        "TAP_CALVEN_API_URL": sandbox.url,
        "TAP_CALVEN_API_KEY": DEFAULT_API_KEY,
        "TAP_CALVEN_API_SECRET": DEFAULT_API_SECRET,
        "TAP_CALVEN_START_DATE": start.isoformat(),
        "TAP_CALVEN_END_DATE": sandbox.today.isoformat(),
        "TAP_CALVEN_WINDOW_DAYS": "5",
        "TAP_CALVEN_REQUEST_TIMEOUT": "60",
        "TAP_CALVEN_USER_IDS": json.dumps([r["userId"] for r in sandbox.records("users")][:2]),
    }
    sandbox.clear_requests()
    run = run_cli(tmp_path, None, "--config", "ENV", env=env)
    assert run.returncode == 0, run.stderr
    presence = [r for r in sandbox.requests if r.path == "/v1/analytics/presence"]
    assert sorted((r.query["startDate"], r.query["endDate"]) for r in presence) == [
        (start.isoformat(), (start + dt.timedelta(days=4)).isoformat()),
        ((start + dt.timedelta(days=5)).isoformat(), sandbox.today.isoformat()),
    ]
    assert {r.query["userIds"].count(",") for r in presence} == {1}
