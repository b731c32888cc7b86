"""The settings: their schema (the one source of every default) and their validation.

Every setting the tap defines is declared once, in `CONFIG_SCHEMA`; `--about`, the
defaults a run uses (`with_defaults`) and the Hub definition's check all read it. A bad
setting, ours or one of the SDK's built-ins, becomes one `ConfigError` line that names it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft7Validator
from singer_sdk import typing as th

from tap_calven import __version__
from tap_calven.conform import UNKNOWN_FIELD_MODES
from tap_calven.errors import ConfigError
from tap_calven.streams import STREAM_NAMES
from tap_calven.windows import parse_day

AUTH_METHODS = ("hmac", "client_secret", "basic")
REGIONS = ("usce1", "ause1")
DEFAULT_API_URL = "https://api.calven.com"
DEFAULT_USER_AGENT = f"tap-calven/{__version__}"

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_PATH = re.compile(r"/[^\s?#]*")

DATE_HELP = "A date, YYYY-MM-DD (a date-time is accepted: its UTC date is used)."


def _check_integer(config: Mapping[str, Any], name: str) -> None:
    """A whole number within the bounds `CONFIG_SCHEMA` declares for it."""
    value = config.get(name)
    if value is None:
        return
    schema = CONFIG_SCHEMA["properties"][name]
    low, high = int(schema["minimum"]), schema.get("maximum")
    is_whole = isinstance(value, int) and not isinstance(value, bool)
    if not is_whole or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigError(f"Setting '{name}' must be a whole number {bounds}, got {value!r}.")


def _integer_settings() -> list[str]:
    """The settings `CONFIG_SCHEMA` declares as integers, in its order."""
    return [
        name
        for name, schema in CONFIG_SCHEMA["properties"].items()
        if "integer" in (schema.get("type") or ())
    ]


def _check_id_list(config: Mapping[str, Any], name: str) -> None:
    value = config.get(name)
    if value is None:
        return
    if not isinstance(value, list) or not all(isinstance(i, str) and i.strip() for i in value):
        raise ConfigError(f"Setting '{name}' must be a list of id strings, got {value!r}.")


def _positive_seconds(value: object) -> float | None:
    """A positive, finite number of seconds, or None.

    A config file's fractions arrive as Decimal (the SDK parses JSON numbers that way) and
    an environment variable's as a string (the SDK parses only integers from the env).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def _check_api_url(api_url: object) -> None:
    """An https URL; plain http only to this machine, or the secret crosses the network."""
    if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
        raise ConfigError(f"Setting 'api_url' must be an http(s) URL, got {api_url!r}.")
    try:
        host = urlsplit(api_url).hostname
    except ValueError:
        host = None
    if not host:
        raise ConfigError(f"Setting 'api_url' has no host: {api_url!r}.")
    if api_url.startswith("http://") and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"Setting 'api_url' uses plain http:// to {host}: the API secret or token would "
            "cross the network readable by anyone on the path. Use https:// (http:// is "
            "allowed only to localhost, 127.0.0.1 and ::1)."
        )


def validate_stream_paths(config: Mapping[str, Any], streams: Collection[str]) -> None:
    """`stream_paths` maps known stream names to absolute paths on the API's host."""
    paths = config.get("stream_paths")
    if paths is None:
        return
    if not isinstance(paths, Mapping):
        raise ConfigError(f"Setting 'stream_paths' must be an object, got {paths!r}.")
    for name, path in paths.items():
        if name not in streams:
            raise ConfigError(
                f"Setting 'stream_paths' names no stream of this tap: {name!r} "
                f"(streams: {', '.join(streams)})."
            )
        if not isinstance(path, str) or not _PATH.fullmatch(path):
            raise ConfigError(
                f"Setting 'stream_paths' maps {name!r} to {path!r}: a path must start "
                "with '/' and hold no spaces, query or fragment, e.g. '/v1/analytics/desks'."
            )


def _check_choice(config: Mapping[str, Any], name: str, choices: Sequence[str]) -> None:
    """A setting with a fixed set of values is unset (its default applies) or one of them."""
    value = config.get(name)
    if value is not None and value not in choices:
        raise ConfigError(f"Setting '{name}' must be one of {', '.join(choices)}, got {value!r}.")


def validate_settings(config: Mapping[str, Any]) -> None:
    """Check every setting before any request; raise ConfigError naming the first bad one."""
    for name in ("api_key", "api_secret", "start_date"):
        value = config.get(name)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"Setting '{name}' is required and must be a non-empty string.")
    _check_choice(config, "auth_method", AUTH_METHODS)
    _check_choice(config, "region", REGIONS)
    _check_choice(config, "unknown_fields", UNKNOWN_FIELD_MODES)
    _check_api_url(config.get("api_url", DEFAULT_API_URL))
    start = parse_day("Setting 'start_date'", config["start_date"])
    if config.get("end_date") is not None:
        end = parse_day("Setting 'end_date'", config["end_date"])
        if end < start:
            raise ConfigError(
                f"Setting 'end_date' ({end}) is before 'start_date' ({start}); "
                "the range would be empty."
            )
    for name in _integer_settings():
        _check_integer(config, name)
    timeout = config.get("request_timeout")
    if timeout is not None and _positive_seconds(timeout) is None:
        raise ConfigError(f"Setting 'request_timeout' must be a positive number, got {timeout!r}.")
    _check_id_list(config, "location_ids")
    _check_id_list(config, "user_ids")
    agent = config.get("user_agent")
    if agent is not None and (not isinstance(agent, str) or not agent.strip()):
        raise ConfigError("Setting 'user_agent' must be a non-empty string.")
    validate_stream_paths(config, STREAM_NAMES)


CONFIG_SCHEMA: dict[str, Any] = th.PropertiesList(
    th.Property(
        "api_key",
        th.StringType,
        required=True,
        title="API key ID",
        description="The id of a Calven API key with the Data Warehouse (or All permissions) role.",
    ),
    th.Property(
        "api_secret",
        th.StringType,
        required=True,
        secret=True,
        title="API key secret",
        description="The secret of that API key. Never logged; with `hmac` it never "
        "leaves this machine.",
    ),
    th.Property(
        "auth_method",
        th.StringType,
        default="hmac",
        allowed_values=list(AUTH_METHODS),
        title="Authentication method",
        description="One of `hmac`, `client_secret`, `basic`. "
        "`hmac`: token from POST /v1/auth with a signed request; "
        "`client_secret`: token from POST /v1/auth/token; `basic`: HTTP Basic on the "
        "`/basic` paths (the key must be enabled for Basic by Calven).",
    ),
    th.Property(
        "api_url",
        th.StringType,
        default=DEFAULT_API_URL,
        title="API base URL",
        description="Base URL of the Calven API; change it for the sandbox or a proxy.",
    ),
    th.Property(
        "region",
        th.StringType,
        allowed_values=list(REGIONS),
        title="Region",
        description="One of `usce1` (US), `ause1` (Australia): sent as the "
        "`x-calven-region` header when set. Unset: no header, Calven's default region.",
    ),
    th.Property(
        "start_date",
        th.StringType,
        required=True,
        title="Start date",
        description="First day read by the windowed streams (bookings_attendance, "
        f"presence, user_actions_log). {DATE_HELP}",
    ),
    th.Property(
        "end_date",
        th.StringType,
        title="End date",
        description="Last day read (inclusive). Unset: today (UTC), and for "
        f"bookings_attendance today plus `horizon_days`. {DATE_HELP}",
    ),
    th.Property(
        "lookback_days",
        th.IntegerType(minimum=0),
        default=7,
        title="Lookback days",
        description="On a run with state, re-read this many days before the bookmark, "
        "to pick up late attendance and edited plans.",
    ),
    th.Property(
        "horizon_days",
        th.IntegerType(minimum=0),
        default=14,
        title="Horizon days",
        description="When `end_date` is unset, bookings_attendance also reads this many "
        "days after today (upcoming plans and bookings).",
    ),
    th.Property(
        "window_days",
        th.IntegerType(minimum=1, maximum=30),
        default=30,
        title="Window days",
        description="Days per request (1 to 30; Calven serves at most 30 days per call).",
    ),
    th.Property(
        "location_ids",
        th.ArrayType(th.StringType),
        title="Location ids",
        description="Only these locations: bookings_attendance makes one request per "
        "location per window; presence sends them as the `locationIds` filter.",
    ),
    th.Property(
        "user_ids",
        th.ArrayType(th.StringType),
        title="User ids",
        description="Only these users: the `userIds` filter of presence and user_actions_log.",
    ),
    th.Property(
        "max_concurrent_requests",
        th.IntegerType(minimum=1),
        default=4,
        title="Max concurrent requests",
        description="Requests in flight at once (1 = strictly sequential). Records still "
        "come out in window order.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0),
        default=8,
        title="Max retries",
        description="Retries of one request (429, 5xx, dropped connections, timeouts, "
        "truncated bodies) before the run fails; attempts = retries + 1.",
    ),
    th.Property(
        "request_timeout",
        th.NumberType(exclusive_minimum=0),
        default=300,
        title="Request timeout",
        description="Seconds to wait for Calven to connect or to send more data.",
    ),
    th.Property(
        "stream_paths",
        th.ObjectType(additional_properties=th.StringType),
        title="Stream paths",
        description="Read a stream from another path than the contract's, without a new "
        'release, e.g. `{"desks": "/v1/analytics/places"}`. Give the token-family path; '
        "`auth_method: basic` adds `/basic`. Checked at start-up: known stream names, "
        "absolute paths.",
    ),
    th.Property(
        "unknown_fields",
        th.StringType,
        default="keep",
        allowed_values=list(UNKNOWN_FIELD_MODES),
        title="Unknown fields",
        description="What happens to fields Calven sends that a stream's schema does not "
        "know. `keep`: load them, with their original values, into the stream's "
        "`extra_fields` JSON column; `ignore`: drop them; `fail`: stop the run with one "
        "line naming the stream and fields. Either way one WARNING per stream names them, "
        "and a known field's value of another type is kept, never nulled silently.",
    ),
    th.Property(
        "user_agent",
        th.StringType,
        default=DEFAULT_USER_AGENT,
        title="User agent",
        description="The User-Agent header of every request.",
    ),
).to_dict()


# The settings `validate_settings` checks; the rest are the SDK's built-ins.
OWN_SETTINGS = frozenset(CONFIG_SCHEMA["properties"])


def with_defaults(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config with every unset setting at its default from `CONFIG_SCHEMA`."""
    defaults = {
        name: schema["default"]
        for name, schema in CONFIG_SCHEMA["properties"].items()
        if "default" in schema
    }
    settings = {**defaults, **{k: v for k, v in config.items() if v is not None}}
    seconds = _positive_seconds(settings["request_timeout"])  # validated on its own
    if seconds is not None:
        settings["request_timeout"] = seconds
    return settings


def validate_builtins(config: Mapping[str, Any], full_schema: Mapping[str, Any]) -> None:
    """Check the SDK's built-in settings (stream maps, flattening, batch config, ...).

    They are checked against the SDK's own JSON schema; the first error becomes one line.
    """
    schema = {**full_schema, "required": []}
    builtins = {k: v for k, v in config.items() if k not in OWN_SETTINGS}
    error = next(iter(Draft7Validator(schema).iter_errors(builtins)), None)
    if error is not None:
        name = ".".join(str(part) for part in error.absolute_path) or "config"
        raise ConfigError(f"Setting '{name}' is invalid: {error.message}.")
