"""Shared fixtures: a sandbox on a free port, and helpers that run the tap against it."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox
from tap_calven.tap import TapCalven

# Every sandbox in the suite is anchored on this day, and in-process tap runs take it as
# "today" (`pinned_today` below): no test reads the machine's clock for a date. 75 days back
# crosses a year boundary. Subprocess runs pin the same day with the tap's `end_date`.
TODAY = dt.date(2025, 3, 12)  # a Wednesday
PAST_DAYS = 75
FUTURE_DAYS = 21
TAP = str(Path(sys.executable).with_name("tap-calven"))


@pytest.fixture(scope="session", autouse=True)
def pinned_today() -> Iterator[dt.date]:
    """The tap's one clock reading, `windows.utc_today`, answers TODAY in this process."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tap_calven.windows.utc_today", lambda: TODAY)
        yield TODAY


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    """One tenant for the read-only tests; tests that add faults clear them afterwards."""
    sb = Sandbox(
        seed=7, users=30, locations=3, past_days=PAST_DAYS, future_days=FUTURE_DAYS, today=TODAY
    )
    sb.start()
    yield sb
    sb.stop()


@pytest.fixture
def fresh_sandbox() -> Iterator[Sandbox]:
    """A private tenant for tests that fault, revoke or revise it."""
    sb = Sandbox(seed=11, users=12, locations=2, past_days=40, future_days=14, today=TODAY)
    sb.start()
    yield sb
    sb.stop()


def sandbox_config(sb: Sandbox, **overrides: Any) -> dict[str, Any]:
    """A tap config that reads everything the sandbox has from its first day."""
    config: dict[str, Any] = {
        "api_url": sb.url,
        "api_key": DEFAULT_API_KEY,
        "api_secret": DEFAULT_API_SECRET,
        "start_date": sb.date_range("bookings_attendance")[0].isoformat(),
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


@dataclass
class Run:
    """What one run of the tap wrote."""

    messages: list[dict[str, Any]]
    stderr: str = ""
    returncode: int = 0
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records.setdefault(message["stream"], []).append(message["record"])

    @property
    def states(self) -> list[dict[str, Any]]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def last_state(self) -> dict[str, Any]:
        return self.states[-1]

    def bookmark(self, stream: str) -> str | None:
        value = self.last_state.get("bookmarks", {}).get(stream, {})
        return value.get("replication_key_value")


def parse_messages(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def sync(
    config: dict[str, Any],
    *,
    state: dict[str, Any] | None = None,
    catalog: dict[str, Any] | None = None,
    streams: Iterable[str] | None = None,
) -> tuple[bytes, str]:
    """Run a whole sync in this process; return stdout's bytes and stderr.

    stdout has a binary buffer, as the CLI's does: the msgspec writer writes bytes.
    """
    tap = TapCalven(config=config, state=state, catalog=catalog)
    if streams is not None:
        wanted = set(streams)
        for name, stream in tap.streams.items():
            stream.selected = name in wanted
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        tap.sync_all()
        out.flush()
    return out.buffer.getvalue(), err.getvalue()  # type: ignore[attr-defined]


def run_tap(
    config: dict[str, Any],
    state: dict[str, Any] | None = None,
    streams: list[str] | None = None,
) -> Run:
    """Run a full sync in this process and read its messages."""
    stdout, stderr = sync(config, state=state, streams=streams)
    return Run(parse_messages(stdout.decode()), stderr)


def run_cli(
    tmp_path: Path,
    config: dict[str, Any] | None,
    *args: str,
    state: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Run:
    """Run the real `tap-calven` command line in a subprocess."""
    command = [TAP, *args]
    if config is not None:
        path = tmp_path / "config.json"
        path.write_text(json.dumps(config))
        command += ["--config", str(path)]
    if state is not None:
        path = tmp_path / "state.json"
        path.write_text(json.dumps(state))
        command += ["--state", str(path)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    informational = {"--about", "--discover", "--version"} & set(args)
    messages = [] if informational else parse_messages(done.stdout)
    run = Run(messages, done.stderr, done.returncode)
    run.stdout = done.stdout  # type: ignore[attr-defined]
    return run


def keys(records: list[dict[str, Any]], key_fields: tuple[str, ...]) -> set[tuple[Any, ...]]:
    return {tuple(r[k] for k in key_fields) for r in records}


def day_of(value: str) -> dt.date:
    return dt.date.fromisoformat(value[:10])


_ABSENT = object()


def lost_values(served: dict[str, Any], loaded: dict[str, Any]) -> list[str]:
    """The fields of a served record whose value the loaded record does not hold.

    A value is held in its column unchanged; or, with the column null, in `extra_fields`
    under its own name; or, when it is not a string, as its JSON text in the column. The
    loaded record may hold nothing the sandbox did not serve (`["<invented>"]` if it does).
    """
    extra = loaded.get("extra_fields") or {}
    invented = (set(loaded) - {"extra_fields"} - set(served)) | (set(extra) - set(served))
    if invented:
        return [f"<invented> {sorted(invented)}"]
    lost = []
    for name, value in served.items():
        column = loaded.get(name, _ABSENT)
        if column == value and type(column) is type(value):
            continue
        if column in (None, _ABSENT) and extra.get(name, _ABSENT) == value:
            continue
        if isinstance(column, str) and not isinstance(value, str) and json.loads(column) == value:
            continue
        lost.append(name)
    return lost
