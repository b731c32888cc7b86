"""A local emulator of Calven's Warehouse API, so the tap runs and is tested without an account.

``Sandbox`` serves a deterministic synthetic tenant over HTTP with Calven's auth schemes and
can inject faults; ``tap-calven-sandbox`` (``tap_calven.sandbox.cli``) runs it standalone.
"""

from __future__ import annotations

from tap_calven.sandbox.faults import FAULT_KINDS, Fault, parse_fault_spec
from tap_calven.sandbox.server import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    RequestRecord,
    Sandbox,
    hmac_signature,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "FAULT_KINDS",
    "Fault",
    "RequestRecord",
    "Sandbox",
    "hmac_signature",
    "parse_fault_spec",
]
