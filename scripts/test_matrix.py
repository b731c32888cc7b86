"""The date matrix (`make matrix`): the fast tests on moved clocks, on a busy machine.

Each entry runs `pytest -m "not e2e"` once with its own clock, time zone and random-order
seed, while both cores are busy with an unrelated CPU load. The clock is moved in every
Python process of the run (pytest, the tap and sandbox subprocesses) by
`tests/clock/sitecustomize.py`; before each entry a child process proves that the move took
effect, so a broken mechanism fails the matrix instead of passing on the real clock.
Usage: `python scripts/test_matrix.py [--no-load] [--workers N] [ENTRY ...] [pytest options]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import multiprocessing
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLOCK_DIR = REPO / "tests" / "clock"


@dataclass(frozen=True)
class Entry:
    """One run of the fast tests: the instant its clock starts at, a time zone, a seed."""

    name: str
    instant: str
    tz: str
    seed: int


MATRIX = (
    Entry("new-years-eve", "2026-12-31T23:59:30Z", "Pacific/Kiritimati", 1231),
    Entry("new-year", "2027-01-01T00:00:05Z", "America/Adak", 101),
    Entry("leap-day", "2028-02-29T12:00:00Z", "UTC", 229),
    Entry("eu-dst-switch", "2027-03-28T01:30:00Z", "Europe/Berlin", 328),
)


def burn(stop_at: float) -> None:
    """Keep one core busy until `stop_at` (the unrelated CPU load)."""
    x = 0
    while time.monotonic() < stop_at:
        x = (x * 31 + 7) % 1_000_003


def environment(entry: Entry) -> dict[str, str]:
    """The environment of an entry's processes: the moved clock, the time zone."""
    path = os.pathsep.join(p for p in (str(CLOCK_DIR), os.environ.get("PYTHONPATH")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "TAP_CALVEN_TEST_CLOCK": f"{entry.instant}@{time.time():.3f}",
        "TZ": entry.tz,
    }


def check_the_clock_moved(entry: Entry, env: dict[str, str]) -> None:
    """A child process must see the entry's UTC date and time zone, or the run is void."""
    probe = (
        "import datetime as dt, time; "
        "print(dt.datetime.now(dt.timezone.utc).date(), time.strftime('%z'))"
    )
    seen = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    wanted = dt.datetime.fromisoformat(entry.instant.replace("Z", "+00:00")).date()
    if seen[0] != wanted.isoformat():
        raise SystemExit(f"matrix {entry.name}: the clock did not move (a child saw {seen[0]})")
    if entry.tz != "UTC" and seen[1] == "+0000":
        raise SystemExit(f"matrix {entry.name}: TZ={entry.tz} is unknown here (UTC was used)")
    print(
        f"matrix {entry.name}: clock {entry.instant}, TZ={entry.tz} (UTC{seen[1]}), "
        f"seed {entry.seed}",
        flush=True,
    )


def run_entry(entry: Entry, pytest_args: list[str]) -> int:
    """Run the fast tests for one entry; its exit status."""
    env = environment(entry)
    check_the_clock_moved(entry, env)
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-m",
        "not e2e",
        "-p",
        "randomly",
        f"--randomly-seed={entry.seed}",
        # The clock is moved before pytest starts; its time-machine plugin is not needed.
        "-p",
        "no:time_machine",
        *pytest_args,
    ]
    started = time.monotonic()
    code = subprocess.run(command, env=env, cwd=REPO, check=False).returncode
    print(f"matrix {entry.name}: exit {code} in {time.monotonic() - started:.0f} s", flush=True)
    return code


def main() -> int:
    """Run the chosen entries under the CPU load; 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("entries", nargs="*", help="entry names (default: all)")
    parser.add_argument("--no-load", action="store_true", help="skip the CPU load")
    parser.add_argument("--workers", type=int, default=1, help="pytest-xdist workers")
    args, pytest_args = parser.parse_known_args()
    if args.workers > 1:
        pytest_args = ["-n", str(args.workers), *pytest_args]
    chosen = [e for e in MATRIX if not args.entries or e.name in args.entries]
    if not chosen:
        parser.error(f"no such entry; choose from {', '.join(e.name for e in MATRIX)}")
    load: list[multiprocessing.Process] = []
    if not args.no_load:
        stop_at = time.monotonic() + 3600
        load = [
            multiprocessing.Process(target=burn, args=(stop_at,), daemon=True)
            for _ in range(os.cpu_count() or 2)
        ]
        for process in load:
            process.start()
    try:
        failed = [e.name for e in chosen if run_entry(e, pytest_args) != 0]
    finally:
        for process in load:
            process.terminate()
    if failed:
        print(f"matrix: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"matrix: {len(chosen)} entries passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
