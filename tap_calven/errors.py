"""The errors that stop a run. Each carries one line for the user; `main` prints it."""

from __future__ import annotations


class CalvenError(Exception):
    """A failure the user can act on: printed as one line, traceback only at DEBUG."""


class ConfigError(CalvenError):
    """A setting is missing or invalid; raised before any request is sent."""


class AuthError(CalvenError):
    """Calven rejected the credentials."""


class APIError(CalvenError):
    """Calven answered with an error status that retrying will not fix."""

    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class ResponseError(CalvenError):
    """A response body that is not what the Warehouse API documents."""


class GaveUpError(ResponseError):
    """A request still failed after its last retry; `timed_out` when the last try timed out."""

    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class RetryableError(Exception):
    """A transient failure (429, 5xx, dropped or truncated body); never leaves api.py."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, timed_out: bool = False
    ) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.timed_out = timed_out
