"""TapCalven: the settings a run uses, the stream list, the run's shared parts, the CLI.

The settings themselves (schema, defaults, validation) are in settings.py, the streams in
streams.py; the SDK's private hooks this class needs are in sdk_internals.py.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import os
import signal
import sys
from functools import cached_property
from typing import Any

from singer_sdk import Stream
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.helpers.capabilities import EMIT_ACTIVATE_VERSION_CONFIG
from typing_extensions import override

from tap_calven import doctor, windows
from tap_calven import settings as calven_settings
from tap_calven.api import CalvenAPI
from tap_calven.client import CalvenStream
from tap_calven.fetching import FetchScheduler, Lane
from tap_calven.sdk_internals import TapHooks, merge_missing_config_jsonschema
from tap_calven.streams import STREAM_TYPES


class TapCalven(TapHooks):
    """Singer tap for Calven's Warehouse API."""

    name = "tap-calven"
    package_name = "tap-calven"
    # msgspec serialises RECORD messages several times faster than the standard json writer.
    message_writer_class = MsgSpecWriter
    # A copy: the SDK adds its built-in settings to this dict in place.
    config_jsonschema = copy.deepcopy(calven_settings.CONFIG_SCHEMA)

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, Any]) -> None:
        """Add the SDK's built-ins, and `emit_activate_version_messages` for full-table streams."""
        super().append_builtin_config(config_jsonschema)
        merge_missing_config_jsonschema(EMIT_ACTIVATE_VERSION_CONFIG, config_jsonschema)

    def check_config(self) -> None:
        """Validate every setting before any request; raise ConfigError naming the first bad one.

        Our own settings get `validate_settings`; the SDK's built-ins their JSON schema.
        """
        calven_settings.validate_settings(self.settings)
        full_schema = copy.deepcopy(self.config_jsonschema)
        self.append_builtin_config(full_schema)
        calven_settings.validate_builtins(self.config, full_schema)

    @cached_property
    def settings(self) -> dict[str, Any]:
        """The config with every unset setting at its documented default."""
        return calven_settings.with_defaults(self.config)

    @cached_property
    def today(self) -> dt.date:
        """One UTC "today" for the whole run: windows and bookmarks all agree on it."""
        return windows.utc_today()

    @cached_property
    def api(self) -> CalvenAPI:
        """The one connection to Calven for this run: session, token and retry policy."""
        return CalvenAPI(self.settings, logger=self.logger)

    @cached_property
    def fetch_scheduler(self) -> FetchScheduler:
        """The run's requests in flight, shared by the streams in the order they sync."""
        concurrency = int(self.settings["max_concurrent_requests"])
        _ = self.api  # built here, on the main thread, before any fetching thread needs it
        return FetchScheduler(concurrency, self._lane_after)

    def _lane_after(self, name: str) -> Lane | None:
        """The lane of the selected stream after `name`, in the order of `self.streams`.

        The SDK syncs the selected streams in that order (Calven's have no parents or
        children). A wrong guess would cost only the early start: the scheduler plans again
        when a different stream comes.
        """
        selected = [stream for stream in self.streams.values() if stream.selected]
        names = [stream.name for stream in selected]
        if name not in names or names.index(name) + 1 == len(selected):
            return None
        following = selected[names.index(name) + 1]
        return following.lane() if isinstance(following, CalvenStream) else None

    @override
    def discover_streams(self) -> list[Stream]:
        """Return the seven warehouse streams, in the order of Calven's docs."""
        return [stream_type(tap=self, run=self) for stream_type in STREAM_TYPES]

    def on_termination(self, signum: int) -> None:
        """On SIGTERM/SIGINT exit 128+signum, not the SDK's 0, and write no extra STATE.

        Each completed window already wrote its STATE after its records, so the last
        STATE out is the place to resume. The SDK's extra STATE, written from the signal
        handler, could land mid-line, or cover a window whose last records are still in
        the stream's output buffer. The non-zero status keeps an orchestrator from
        taking a stopped run for a finished one.
        """
        self.logger.error(
            "Stopped by %s before the sync finished; re-run with the last STATE to resume.",
            signal.Signals(signum).name,
        )
        sys.exit(128 + signum)


def main() -> None:
    """Console entry point: one clear line for an error; a traceback only at DEBUG."""
    logger = logging.getLogger("tap-calven")
    level = os.environ.get("TAP_CALVEN_LOGLEVEL") or os.environ.get("LOGLEVEL") or ""
    if doctor.is_doctor_command(sys.argv[1:]):
        sys.exit(doctor.main(sys.argv[1:], TapCalven))
    try:
        TapCalven.cli.main(prog_name="tap-calven", standalone_mode=True)
    except SystemExit:
        raise
    except Exception as exc:
        detail = str(exc) if str(exc) else type(exc).__name__
        logger.error("%s", detail, exc_info=level.upper() == "DEBUG")
        sys.exit(1)
