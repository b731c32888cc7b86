"""The `calven` pool caps how many Meltano runs read Calven at once, across Dagster runs.

Three month partitions are backfilled (`dagster job backfill`) on a test instance set up as
the README asks: PostgreSQL storage (dagster-postgres), the daemon's run queue, and pools
counted per run. The daemon dequeues runs one tick at a time, so the limit holds even when
every run is ready at the same instant. (Pools counted per op, Dagster's default, did not:
three steps claiming in the same instant on PostgreSQL all got a slot of two, because the
claim is a check then a write, without a transaction. This test saw it in CI.)
`meltano` is a stand-in here that records when it starts and ends: the pool, not Meltano,
is what is tested. Each stand-in holds its slot until one run more than the limit has
started (only an over-admitting pool allows that) or HOLD_SECONDS pass, so a run the pool
lets in early overlaps it for certain, however slowly a loaded machine starts runs. With a
pool limit of 1 no two stand-ins overlap; with 2, two do (so the first result is the pool's
doing, not chance).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from tests.e2e.dagster_queue import REPO, WINDOWED_JOB, queued_instance
from tests.e2e.pgcluster import Postgres

PARTITIONS = ["all|2025-01-01", "all|2025-02-01", "all|2025-03-01"]
HOLD_SECONDS = 20  # longer than the daemon takes to start a run admitted with another

pytestmark = pytest.mark.e2e

STAND_IN = """\
#!{python}
import os, sys, time
log = os.environ["STAND_IN_LOG"]
with open(log, "a") as out:
    out.write(f"start {{time.time()}} {{os.environ['TAP_CALVEN_START_DATE']}}\\n")
deadline = time.monotonic() + float(os.environ["STAND_IN_HOLD_SECONDS"])
over_limit = int(os.environ["STAND_IN_LIMIT"]) + 1
while time.monotonic() < deadline:
    with open(log) as seen:
        if seen.read().count("start ") >= over_limit:
            break
    time.sleep(0.2)
with open(log, "a") as out:
    out.write(f"end {{time.time()}} {{os.environ['TAP_CALVEN_START_DATE']}}\\n")
"""


def spans(log: Path) -> list[tuple[float, float]]:
    """(start, end) of each stand-in run, by partition."""
    times: dict[str, dict[str, float]] = {}
    for line in log.read_text().splitlines():
        event, at, key = line.split()
        times.setdefault(key, {})[event] = float(at)
    return sorted((t["start"], t["end"]) for t in times.values())


def most_at_once(runs: list[tuple[float, float]]) -> int:
    """The largest number of runs in progress at one instant."""
    return max(sum(1 for s, e in runs if s <= start < e) for start, _ in runs)


@pytest.mark.parametrize("limit", [1, 2])
def test_the_pool_limit_holds_across_parallel_partitions(
    postgres: Postgres, tmp_path: Path, limit: int
) -> None:
    log = tmp_path / "runs.log"
    stand_in = tmp_path / "meltano"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CALVEN_PROJECT_DIR": str(REPO),
        "CALVEN_MELTANO": str(stand_in),
        "CALVEN_START_DATE": "2025-01-01",
        "CALVEN_END_DATE": "2025-03-31",
        "STAND_IN_LOG": str(log),
        "STAND_IN_HOLD_SECONDS": str(HOLD_SECONDS),
        "STAND_IN_LIMIT": str(limit),
    }
    database = f"dagster_pool_{limit}_{tmp_path.name[-1]}"
    with queued_instance(tmp_path / "dagster", postgres, database, limit, env) as dagster:
        dagster.backfill(WINDOWED_JOB, PARTITIONS)
        statuses = dagster.wait_finished(WINDOWED_JOB, len(PARTITIONS), seconds=240)
    assert statuses == {"SUCCESS": len(PARTITIONS)}, statuses
    runs = spans(log)
    assert len(runs) == len(PARTITIONS), runs
    assert most_at_once(runs) == limit, runs
    if limit == 1:
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(runs)), runs
