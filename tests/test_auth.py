"""Unit tests of auth.py: the signature, Basic credentials, token refresh and invalidation."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tap_calven.auth import CalvenAuth, basic_header, sign
from tap_calven.errors import ResponseError


def test_hmac_signature_matches_the_documented_recipe() -> None:
    # Test vector from Calven's auth documentation (computed independently of this code).
    assert (
        sign("test-api-key-id", "test-api-secret", 1700000000)
        == "03e3c5ba531990cb5020267bddaf35566e117753a49c856a65059cf356fd00ae"
    )


def test_basic_header_is_rfc_7617() -> None:
    assert (
        basic_header("test-api-key-id", "test-api-secret")
        == "Basic dGVzdC1hcGkta2V5LWlkOnRlc3QtYXBpLXNlY3JldA=="
    )


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class TokenServer:
    """Stands in for the transport's post_json: records calls, hands out numbered tokens."""

    def __init__(self, clock: FakeClock, lifetime: float, *, relative: bool) -> None:
        self.clock, self.lifetime, self.relative = clock, lifetime, relative
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append((path, body))
            n = len(self.calls)
        time.sleep(0.01)  # a slow token endpoint widens any race
        if self.relative:
            return {"access_token": f"t{n}", "expires_in": self.lifetime, "token_type": "Bearer"}
        return {"token": f"t{n}", "expiration": self.clock.now + self.lifetime}


def make(method: str, lifetime: float = 400.0) -> tuple[CalvenAuth, TokenServer, FakeClock]:
    clock = FakeClock(1_700_000_000.0)
    server = TokenServer(clock, lifetime, relative=method == "client_secret")
    auth = CalvenAuth(
        method=method, api_key="key", api_secret="secret", post_json=server, clock=clock
    )
    return auth, server, clock


def test_hmac_token_request_is_signed_and_carries_no_secret() -> None:
    auth, server, _clock = make("hmac")
    assert auth.authorization() == "Bearer t1"
    path, body = server.calls[0]
    assert path == "/v1/auth"
    assert body == {
        "apiKey": "key",
        "timestamp": 1700000000,
        "hash": sign("key", "secret", 1700000000),
    }
    assert "secret" not in str(body.values()).replace(body["hash"], "")


def test_client_secret_token_request_is_a_json_body() -> None:
    auth, server, _ = make("client_secret")
    assert auth.authorization() == "Bearer t1"
    assert server.calls == [("/v1/auth/token", {"client_id": "key", "client_secret": "secret"})]


def test_basic_needs_no_token() -> None:
    auth, server, _ = make("basic")
    assert auth.authorization() == basic_header("key", "secret")
    assert server.calls == []
    assert not auth.uses_tokens


@pytest.mark.parametrize("method", ["hmac", "client_secret"])
@pytest.mark.parametrize(("lifetime", "margin"), [(400.0, 60.0), (3600.0, 60.0), (30.0, 15.0)])
def test_token_is_reused_then_refreshed_ahead_of_expiry(
    method: str, lifetime: float, margin: float
) -> None:
    auth, server, clock = make(method, lifetime)
    start = clock.now
    assert auth.authorization() == "Bearer t1"
    clock.now = start + lifetime - margin - 0.5
    assert auth.authorization() == "Bearer t1"
    assert len(server.calls) == 1
    clock.now = start + lifetime - margin
    assert auth.authorization() == "Bearer t2"
    assert len(server.calls) == 2


def test_concurrent_requests_share_one_token_fetch() -> None:
    auth, server, _ = make("hmac")
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(auth.authorization())) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(results) == {"Bearer t1"}
    assert len(server.calls) == 1


def test_many_401s_with_the_same_token_cause_one_new_token() -> None:
    auth, server, _ = make("client_secret")
    rejected = auth.authorization()
    for _ in range(5):  # five requests meet a 401 with the same token
        auth.invalidate(rejected)
        assert auth.authorization() == "Bearer t2"
    assert len(server.calls) == 2


def test_a_token_response_without_a_token_is_a_clear_error() -> None:
    auth = CalvenAuth(
        method="hmac", api_key="k", api_secret="s", post_json=lambda p, b: {"authenticated": False}
    )
    with pytest.raises(ResponseError, match="lacks a token"):
        auth.authorization()


def test_a_clock_running_ahead_of_calvens_does_not_log_in_before_every_request() -> None:
    """`expiration` already past on our clock: use the token, and let a 401 refresh it."""
    clock = FakeClock(1_700_000_000.0)
    calls = []

    def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
        calls.append(path)
        return {"token": f"t{len(calls)}", "expiration": clock.now - 120}  # 2 min "ago"

    auth = CalvenAuth(method="hmac", api_key="k", api_secret="s", post_json=post, clock=clock)
    assert auth.authorization() == "Bearer t1"
    clock.now += 10
    assert auth.authorization() == "Bearer t1"
    assert len(calls) == 1
    auth.invalidate("Bearer t1")  # what a 401 does
    assert auth.authorization() == "Bearer t2"
