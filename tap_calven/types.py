"""Types every module of the record path shares, defined once."""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]
"""One record as Calven sends it: a flat JSON object."""
