"""`tap-calven doctor` against the sandbox over real HTTP: plain, drifting, a smaller
window limit, a moved path, faults, every auth method, and what its JSON may not hold."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tap_calven.sandbox import Sandbox
from tap_calven.streams import STREAM_NAMES, STREAM_TYPES
from tests.conftest import TAP, TODAY, sandbox_config

WINDOWED = {cls.name for cls in STREAM_TYPES if isinstance(cls.replication_key, str)}
PATHS = {cls.name: cls.path for cls in STREAM_TYPES}


def schema_fields(stream: str) -> set[str]:
    text = resources.files("tap_calven").joinpath("schemas", f"{stream}.json").read_text()
    return set(json.loads(text)["properties"])


def doctor(tmp_path: Path, config: dict[str, Any], *args: str) -> tuple[int, str, str, dict]:
    """Run `tap-calven doctor --config F --json J`; return exit, stdout, stderr and the JSON."""
    cfg, out = tmp_path / "config.json", tmp_path / "report.json"
    cfg.write_text(json.dumps(config))
    done = subprocess.run(
        [TAP, "doctor", "--config", str(cfg), "--json", str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = json.loads(out.read_text()) if out.exists() else {}
    return done.returncode, done.stdout, done.stderr, report


def by_stream(report: dict) -> dict[str, dict]:
    return {s["stream"]: s for s in report["streams"]}


def block(stdout: str, stream: str) -> list[str]:
    """The table lines of one stream's block."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{stream}: "))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith("  ")), None)
    return lines[start:end]


def served(sb: Sandbox, stream: str, days: int = 7) -> list[dict[str, Any]]:
    if stream in WINDOWED:
        return sb.records(stream, TODAY - dt.timedelta(days=days - 1), TODAY)
    return sb.records(stream)


@pytest.fixture
def tenant(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    options = getattr(request, "param", {})
    sb = Sandbox(
        seed=4, users=12, locations=2, past_days=40, future_days=3, today=TODAY, **options
    ).start()
    try:
        yield sb
    finally:
        sb.stop()


def config_of(sb: Sandbox, **extra: Any) -> dict[str, Any]:
    return sandbox_config(sb, end_date=TODAY.isoformat(), **extra)


def test_a_tenant_as_documented_is_ok_line_by_line(tenant: Sandbox, tmp_path: Path) -> None:
    code, stdout, _, report = doctor(tmp_path, config_of(tenant))
    assert code == 0
    assert report["exit_status"] == 0
    assert report["auth_method"] == "hmac"
    # 600 s less the time the token request took (seconds on a busy machine); Calven's
    # expiration is in whole seconds, so the rounded lifetime may also read 601.
    assert 590 <= report["token_lifetime_seconds"] <= 601
    seen = re.match(r"auth method: hmac   token lifetime seen: (\d+) s", stdout)
    assert seen, stdout
    assert int(seen.group(1)) == report["token_lifetime_seconds"], stdout
    streams = by_stream(report)
    assert set(streams) == set(STREAM_NAMES)
    for name in STREAM_NAMES:
        got = block(stdout, name)
        expected = len(served(tenant, name))
        sample = f"{TODAY - dt.timedelta(days=6)}..{TODAY}" if name in WINDOWED else "whole table"
        assert got[0] == f"{name}: OK"
        assert got[1] == f"  path               {PATHS[name]}"
        assert got[2] == "  HTTP status        200"
        assert got[3] == f"  records sampled    {expected} ({sample})"
        rest = got[4:]
        if name in WINDOWED:
            assert rest.pop(0) == "  largest window     30 days"
        assert rest[0] == "  fields missing     -"
        assert rest[1] == "  not in schema      -"
        assert rest[2] == "  type mismatches    -"
        assert streams[name]["verdict"] in ("ok",)
        assert streams[name]["records_sampled"] == expected
    assert stdout.splitlines()[-1] == "summary: 7 ok; every stream can be read"


@pytest.mark.parametrize("tenant", [{"drift": True}], indirect=True)
def test_drift_names_exactly_the_fields_the_tenant_added(tenant: Sandbox, tmp_path: Path) -> None:
    code, stdout, _, report = doctor(tmp_path, config_of(tenant))
    assert code == 0  # drift alone: every stream can still be read
    for name, entry in by_stream(report).items():
        records = served(tenant, name)
        known = schema_fields(name)
        unknown = sorted({k for r in records for k in r} - known)
        assert sorted(entry["fields_not_in_schema"]) == unknown, name
        assert entry["records_sampled"] == len(records), name
        assert entry["verdict"] == ("drift" if unknown or entry["type_mismatches"] else "ok")
        line = next(x for x in block(stdout, name) if x.startswith("  not in schema"))
        for field in unknown:
            assert f"{field} (" in line
    assert any(e["type_mismatches"] for e in report["streams"])  # retyped values were seen


@pytest.mark.parametrize(
    ("tenant", "largest", "refused"),
    [({"max_window_days": 10}, 7, [30]), ({"max_window_days": 3}, 1, [30, 7])],
    indirect=["tenant"],
)
def test_the_largest_window_calven_accepts(
    tenant: Sandbox, tmp_path: Path, largest: int, refused: list[int]
) -> None:
    code, stdout, _, report = doctor(tmp_path, config_of(tenant))
    assert code == 0
    for name in WINDOWED:
        entry = by_stream(report)[name]
        assert entry["largest_window_days"] == largest
        assert entry["refused_window_days"] == refused
        line = f"  largest window     {largest} days; refused: " + ", ".join(
            f"{n} days" for n in refused
        )
        assert line in block(stdout, name)
        assert entry["records_sampled"] == len(served(tenant, name, min(largest, 7)))


@pytest.mark.parametrize(
    "tenant", [{"moved_paths": {"desks": "/v2/places", "groups": "/v2/teams"}}], indirect=True
)
def test_a_moved_path_is_unreadable_and_an_assumed_one_absent(
    tenant: Sandbox, tmp_path: Path
) -> None:
    code, stdout, _, report = doctor(tmp_path, config_of(tenant))
    streams = by_stream(report)
    assert code == 1
    assert streams["desks"]["verdict"] == "unreadable"
    assert streams["desks"]["http_status"] == 404
    assert streams["groups"]["verdict"] == "absent"  # assumed path: a run skips it
    assert "  hint               the path is assumed" in "\n".join(block(stdout, "groups"))
    assert stdout.splitlines()[-1].endswith("; some stream cannot be read")
    mapped = config_of(tenant, stream_paths={"desks": "/v2/places", "groups": "/v2/teams"})
    code, _, _, report = doctor(tmp_path, mapped)
    assert code == 0
    assert by_stream(report)["desks"]["path"] == "/v2/places"


def test_transient_faults_are_retried_and_a_lasting_one_is_reported(
    tenant: Sandbox, tmp_path: Path
) -> None:
    tenant.add_fault("5xx", path="/v1/analytics/users", count=2)
    tenant.add_fault("429", path="/v1/analytics/presence", count=1, retry_after=0)
    code, _, _, report = doctor(tmp_path, config_of(tenant, max_retries=3))
    assert code == 0
    assert tenant.faults_armed == 0
    tenant.add_fault("403", path="/v1/analytics/locations", count=None)
    code, _, _, report = doctor(tmp_path, config_of(tenant, max_retries=3))
    entry = by_stream(report)["locations"]
    assert code == 1
    assert (entry["verdict"], entry["http_status"], entry["failure"]) == (
        "unreadable",
        403,
        "http_error",
    )


@pytest.mark.parametrize(("method", "lifetime"), [("client_secret", 600), ("basic", None)])
def test_every_auth_method(tenant: Sandbox, tmp_path: Path, method: str, lifetime: int | None):
    code, stdout, _, report = doctor(tmp_path, config_of(tenant, auth_method=method))
    assert code == 0
    assert report["auth_method"] == method
    got = report["token_lifetime_seconds"]
    assert got == lifetime or (lifetime and lifetime - 10 <= got <= lifetime)
    if method == "basic":
        assert all(s["path"].endswith("/basic") for s in report["streams"])
        assert stdout.startswith("auth method: basic   token lifetime seen: -")


@pytest.mark.parametrize("tenant", [{"drift": True}], indirect=True)
def test_the_json_report_holds_no_secret_token_or_value(tenant: Sandbox, tmp_path: Path) -> None:
    config = config_of(tenant)
    _, stdout, stderr, report = doctor(tmp_path, config)
    text = (tmp_path / "report.json").read_text()
    assert config["api_secret"] not in text + stdout + stderr
    for token in tenant.issued_tokens:
        assert token not in text + stdout + stderr
    # Words a report is made of (field, stream and path names) are not values.
    fields = [f for s in STREAM_NAMES for f in schema_fields(s)]
    words = " ".join([*STREAM_NAMES, *PATHS.values(), *fields])
    values = {
        v
        for s in STREAM_NAMES
        for r in served(tenant, s)
        for v in r.values()
        if isinstance(v, str) and len(v) >= 6 and v not in words
    }
    assert values  # ids, emails, names, timestamps: the sample had them
    leaked = sorted(v for v in values if v in text)
    assert leaked == []
    assert report["streams"]


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    code, stdout, stderr, _ = doctor(tmp_path, {"api_key": "k", "start_date": "2025-01-01"})
    assert code == 2
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if "api_secret" in line]
    assert len(errors) == 1
    assert stdout == ""
