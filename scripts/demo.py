"""`make demo`: sandbox -> `meltano run tap-calven target-duckdb dbt-duckdb:build` -> report.

Needs only what `make demo` sets up first: the tap's venv (.venv, which has DuckDB and
matplotlib) and Meltano's (.venv-meltano). The script installs the three Meltano plugins
it uses, serves a synthetic Calven tenant on a free loopback port, loads it into
output/warehouse.duckdb and builds the dbt project (transform/) there, prints rows per
table and attendance by day, stops the sandbox and renders output/report.html.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import duckdb

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox
from tap_calven.streams import STREAM_TYPES

REPO = Path(__file__).resolve().parents[1]
MELTANO = REPO / ".venv-meltano" / "bin" / "meltano"
DATABASE = REPO / "output" / "warehouse.duckdb"
REPORT = REPO / "output" / "report.html"
SCHEMA = "calven"
STREAMS = tuple(cls.name for cls in STREAM_TYPES)
# Meltano's console lines: "<time> [<level>] <plugin> <message>".
LOG_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<plugin>\S+)\s+(?P<message>.*)$")
STARTED = time.monotonic()


def say(text: str) -> None:
    """Print one progress line with the time since the start."""
    print(f"[{time.monotonic() - STARTED:5.1f}s] {text}", flush=True)


def interesting(line: str) -> str | None:
    """The part of a Meltano output line worth showing, or None to hide it."""
    match = LOG_LINE.match(line.strip())
    if match is None:
        return None
    level, plugin, message = match["level"], match["plugin"], match["message"]
    if level in ("warning", "error", "critical") and "DeprecationWarning" not in message:
        return f"{plugin}: {level}: {message}"
    if plugin == "tap-calven" and ("records in" in message or "request(s)" in message):
        return f"tap-calven    {message}"
    if plugin == "target-duckdb" and message.startswith("Loading"):
        return f"target-duckdb {message}"
    if plugin == "dbt-duckdb" and (
        "Done. PASS=" in message or (" of " in message and "OK " in message)
    ):
        return f"dbt-duckdb    {message}"
    return None


def meltano(args: list[str], env: dict[str, str], *, show: bool) -> None:
    """Run Meltano in the project; stream the interesting lines; exit on failure."""
    lines: list[str] = []
    with subprocess.Popen(
        [str(MELTANO), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            shown = interesting(line) if show else None
            if shown:
                print(f"         {shown}", flush=True)
    if proc.returncode != 0:
        print("\n".join(lines[-40:]), file=sys.stderr)
        raise SystemExit(f"demo: `meltano {' '.join(args)}` failed (exit {proc.returncode})")


def print_table(headers: list[str], rows: Sequence[tuple[object, ...]]) -> None:
    """A plain aligned table."""
    cells = [headers, *[[("" if v is None else str(v)) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        line = [
            c.ljust(w) if n == 0 or i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print(("  " + "  ".join(line)).rstrip())
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def summarise(today: dt.date) -> None:
    """Rows per table and attendance by day, read back from the DuckDB file."""
    with duckdb.connect(str(DATABASE), read_only=True) as conn:
        print(f"\nRows per table in {DATABASE.relative_to(REPO)} (schema {SCHEMA}):")
        counts = []
        for stream in STREAMS:
            # Identifiers from this file's constants, not from input.
            got = conn.execute(f'SELECT count(*) FROM {SCHEMA}."{stream}"').fetchone()  # noqa: S608
            counts.append((stream, got[0] if got else 0))
        print_table(["table", "rows"], counts)

        days = conn.execute(
            """
            SELECT CAST(day AS DATE) AS day,
                   count(*) FILTER (WHERE plan = 'o') AS office_plans,
                   count(*) FILTER (WHERE bookingplaceid IS NOT NULL) AS desk_bookings,
                   count(*) FILTER (WHERE attendancetype = 'confirmed') AS confirmed,
                   count(*) FILTER (WHERE attendancetype = 'unconfirmed') AS unconfirmed,
                   count(*) FILTER (WHERE attendancetype = 'noShow') AS no_shows,
                   count(*) FILTER (WHERE attendancetype = 'walkIn') AS walk_ins
            FROM calven.bookings_attendance
            WHERE CAST(day AS DATE) BETWEEN ? AND ?
            GROUP BY 1 ORDER BY 1
            """,
            [today - dt.timedelta(days=13), today + dt.timedelta(days=7)],
        ).fetchall()
    print("\nAttendance by day (last two weeks, then the week ahead: plans and bookings only):")
    rows: list[tuple[object, ...]] = []
    for day, plans, desks, confirmed, unconfirmed, no_shows, walk_ins in days:
        label = f"{day:%a %Y-%m-%d}" + (" today" if day == today else "")
        if day < today:
            rate = f"{no_shows / plans:.0%}" if plans else ""
            attended = confirmed + walk_ins
            outcome: tuple[object, ...] = (confirmed, no_shows, rate, walk_ins, attended)
        else:  # attendance is not known yet: plans and bookings only
            outcome = ("", "", "", "", "")
        rows.append((label, plans, desks, unconfirmed, *outcome))
    print_table(
        [
            "day",
            "office plans",
            "desk bookings",
            "unconfirmed",
            "confirmed",
            "no-shows",
            "no-show %",
            "walk-ins",
            "in the office",
        ],
        rows,
    )


def main() -> None:
    """Run the demo end to end."""
    if not MELTANO.exists():
        raise SystemExit("demo: Meltano is not installed; run `make demo` (or `make meltano`)")
    env = {
        **os.environ,
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONUNBUFFERED": "1",
    }
    say("Installing tap-calven, target-duckdb and dbt-duckdb (cached after the first run)")
    meltano(["install", "tap-calven", "target-duckdb", "dbt-duckdb"], env, show=False)

    say("Starting the sandbox (a synthetic Calven tenant on a free local port)")
    sandbox = Sandbox(seed=1, users=120, locations=3, past_days=60, future_days=21).start()
    try:
        start, _ = sandbox.date_range("bookings_attendance")
        say(f"Sandbox listening on {sandbox.url}: 120 users, 3 offices, today is {sandbox.today}")
        DATABASE.parent.mkdir(exist_ok=True)
        for stale in (DATABASE, DATABASE.with_name(DATABASE.name + ".wal")):
            stale.unlink(missing_ok=True)
        run_env = {
            **env,
            "TAP_CALVEN_API_URL": sandbox.url,
            "TAP_CALVEN_API_KEY": DEFAULT_API_KEY,
            "TAP_CALVEN_API_SECRET": DEFAULT_API_SECRET,
            "TAP_CALVEN_START_DATE": start.isoformat(),
            "TARGET_DUCKDB_FILEPATH": str(DATABASE),
            "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": SCHEMA,
            "DBT_DUCKDB_PATH": str(DATABASE),
        }
        task = ["tap-calven", "target-duckdb", "dbt-duckdb:build"]
        say(f"meltano --environment sandbox run --full-refresh {' '.join(task)} (from {start})")
        meltano(["--environment", "sandbox", "run", "--full-refresh", *task], run_env, show=True)
        say(f"Loaded {DATABASE.relative_to(REPO)}; {len(sandbox.requests)} API requests served")
        summarise(sandbox.today)
    finally:
        sandbox.stop()
    print()
    say("Sandbox stopped. Rendering the report from the dbt marts")
    report = REPO / "transform" / "report" / "report.py"
    args = ["--database", str(DATABASE), "--out", str(REPORT)]
    subprocess.run([sys.executable, str(report), *args], check=True, cwd=REPO)
    say(f"Done. The report is {REPORT.relative_to(REPO)} (open it in a browser; it works offline).")
    print(
        f'Explore it: {os.path.relpath(sys.executable, REPO)} -c "import duckdb; '
        f"duckdb.connect('{DATABASE.relative_to(REPO)}').sql('FROM calven.users').show()\""
    )


if __name__ == "__main__":
    main()
