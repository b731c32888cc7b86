"""B5 of `make bench`: B2's latency-bound backfill as Dagster partitions, P at a time.

The month partitions of `calven_windowed` (orchestrate/) are queued at once as one
`dagster job backfill` on an instance set up as orchestrate/README.md asks (storage in a
throwaway PostgreSQL, the daemon's run queue, pools per run), with the pool's limit at P.
Each run is a real `meltano run tap-calven target-postgres` at `max_concurrent_requests` 1,
so the runs in flight are the only parallelism. The tables are created first
(`calven_tables`), untimed.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from pathlib import Path

import psycopg

from benchmarks.run import (
    B2_DAYS,
    B2_LATENCY_MS,
    B2_USERS,
    MELTANO,
    REPO,
    Row,
    meltano_env,
    meltano_install,
    met,
    say,
    start_sandbox,
)
from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox
from tests.e2e.dagster_queue import CODE, DAGSTER, WINDOWED_JOB, DagsterError, queued_instance
from tests.e2e.pgcluster import ClusterError, Postgres, throwaway_cluster

B5_MONTHS = 8
B5_POOL_LIMITS = (1, 2, 4)
STREAMS = ("bookings_attendance", "presence")


def whole_months(today: dt.date, count: int) -> list[dt.date]:
    """The first days of the `count` whole months before today's month, oldest first."""
    first = today.replace(day=1)
    months = []
    for _ in range(count):
        first = (first - dt.timedelta(days=1)).replace(day=1)
        months.append(first)
    return months[::-1]


def create_tables(env: dict[str, str], log: Path) -> None:
    """Materialize `calven_tables` (one run outside the queue); stop the benchmark if it fails."""
    command = [str(DAGSTER), "asset", "materialize", "-m", "calven_dagster.definitions"]
    with log.open("w") as out:
        done = subprocess.run(
            [*command, "--select", "calven_tables"],
            cwd=CODE,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"bench: B5 calven_tables failed:\n{log.read_text()[-2000:]}")


def rows_in(postgres: Postgres, schema: str) -> int:
    """Rows of the windowed streams in `schema`."""
    total = 0
    with psycopg.connect(postgres.dsn()) as conn:
        for stream in STREAMS:
            found = conn.execute(f'SELECT count(*) FROM "{schema}"."{stream}"').fetchone()
            total += int(found[0]) if found else 0
    return total


def b5_scale_out(workdir: Path, rows: list[Row]) -> None:
    """B5: the month partitions at pool limits 1, 2 and 4; wall time beside the lower bound."""
    label = "Dagster backfill"
    if not (MELTANO.exists() and DAGSTER.exists()):
        rows.append(Row("B5 scale-out", label, figure="n/a (make meltano dagster first)"))
        return
    if not meltano_install(["tap-calven", "target-postgres"]):
        rows.append(Row("B5 scale-out", label, figure="n/a (meltano install failed)"))
        return
    sandbox = start_sandbox(seed=2, users=B2_USERS, days=B2_DAYS)
    try:
        with throwaway_cluster() as postgres:
            run_pool_limits(workdir, sandbox, postgres, rows)
    except ClusterError as exc:
        rows.append(Row("B5 scale-out", label, figure=f"n/a ({exc})"))
    finally:
        sandbox.stop()


def run_pool_limits(workdir: Path, sandbox: Sandbox, postgres: Postgres, rows: list[Row]) -> None:
    """One backfill of the same months per pool limit, each into its own schema."""
    months = whole_months(sandbox.today, B5_MONTHS)
    last = (months[-1] + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    walls: dict[int, float] = {}
    loaded: set[int] = set()
    for limit in B5_POOL_LIMITS:
        schema = f"b5_pool_{limit}"
        env = {
            **meltano_env(),
            **postgres.target_env(schema),
            "TAP_CALVEN_API_URL": sandbox.url,
            "TAP_CALVEN_API_KEY": DEFAULT_API_KEY,
            "TAP_CALVEN_API_SECRET": DEFAULT_API_SECRET,
            "TAP_CALVEN_MAX_CONCURRENT_REQUESTS": "1",
            "CALVEN_PROJECT_DIR": str(REPO),
            "CALVEN_MELTANO_ENVIRONMENT": "sandbox",
            "CALVEN_MELTANO": str(MELTANO),
            "CALVEN_START_DATE": months[0].isoformat(),
            "CALVEN_END_DATE": last.isoformat(),
            "CALVEN_LOCATION_IDS": "all",
        }
        say(f"B5: calven_tables, then {len(months)} month partitions at pool limit {limit}")
        home = workdir / f"dagster-{limit}"
        try:
            with queued_instance(home, postgres, f"dagster_b5_{limit}", limit, env) as dagster:
                create_tables(dagster.env, home / "tables.log")
                sandbox.latency_ms = B2_LATENCY_MS
                sandbox.clear_requests()
                started = time.perf_counter()
                dagster.backfill(WINDOWED_JOB, [f"all|{m}" for m in months])
                statuses = dagster.wait_finished(WINDOWED_JOB, len(months), seconds=1800)
                walls[limit] = time.perf_counter() - started
        except DagsterError as exc:
            raise SystemExit(f"bench: B5 at pool limit {limit}: {exc}") from None
        if statuses != {"SUCCESS": len(months)}:
            raise SystemExit(f"bench: B5 at pool limit {limit}, runs not all succeeded: {statuses}")
        sandbox.latency_ms = 0
        requests_made = len(sandbox.requests)
        count = rows_in(postgres, schema)
        loaded.add(count)
        bound = requests_made * B2_LATENCY_MS / 1000 / limit
        figure = (
            f"{requests_made} requests; lower bound {bound:.1f} s ({walls[limit] / bound:.2f} x)"
        )
        target = ""
        if limit > 1:
            speedup = walls[1] / walls[limit]
            figure += f"; {speedup:.2f} x faster than 1"
            if limit == 4:
                target = f">= 3 x faster: {met(speedup >= 3)}"
        run = (
            f"{len(months)} month partitions of B2's tenant ({B2_LATENCY_MS} ms/request), "
            f"pool limit {limit}"
        )
        rows.append(Row("B5 scale-out", run, walls[limit], count, None, figure, target))
    if len(loaded) != 1:
        raise SystemExit(f"bench: B5 backfills loaded different row counts: {sorted(loaded)}")
