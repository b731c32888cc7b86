"""Calven's three auth schemes as the sandbox checks them (docs/contract.md §5)."""

from __future__ import annotations

import base64
import time

import pytest
import requests

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox, hmac_signature

from .conftest import Client, hmac_token

USERS_PATH = "/v1/analytics/users"


def test_signature_matches_fixed_vector() -> None:
    assert (
        hmac_signature("test-api-key-id", "test-api-secret", 1700000000)
        == "03e3c5ba531990cb5020267bddaf35566e117753a49c856a65059cf356fd00ae"
    )


def test_default_credentials_are_documented_strings() -> None:
    assert (DEFAULT_API_KEY, DEFAULT_API_SECRET) == ("sandbox-key", "sandbox-secret")


def _login(
    sb: Sandbox, ts: int, *, key: str | None = None, secret: str | None = None
) -> requests.Response:
    key = key or sb.api_key
    sig = hmac_signature(key, secret or sb.api_secret, ts)
    return requests.post(
        f"{sb.url}/v1/auth", json={"apiKey": key, "timestamp": ts, "hash": sig}, timeout=10
    )


def test_hmac_login_issues_a_working_token(sb: Sandbox) -> None:
    before = time.time()
    r = _login(sb, int(before))
    assert r.status_code == 200
    body = r.json()
    assert body["authenticated"] is True
    assert body["message"] == "Authentication successful"
    assert isinstance(body["expiration"], int)
    # absolute epoch seconds, not a duration
    assert before + 600 - 2 <= body["expiration"] <= time.time() + 600
    got = requests.get(
        f"{sb.url}{USERS_PATH}", headers={"Authorization": f"Bearer {body['token']}"}, timeout=10
    )
    assert got.status_code == 200
    assert len(got.json()) == 40


def test_hmac_login_with_fixed_vector_credentials() -> None:
    with Sandbox(
        users=2, past_days=0, future_days=0, api_key="test-api-key-id", api_secret="test-api-secret"
    ) as sb:
        ts = int(time.time())
        ok = _login(sb, ts)
        assert ok.status_code == 200
        # the fixed vector's hash is only valid for its own (long stale) timestamp
        stale = requests.post(
            f"{sb.url}/v1/auth",
            json={
                "apiKey": "test-api-key-id",
                "timestamp": 1700000000,
                "hash": "03e3c5ba531990cb5020267bddaf35566e117753a49c856a65059cf356fd00ae",
            },
            timeout=10,
        )
        assert stale.status_code == 401
        assert "5 minutes" in stale.json()["message"]


@pytest.mark.parametrize("offset", [-301, 301, -400, 10_000])
def test_stale_timestamp_rejected(sb: Sandbox, offset: int) -> None:
    r = _login(sb, int(time.time()) + offset)
    assert r.status_code == 401
    assert r.json()["statusCode"] == 401


@pytest.mark.parametrize("offset", [-250, 250])
def test_timestamp_within_five_minutes_accepted(sb: Sandbox, offset: int) -> None:
    assert _login(sb, int(time.time()) + offset).status_code == 200


def test_wrong_secret_and_wrong_key_rejected(sb: Sandbox) -> None:
    ts = int(time.time())
    wrong_secret = _login(sb, ts, secret="not-the-secret")
    assert wrong_secret.status_code == 401
    assert "token" not in wrong_secret.json()
    assert _login(sb, ts, key="someone-else").status_code == 401
    tampered = requests.post(
        f"{sb.url}/v1/auth",
        json={
            "apiKey": sb.api_key,
            "timestamp": ts,
            "hash": hmac_signature(sb.api_key, sb.api_secret, ts + 1),
        },
        timeout=10,
    )
    assert tampered.status_code == 401


def test_token_endpoints_need_a_json_body(sb: Sandbox) -> None:
    ts = int(time.time())
    sig = hmac_signature(sb.api_key, sb.api_secret, ts)
    as_form = requests.post(
        f"{sb.url}/v1/auth", data={"apiKey": sb.api_key, "timestamp": ts, "hash": sig}, timeout=10
    )
    assert as_form.status_code == 400
    assert "Content-Type" in as_form.json()["message"]
    broken = requests.post(
        f"{sb.url}/v1/auth",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert broken.status_code == 400
    missing = requests.post(f"{sb.url}/v1/auth", json={"apiKey": sb.api_key}, timeout=10)
    assert missing.status_code == 400
    string_ts = requests.post(
        f"{sb.url}/v1/auth",
        json={"apiKey": sb.api_key, "timestamp": str(ts), "hash": sig},
        timeout=10,
    )
    assert string_ts.status_code == 400
    form_token = requests.post(
        f"{sb.url}/v1/auth/token",
        data={"client_id": sb.api_key, "client_secret": sb.api_secret},
        timeout=10,
    )
    assert form_token.status_code == 400
    assert requests.get(f"{sb.url}/v1/auth", timeout=10).status_code == 405


def test_client_secret_token(sb: Sandbox) -> None:
    r = requests.post(
        f"{sb.url}/v1/auth/token",
        json={"client_id": sb.api_key, "client_secret": sb.api_secret},
        timeout=10,
    )
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    got = requests.get(
        f"{sb.url}{USERS_PATH}",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=10,
    )
    assert got.status_code == 200
    bad = requests.post(
        f"{sb.url}/v1/auth/token",
        json={"client_id": sb.api_key, "client_secret": "nope"},
        timeout=10,
    )
    assert bad.status_code == 401
    assert "access_token" not in bad.json()


def test_basic_auth(sb: Sandbox) -> None:
    url = f"{sb.url}{USERS_PATH}/basic"
    assert requests.get(url, auth=(sb.api_key, sb.api_secret), timeout=10).status_code == 200
    # RFC 7617 by hand, the documented own example shape
    raw = base64.b64encode(f"{sb.api_key}:{sb.api_secret}".encode()).decode()
    assert (
        requests.get(url, headers={"Authorization": f"Basic {raw}"}, timeout=10).status_code == 200
    )
    for auth in [(sb.api_key, "wrong"), ("wrong", sb.api_secret), ("", "")]:
        r = requests.get(url, auth=auth, timeout=10)
        assert r.status_code == 401
        assert r.json()["message"]
    # un-encoded pair (the docs' illustration) is not valid RFC 7617
    plain = requests.get(
        url, headers={"Authorization": f"Basic {sb.api_key}:{sb.api_secret}"}, timeout=10
    )
    assert plain.status_code == 401


def test_schemes_do_not_cross_families(sb: Sandbox) -> None:
    token = hmac_token(sb)
    bearer_on_basic = requests.get(
        f"{sb.url}{USERS_PATH}/basic", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert bearer_on_basic.status_code == 401
    basic_on_token = requests.get(
        f"{sb.url}{USERS_PATH}", auth=(sb.api_key, sb.api_secret), timeout=10
    )
    assert basic_on_token.status_code == 401


def test_missing_or_unknown_token_gets_401_json(sb: Sandbox) -> None:
    for headers in [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Bearer"}]:
        r = requests.get(f"{sb.url}{USERS_PATH}", headers=headers, timeout=10)
        assert r.status_code == 401
        assert r.headers["Content-Type"] == "application/json"
        assert r.json()["statusCode"] == 401
        assert isinstance(r.json()["message"], str)


def test_token_expires(sb: Sandbox) -> None:
    sb.token_lifetime = 1
    client = Client(sb)
    assert client.get(USERS_PATH).status_code == 200
    time.sleep(1.2)
    r = client.get(USERS_PATH)
    assert r.status_code == 401
    assert "expired" in r.json()["message"].lower()
    sb.token_lifetime = 600
    client.token = hmac_token(sb)
    assert client.get(USERS_PATH).status_code == 200


def test_client_secret_token_reports_short_lifetime(sb: Sandbox) -> None:
    sb.token_lifetime = 1
    r = requests.post(
        f"{sb.url}/v1/auth/token",
        json={"client_id": sb.api_key, "client_secret": sb.api_secret},
        timeout=10,
    )
    assert r.json()["expires_in"] == 1


def test_revoked_tokens_are_rejected(sb: Sandbox) -> None:
    a, b = Client(sb), Client(sb)
    assert a.get(USERS_PATH).status_code == 200
    sb.revoke_tokens()
    assert a.get(USERS_PATH).status_code == 401
    assert b.get(USERS_PATH).status_code == 401
    fresh = Client(sb)
    assert fresh.get(USERS_PATH).status_code == 200
    # Basic credentials are not tokens: unaffected
    assert a.get(USERS_PATH, basic=True).status_code == 200
