"""tap-calven: a Singer tap for Calven's Warehouse API, built on the Meltano Singer SDK."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tap-calven")
except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
    __version__ = "0.0.0"
