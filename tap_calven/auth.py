"""One authenticator per run, shared by every stream and every concurrent request.

`hmac` and `client_secret` fetch a bearer token and refresh it ahead of expiry; `basic`
sends RFC 7617 credentials. Only one refresh runs at a time: requests that meet a 401
together cause one new token, not one each.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from typing import Any

from tap_calven.errors import CalvenError, ResponseError

# POSTs a JSON body to a token endpoint (with the transport's retries) and returns the JSON.
TokenPoster = Callable[[str, dict[str, Any]], dict[str, Any]]

HMAC_PATH = "/v1/auth"
CLIENT_SECRET_PATH = "/v1/auth/token"  # noqa: S105 - a path, not a secret
# Refresh when less than min(60 s, half the token's lifetime) remains (docs/contract.md §5).
MAX_REFRESH_MARGIN = 60.0
# `/v1/auth`'s `expiration` is absolute, on Calven's clock: a local clock running ahead
# shrinks the lifetime we compute, past zero at worst. Then we use the token for this long
# and let a 401 trigger the refresh, rather than log in again before every request.
SKEWED_LIFETIME = 30.0


def sign(api_key: str, api_secret: str, timestamp: int) -> str:
    """Calven's HMAC: lowercase hex HMAC-SHA256(key=secret, msg=api_key + str(timestamp))."""
    message = f"{api_key}{timestamp}".encode()
    return hmac.new(api_secret.encode(), message, hashlib.sha256).hexdigest()


def basic_header(api_key: str, api_secret: str) -> str:
    """RFC 7617 Basic credentials: the key id is the user name, the secret the password."""
    return "Basic " + base64.b64encode(f"{api_key}:{api_secret}".encode()).decode("ascii")


class CalvenAuth:
    """Gives each request its `Authorization` value, fetching tokens as they are needed."""

    def __init__(
        self,
        *,
        method: str,
        api_key: str,
        api_secret: str,
        post_json: TokenPoster,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.method = method
        self._api_key = api_key
        self._api_secret = api_secret
        self._post_json = post_json
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._failure: CalvenError | None = None
        #: Seconds the last token was valid for when it came (None: no token yet, or Basic).
        self.token_lifetime: float | None = None

    @property
    def uses_tokens(self) -> bool:
        """False for Basic, whose 401 means the credentials themselves were rejected."""
        return self.method != "basic"

    @property
    def token_path(self) -> str:
        """The endpoint this method gets its tokens from."""
        return HMAC_PATH if self.method == "hmac" else CLIENT_SECRET_PATH

    def authorization(self) -> str:
        """The header value for the next request; fetches a token when none is fresh."""
        if not self.uses_tokens:
            return basic_header(self._api_key, self._api_secret)
        with self._lock:
            # A login that failed (rejected, or out of retries) fails the run: the other
            # requests waiting here must not each ask again with the same credentials.
            if self._failure is not None:
                raise self._failure
            if self._token is None or self._clock() >= self._refresh_at:
                try:
                    self._token, self._refresh_at = self._fetch_token()
                except CalvenError as exc:
                    self._failure = exc
                    raise
            return f"Bearer {self._token}"

    def invalidate(self, authorization: str) -> None:
        """Forget the token a request was rejected with, unless another thread already has."""
        with self._lock:
            if self._token is not None and authorization == f"Bearer {self._token}":
                self._token = None

    def _fetch_token(self) -> tuple[str, float]:
        """Ask Calven for a token; return it with the moment it should be refreshed."""
        now = self._clock()
        if self.method == "hmac":
            timestamp = int(now)
            body: dict[str, Any] = {
                "apiKey": self._api_key,
                "timestamp": timestamp,
                "hash": sign(self._api_key, self._api_secret, timestamp),
            }
            answer = self._post_json(HMAC_PATH, body)
            token, expiration = answer.get("token"), answer.get("expiration")
            lifetime = float(expiration) - now if isinstance(expiration, int | float) else None
        else:
            body = {"client_id": self._api_key, "client_secret": self._api_secret}
            answer = self._post_json(CLIENT_SECRET_PATH, body)
            token, expires_in = answer.get("access_token"), answer.get("expires_in")
            lifetime = float(expires_in) if isinstance(expires_in, int | float) else None
        if not isinstance(token, str) or not token or lifetime is None:
            raise ResponseError(
                f"Calven's token response from {self.token_path} lacks a token or its expiry."
            )
        self.token_lifetime = lifetime
        if lifetime <= 0:
            lifetime = SKEWED_LIFETIME
        margin = min(MAX_REFRESH_MARGIN, lifetime / 2)
        return token, now + lifetime - margin
