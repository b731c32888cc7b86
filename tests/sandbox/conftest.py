"""Shared fixtures: one running sandbox per session, reset between tests."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator

import pytest
import requests

from tap_calven.sandbox import Sandbox, hmac_signature

TODAY = dt.date(2025, 3, 12)  # a Wednesday: fixed so every run sees the same tenant
USERS = 40
BOOKINGS = "/v1/analytics/user-booking-attendance"
PRESENCE = "/v1/analytics/presence"
ACTIONS = "/v1/analytics/change-log/user"


def hmac_token(sb: Sandbox, session: requests.Session | None = None) -> str:
    """A bearer token obtained the documented way: a signed POST /v1/auth."""
    ts = int(time.time())
    body = {
        "apiKey": sb.api_key,
        "timestamp": ts,
        "hash": hmac_signature(sb.api_key, sb.api_secret, ts),
    }
    r = (session or requests).post(f"{sb.url}/v1/auth", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


class Client:
    """A tiny Calven client over one keep-alive session (token family by default)."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.s = requests.Session()
        self.token = hmac_token(sb, self.s)

    def get(self, path: str, basic: bool = False, **params: str) -> requests.Response:
        if basic:
            return self.s.get(
                f"{self.sb.url}{path}/basic",
                params=params,
                auth=(self.sb.api_key, self.sb.api_secret),
                timeout=30,
            )
        return self.s.get(
            f"{self.sb.url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
        )


@pytest.fixture(scope="session")
def shared_sandbox() -> Iterator[Sandbox]:
    with Sandbox(seed=7, users=USERS, locations=3, past_days=60, future_days=21, today=TODAY) as sb:
        yield sb


@pytest.fixture
def sb(shared_sandbox: Sandbox) -> Iterator[Sandbox]:
    """The shared sandbox, with faults, latency, token lifetime and log reset around each test."""
    shared_sandbox.clear_faults()
    shared_sandbox.clear_requests()
    yield shared_sandbox
    shared_sandbox.clear_faults()
    shared_sandbox.latency_ms = 0
    shared_sandbox.token_lifetime = 600


@pytest.fixture
def client(sb: Sandbox) -> Client:
    return Client(sb)
