"""No credential ever reaches the tap's output, at DEBUG, whatever goes wrong (docs/contract.md §5).

Each scenario runs the real `tap-calven` command with `TAP_CALVEN_LOGLEVEL=DEBUG` against
its own sandbox, with one auth method and a set of faults; together the scenarios cover
all three auth methods and every fault kind, on data requests and at the token endpoints,
runs that recover and runs that fail. Then stdout and stderr are scanned for the secret,
every token the sandbox issued, the Basic credential and every HMAC signature the tap
could have sent. At DEBUG urllib3 logs each request, so the scan also proves that its
logging never prints headers. The scenarios run in parallel: each is a subprocess.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_calven.auth import sign
from tap_calven.sandbox import FAULT_KINDS, Sandbox
from tests.conftest import TAP, TODAY

USERS = "/v1/analytics/users"
GROUPS = "/v1/analytics/groups"
LOCATIONS = "/v1/analytics/locations"
DESKS = "/v1/analytics/desks"
BOOKINGS = "/v1/analytics/user-booking-attendance"
PRESENCE = "/v1/analytics/presence"
ACTIONS = "/v1/analytics/change-log/user"
TOKEN_PATHS = {"hmac": "/v1/auth", "client_secret": "/v1/auth/token", "basic": None}

Fault = tuple[str, str | None, int | None, dict[str, Any]]  # kind, path, count, params


def data_faults(*, with_401: bool) -> list[Fault]:
    """Every transient data fault once, each on its own stream; all are recovered from."""
    faults: list[Fault] = [
        ("429", BOOKINGS, 1, {"retry_after": 0}),
        ("drop", DESKS, 1, {}),
        ("truncate", GROUPS, 1, {}),
        ("not_array", LOCATIONS, 1, {}),
        ("slow", PRESENCE, 1, {"seconds": 1.0}),
        ("5xx", USERS, 1, {"status": 500}),
    ]
    if with_401:
        faults.append(("401", ACTIONS, 1, {}))
    return faults


@dataclass
class Scenario:
    """One run of the tap: auth method, faults, and what the run must end with."""

    name: str
    method: str
    faults: list[Fault] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    sandbox: dict[str, Any] = field(default_factory=dict)
    wrong_secret: bool = False
    data_faults: bool = False  # also every transient fault on data requests
    revoke_after: int | None = None  # revoke every token after this many data requests
    fails_with: str | None = None  # a substring of the one ERROR line; None: the run succeeds
    login_fails: bool = False  # no token is ever issued (besides a wrong secret)


def token_fault(method: str, kind: str, **params: Any) -> Fault:
    return (kind, TOKEN_PATHS[method], 1, params)


SCENARIOS = [
    # Runs that recover: every fault kind on data requests, and at each token endpoint.
    Scenario("hmac-429-all", "hmac", [token_fault("hmac", "429", retry_after=0)], data_faults=True),
    Scenario("hmac-token-5xx", "hmac", [token_fault("hmac", "5xx")]),
    Scenario("hmac-token-drop", "hmac", [token_fault("hmac", "drop")]),
    Scenario(
        "secret-truncate-all",
        "client_secret",
        [token_fault("client_secret", "truncate")],
        data_faults=True,
    ),
    Scenario(
        "secret-token-not-array", "client_secret", [token_fault("client_secret", "not_array")]
    ),
    Scenario(
        "secret-token-slow", "client_secret", [token_fault("client_secret", "slow", seconds=1.0)]
    ),
    Scenario("basic-all", "basic", [("404", GROUPS, 1, {})], data_faults=True),
    Scenario(
        "secret-short-tokens",
        "client_secret",
        config={"window_days": 1, "max_concurrent_requests": 1},
        sandbox={"token_lifetime": 2, "latency_ms": 40},
    ),
    Scenario("hmac-revoked", "hmac", sandbox={"latency_ms": 20}, revoke_after=2),
    # Runs that fail: bad credentials, errors that are not retried, retries run out.
    Scenario("hmac-wrong-secret", "hmac", wrong_secret=True, fails_with="rejected"),
    Scenario("secret-wrong-secret", "client_secret", wrong_secret=True, fails_with="rejected"),
    Scenario("basic-wrong-secret", "basic", wrong_secret=True, fails_with="rejected"),
    Scenario("hmac-403", "hmac", [("403", USERS, None, {})], fails_with="HTTP 403"),
    Scenario("secret-400", "client_secret", [("400", USERS, None, {})], fails_with="HTTP 400"),
    Scenario("basic-404", "basic", [("404", USERS, None, {})], fails_with="HTTP 404"),
    Scenario("secret-401-twice", "client_secret", [("401", USERS, 2, {})], fails_with="rejected"),
    Scenario("basic-401", "basic", [("401", USERS, 1, {})], fails_with="rejected"),
    Scenario("hmac-missing-key", "hmac", [("missing_key", USERS, 1, {})], fails_with="users"),
    Scenario(
        "secret-retries-run-out",
        "client_secret",
        [("5xx", USERS, None, {})],
        config={"max_retries": 1},
        fails_with="failed after 2 attempts",
    ),
    Scenario(
        "hmac-token-retries-run-out",
        "hmac",
        [("429", "/v1/auth", None, {"retry_after": 0})],
        config={"max_retries": 1},
        fails_with="failed after 2 attempts",
        login_fails=True,
    ),
]


@dataclass
class Outcome:
    """What one scenario's run printed, and every credential that must not be in it."""

    returncode: int
    stdout: str = field(repr=False)
    stderr: str = field(repr=False)
    # label -> value; only labels may appear in a failure message.
    credentials: dict[str, str] = field(repr=False)
    tokens_issued: int = 0
    faults_armed: int = 0  # faults that never fired their full count


def credentials_of(sb: Sandbox, api_key: str, api_secret: str) -> dict[str, str]:
    """The configured secret, the sandbox's, both Basic credentials, tokens, signatures."""
    found = {"api_secret": api_secret, "sandbox api_secret": sb.api_secret}
    for label, secret in (("configured", api_secret), ("sandbox", sb.api_secret)):
        found[f"Basic credential ({label})"] = base64.b64encode(
            f"{api_key}:{secret}".encode()
        ).decode()
    for n, token in enumerate(sb.issued_tokens):
        found[f"token {n}"] = token
        found[f"token {n} (prefix)"] = token[:16]
    for request in sb.requests:
        if request.method == "POST" and request.path == "/v1/auth":
            # The tap signs with its clock's whole seconds, just before the request starts.
            second = int(request.started)
            for timestamp in range(second - 2, second + 2):
                signature = sign(api_key, api_secret, timestamp)
                found[f"signature @{timestamp}"] = signature
                found[f"signature @{timestamp} (prefix)"] = signature[:16]
    return found


def revoke_when(sb: Sandbox, data_requests: int, stop: threading.Event) -> None:
    while not stop.is_set():
        if sum(r.path.startswith("/v1/analytics") for r in sb.requests) >= data_requests:
            sb.revoke_tokens()
            return
        time.sleep(0.002)


def run_scenario(scenario: Scenario, workdir: Path) -> Outcome:
    api_key = f"key-{secrets.token_hex(4)}"
    api_secret = f"secret-{secrets.token_hex(12)}"
    sb = Sandbox(
        seed=3,
        users=6,
        locations=1,
        past_days=10,
        future_days=3,
        today=TODAY,
        api_key=api_key,
        api_secret=api_secret,
        **scenario.sandbox,
    ).start()
    stop = threading.Event()
    revoker = None
    try:
        # The data faults first: a scenario's own fault on the same path (basic-all's 404
        # on groups) then fires on the retry, so neither is left unfired.
        faults = data_faults(with_401=scenario.method != "basic") if scenario.data_faults else []
        faults += scenario.faults
        for kind, path, count, params in faults:
            sb.add_fault(kind, path=path, count=count, **params)
        used_secret = f"wrong-{secrets.token_hex(12)}" if scenario.wrong_secret else api_secret
        config = {
            "api_url": sb.url,
            "api_key": api_key,
            "api_secret": used_secret,
            "auth_method": scenario.method,
            "start_date": sb.date_range("bookings_attendance")[0].isoformat(),
            "end_date": sb.today.isoformat(),  # the tap subprocess reads the real clock
            "max_retries": 3,
            "request_timeout": 0.5,
            **scenario.config,
        }
        config_path = workdir / f"{scenario.name}.json"
        config_path.write_text(json.dumps(config))
        if scenario.revoke_after is not None:
            revoker = threading.Thread(target=revoke_when, args=(sb, scenario.revoke_after, stop))
            revoker.start()
        done = subprocess.run(
            [TAP, "--config", str(config_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TAP_CALVEN_LOGLEVEL": "DEBUG"},
            check=False,
        )
    finally:
        stop.set()
        if revoker is not None:
            revoker.join()
        sb.stop()
    return Outcome(
        done.returncode,
        done.stdout,
        done.stderr,
        credentials_of(sb, api_key, used_secret),
        len(sb.issued_tokens),
        sb.faults_armed,
    )


def redacted(outcome: Outcome) -> str:
    """stderr with every credential replaced by its label, fit for a failure message."""
    text = outcome.stderr
    for label, value in sorted(outcome.credentials.items(), key=lambda kv: -len(kv[1])):
        text = text.replace(value, f"<{label}>")
    return text


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    workdir = tmp_path_factory.mktemp("secrets")
    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = {s.name: pool.submit(run_scenario, s, workdir) for s in SCENARIOS}
        yield {name: future.result() for name, future in futures.items()}


def test_the_scenarios_cover_every_auth_method_and_every_fault_kind() -> None:
    """A fault kind added to the sandbox must get a scenario here too."""
    on_data = {kind for kind, *_ in data_faults(with_401=True)}
    armed = {kind for s in SCENARIOS for kind, *_ in s.faults} | on_data
    assert armed == set(FAULT_KINDS)
    at_token_endpoints = {
        kind for s in SCENARIOS for kind, path, *_ in s.faults if path in TOKEN_PATHS.values()
    }
    assert at_token_endpoints >= on_data - {"401"}
    assert {s.method for s in SCENARIOS} == set(TOKEN_PATHS)
    assert all(any(s.data_faults and s.method == m for s in SCENARIOS) for m in TOKEN_PATHS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_no_credential_in_the_output_at_debug(
    outcomes: dict[str, Outcome], scenario: Scenario
) -> None:
    outcome = outcomes[scenario.name]
    errors = [line for line in redacted(outcome).splitlines() if "| ERROR" in line]
    if scenario.fails_with is None:
        assert outcome.returncode == 0, errors
        assert outcome.faults_armed == 0  # every fault the scenario armed did fire
    else:
        assert outcome.returncode == 1
        assert len(errors) == 1, errors
        assert scenario.fails_with in errors[0]
    # DEBUG was on, urllib3 included: the scan below covers its request lines.
    assert "| DEBUG" in outcome.stderr
    assert "urllib3.connectionpool" in outcome.stderr
    if scenario.method != "basic" and not (scenario.wrong_secret or scenario.login_fails):
        assert outcome.tokens_issued >= 1  # there were tokens to leak
    leaks = sorted(
        label
        for label, value in outcome.credentials.items()
        if value in outcome.stdout or value in outcome.stderr
    )
    assert leaks == []  # labels only: a failure must not print the secret it found
