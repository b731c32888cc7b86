"""Fault injection for the sandbox: what can go wrong between the tap and Calven.

None of these faults is documented Calven behaviour (Calven documents no rate limiting and no
error bodies); they exist so that the tap's retry, timeout and error paths can be exercised.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FAULT_KINDS", "Fault", "FaultQueue", "parse_fault_spec"]

#: Every fault kind the sandbox knows, with the parameters each accepts.
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "429": ("retry_after",),
    "5xx": ("status",),
    "drop": (),
    "truncate": (),
    "not_array": (),
    "400": (),
    "403": (),
    "404": (),
    "slow": ("seconds",),
    "401": (),
    "missing_key": (),  # a data response whose last record lacks its primary key
}


@dataclass
class Fault:
    """One armed fault: applies to requests whose path starts with ``path``."""

    kind: str
    path: str | None = None
    count: int | None = 1  # None: until cleared
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        unknown = set(self.params) - set(FAULT_KINDS[self.kind])
        if unknown:
            raise ValueError(f"fault {self.kind!r} takes no parameter {', '.join(sorted(unknown))}")
        if self.count is not None and self.count < 1:
            raise ValueError("fault count must be >= 1 (or None for 'until cleared')")


class FaultQueue:
    """Faults in the order they were added; each request consumes the first that matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Arm ``fault`` behind the ones already armed."""
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        """Consume one use of the first fault matching ``path``, if any."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.path is None or path.startswith(fault.path):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            del self._faults[i]
                    return fault
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._faults)


def _value(key: str, raw: str) -> Any:
    if key == "count":
        return None if raw.lower() in ("inf", "none", "forever") else int(raw)
    if key == "status":
        return int(raw)
    if key == "seconds":
        return float(raw)
    if key == "retry_after":
        return int(raw) if raw.isdigit() else raw
    return raw


def parse_fault_spec(spec: str) -> list[Fault]:
    """Parse ``KIND[:key=value[,key=value...]][;KIND...]``, e.g. ``429:count=2,retry_after=1``.

    Keys: ``count`` (an integer, or ``inf`` for until stopped), ``path`` (a path prefix) and the
    kind's own parameters (``retry_after`` for 429, ``status`` for 5xx, ``seconds`` for slow).
    An HTTP-date ``retry_after`` contains commas, so it cannot be given here; use seconds.
    """
    faults: list[Fault] = []
    for item in spec.split(";"):
        item = item.strip()
        if not item:
            continue
        kind, _, rest = item.partition(":")
        kwargs: dict[str, Any] = {}
        for pair in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, raw = pair.partition("=")
            if not eq:
                raise ValueError(f"fault parameter {pair!r} is not key=value")
            try:
                kwargs[key.strip()] = _value(key.strip(), raw.strip())
            except ValueError:
                raise ValueError(f"fault parameter {pair!r} has a malformed value") from None
        count = kwargs.pop("count", 1)
        path = kwargs.pop("path", None)
        faults.append(Fault(kind.strip(), path=path, count=count, params=kwargs))
    return faults
