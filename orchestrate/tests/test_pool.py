"""The `calven` pool caps how many Meltano runs read Calven at once, across Dagster runs.

Three month partitions start as three Dagster runs at the same instant on one test
instance whose storage is PostgreSQL (dagster-postgres), as the README asks for: on the
default SQLite storage, runs that start together can both take the last slot (this test saw
it on a busy machine; Dagster does not support pools on SQLite across processes).
`meltano` is a stand-in here that records when it starts and ends and sleeps in between:
the pool, not Meltano, is what is tested. With a pool limit of 1 no two stand-ins overlap;
with 2, two do (so the first result is the pool's doing, not chance).
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.e2e.pgcluster import Postgres

REPO = Path(__file__).resolve().parents[2]
DAGSTER = REPO / ".venv-dagster" / "bin" / "dagster"
MATERIALIZE = (str(DAGSTER), "asset", "materialize", "-m", "calven_dagster.definitions")
MATERIALIZE += ("--select", "calven_windowed")
PARTITIONS = ("all|2025-01-01", "all|2025-02-01", "all|2025-03-01")

pytestmark = pytest.mark.e2e

STAND_IN = """\
#!{python}
import os, sys, time
log = os.environ["STAND_IN_LOG"]
with open(log, "a") as out:
    out.write(f"start {{time.time()}} {{os.environ['TAP_CALVEN_START_DATE']}}\\n")
time.sleep(float(os.environ["STAND_IN_SECONDS"]))
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
    home, log = tmp_path / "dagster", tmp_path / "runs.log"
    home.mkdir()
    database = f"dagster_pool_{limit}_{tmp_path.name[-1]}"
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    (home / "dagster.yaml").write_text(postgres.dagster_yaml(database))
    stand_in = tmp_path / "meltano"
    stand_in.write_text(STAND_IN.format(python=sys.executable))
    stand_in.chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "DAGSTER_HOME": str(home),
        "CALVEN_PROJECT_DIR": str(REPO),
        "CALVEN_MELTANO": str(stand_in),
        "CALVEN_START_DATE": "2025-01-01",
        "CALVEN_END_DATE": "2025-03-31",
        "STAND_IN_LOG": str(log),
        "STAND_IN_SECONDS": "4",
    }
    limited = subprocess.run(
        [str(DAGSTER), "instance", "concurrency", "set", "calven", str(limit)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert limited.returncode == 0, limited.stdout + limited.stderr
    procs = [
        subprocess.Popen(
            [*MATERIALIZE, "--partition", key],
            cwd=REPO / "orchestrate",
            env=env,
            stdout=(tmp_path / f"{n}.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        for n, key in enumerate(PARTITIONS)
    ]
    codes = [p.wait(timeout=300) for p in procs]
    for n, code in enumerate(codes):
        assert code == 0, (tmp_path / f"{n}.log").read_text()[-3000:]
    runs = spans(log)
    assert len(runs) == len(PARTITIONS), runs
    assert most_at_once(runs) == limit, runs
    if limit == 1:
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(runs)), runs
