"""What `tap-calven doctor` found, and how it is printed: a table per stream, or JSON.

Everything here is names, JSON type names, date/time shapes, counts, HTTP statuses and
day ranges; never a record value, an id, a token or a secret. Error texts from the API
are left out of the JSON (they may quote a value); the table shows them to the user only.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tap_calven.drift import StreamDrift

OK, DRIFT, ABSENT, UNREADABLE = "ok", "drift", "absent", "unreadable"


@dataclass
class StreamReport:
    """One stream's sample: where it was read, what came back, how it differs."""

    name: str
    path: str
    windowed: bool
    drift: StreamDrift
    may_be_absent: bool = False
    status: int | None = None
    records: int = 0
    truncated: bool = False
    refused_windows: list[int] = field(default_factory=list)
    largest_window: int | None = None
    sample: tuple[dt.date, dt.date] | None = None
    error: str | None = None
    error_kind: str | None = None

    @property
    def verdict(self) -> str:
        """ok, drift (readable, differs), absent (an assumed path answered 404) or unreadable."""
        if self.error is not None:
            if self.status == 404 and self.may_be_absent:
                return ABSENT
            return UNREADABLE
        return DRIFT if self.drift.has_drift or self.refused_windows else OK

    def as_json(self) -> dict[str, Any]:
        """The machine-readable form: names, types, shapes and counts only."""
        d = self.drift
        return {
            "stream": self.name,
            "path": self.path,
            "windowed": self.windowed,
            "http_status": self.status,
            "records_sampled": self.records,
            "sample_truncated": self.truncated,
            "sample_days": [day.isoformat() for day in self.sample] if self.sample else None,
            "largest_window_days": self.largest_window,
            "refused_window_days": self.refused_windows,
            "fields_missing": list(d.unseen_fields) if self.records else [],
            "fields_not_in_schema": {k: list(v) for k, v in d.unknown_fields.items()},
            "type_mismatches": {
                name: {
                    "declared": list(m.declared),
                    "format": m.format,
                    "seen": list(m.seen),
                    "records": m.count,
                }
                for name, m in d.mismatches.items()
            },
            "date_formats": {k: list(v) for k, v in d.formats.items() if v},
            "failure": self.error_kind,
            "verdict": self.verdict,
        }


@dataclass
class Report:
    """The whole diagnosis: the sign-in, then every stream in the tap's order."""

    auth_method: str
    sample_end: dt.date
    token_lifetime: float | None = None
    auth_error: str | None = None
    streams: list[StreamReport] = field(default_factory=list)

    @property
    def exit_status(self) -> int:
        """0 when every stream can be read (drift or an absent assumed path included), else 1."""
        return 1 if any(s.verdict == UNREADABLE for s in self.streams) else 0

    def as_json(self) -> dict[str, Any]:
        """The machine-readable report a user can attach to a bug report."""
        return {
            "auth_method": self.auth_method,
            "token_lifetime_seconds": (
                round(self.token_lifetime) if self.token_lifetime is not None else None
            ),
            "sign_in": "failed" if self.auth_error else "ok",
            "sample_end": self.sample_end.isoformat(),
            "streams": [s.as_json() for s in self.streams],
            "exit_status": self.exit_status,
        }


def _names(values: Any) -> str:
    return ", ".join(values) if values else "-"


def render_table(report: Report) -> str:
    """The report as the user reads it: one block per stream, then a summary line."""
    lifetime = f"{report.token_lifetime:.0f} s" if report.token_lifetime is not None else "-"
    lines = [
        f"auth method: {report.auth_method}   token lifetime seen: {lifetime}   "
        f"sample ends: {report.sample_end}",
    ]
    if report.auth_error:
        lines.append(f"sign-in failed: {report.auth_error}")
    for s in report.streams:
        d = s.drift
        lines.append("")
        lines.append(f"{s.name}: {s.verdict.upper()}")
        lines.append(f"  path               {s.path}")
        lines.append(f"  HTTP status        {s.status if s.status is not None else '-'}")
        sample = f"{s.sample[0]}..{s.sample[1]}" if s.sample else "whole table"
        more = " (sample limit reached)" if s.truncated else ""
        lines.append(f"  records sampled    {s.records} ({sample}){more}")
        if s.windowed:
            refused = f"; refused: {', '.join(f'{n} days' for n in s.refused_windows)}"
            largest = f"{s.largest_window} days" if s.largest_window else "-"
            lines.append(f"  largest window     {largest}{refused if s.refused_windows else ''}")
        lines.append(f"  fields missing     {_names(d.unseen_fields if s.records else ())}")
        unknown = [f"{k} ({'/'.join(v)})" for k, v in d.unknown_fields.items()]
        lines.append(f"  not in schema      {_names(unknown)}")
        mismatched = [
            f"{k}: {'/'.join(m.declared)}{f' ({m.format})' if m.format else ''} -> "
            f"{'/'.join(m.seen)} in {m.count}"
            for k, m in d.mismatches.items()
        ]
        lines.append(f"  type mismatches    {_names(mismatched)}")
        formats = [f"{k}: {' | '.join(v)}" for k, v in d.formats.items() if v]
        lines.append(f"  date formats       {_names(formats)}")
        if s.error:
            lines.append(f"  error              {s.error}")
            if s.verdict == ABSENT:
                lines.append(
                    "  hint               the path is assumed; set stream_paths if "
                    "Calven serves this stream elsewhere"
                )
    counts = {
        v: sum(s.verdict == v for s in report.streams) for v in (OK, DRIFT, ABSENT, UNREADABLE)
    }
    lines.append("")
    lines.append(
        "summary: "
        + ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        + (
            "; every stream can be read"
            if report.exit_status == 0
            else "; some stream cannot be read"
        )
    )
    return "\n".join(lines)


def write_report(report: Report, json_path: str | None) -> None:
    """The table on stdout; with `--json PATH` the JSON there too.

    With `--json -` the JSON goes to stdout and the table to stderr.
    """
    table = render_table(report)
    text = json.dumps(report.as_json(), indent=2) + "\n"
    if json_path == "-":
        sys.stdout.write(text)
        sys.stderr.write(table + "\n")
        return
    sys.stdout.write(table + "\n")
    if json_path:
        Path(json_path).write_text(text, encoding="utf-8")
