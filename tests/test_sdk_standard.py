"""The Singer SDK's own standard tap, stream and attribute tests, for all seven streams.

The SDK builds its test class from a config at import time, so this module starts its
own sandbox then (on a free port) and stops it when the module's tests are done.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from singer_sdk.testing import get_tap_test_class

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox
from tap_calven.tap import TapCalven
from tests.conftest import TODAY

_SANDBOX = Sandbox(seed=3, users=15, locations=2, past_days=20, future_days=7, today=TODAY).start()

TestTapCalven = get_tap_test_class(
    TapCalven,
    config={
        "api_url": _SANDBOX.url,
        "api_key": DEFAULT_API_KEY,
        "api_secret": DEFAULT_API_SECRET,
        "start_date": (_SANDBOX.today - dt.timedelta(days=20)).isoformat(),
        "window_days": 10,
    },
)


@pytest.fixture(scope="module", autouse=True)
def _stop_sandbox() -> Iterator[None]:
    yield
    _SANDBOX.stop()
