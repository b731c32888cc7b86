"""Split equals unsplit: a Dagster backfill of month x location partitions, run in parallel.

After `calven_tables` has created the tables, six partitions (2 locations x 3 months) and
`calven_core` start at the same instant as seven Dagster runs (`dagster asset materialize`,
one run each, on one test DagsterInstance) into one PostgreSQL schema; a sandbox fault
makes one fail, and only that one is re-run. The
warehouse then holds, row for row, what one unsplit `meltano run` of the same range loads
into another schema, and Meltano keeps one state id per partition. The partitions load by
the backfill default (BATCH files, COPY), the unsplit run by RECORD messages.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tap_calven.sandbox import Sandbox
from tests.conftest import TODAY
from tests.e2e.conftest import MELTANO_EXE, Meltano, Postgres, tap_env
from tests.e2e.helpers import BOOKINGS_PATH, KEYS, assert_loaded, key_of, normalise, rows_of

REPO = Path(__file__).resolve().parents[2]
DAGSTER = REPO / ".venv-dagster" / "bin" / "dagster"
DAGSTER_PY = REPO / ".venv-dagster" / "bin" / "python"
# Three whole months before the pinned today (2025-03-12).
MONTHS = ("2024-12-01", "2025-01-01", "2025-02-01")
START, END = dt.date(2024, 12, 1), dt.date(2025, 2, 28)

pytestmark = pytest.mark.e2e


@pytest.fixture
def small_sandbox():
    sb = Sandbox(seed=5, users=8, locations=2, past_days=110, future_days=0, today=TODAY).start()
    try:
        yield sb
    finally:
        sb.stop()


def location_ids(sb: Sandbox) -> list[str]:
    ids = sorted({r["locationId"] for r in sb.records("locations")})
    assert len(ids) == 2, ids
    return ids


def dagster_env(meltano: Meltano, sb: Sandbox, pg: Postgres, home: Path, locs: list[str]):
    env = {**meltano.base_env, **tap_env(sb), **pg.target_env("split")}
    env.update(
        TAP_CALVEN_START_DATE=START.isoformat(),
        TAP_CALVEN_END_DATE=END.isoformat(),
        TAP_CALVEN_MAX_CONCURRENT_REQUESTS="2",
        DAGSTER_HOME=str(home),
        CALVEN_PROJECT_DIR=str(REPO),
        CALVEN_MELTANO_ENVIRONMENT="sandbox",
        CALVEN_MELTANO=str(MELTANO_EXE),
        CALVEN_START_DATE=START.isoformat(),
        CALVEN_END_DATE=END.isoformat(),
        CALVEN_LOCATION_IDS=",".join(locs),
    )
    return env


def materialize(env: dict[str, str], select: str, partition: str | None, log: Path):
    """Start one Dagster run of ``select`` (one partition) without waiting for it."""
    args = [str(DAGSTER), "asset", "materialize", "-m", "calven_dagster.definitions"]
    args += ["--select", select]
    if partition:
        args += ["--partition", partition]
    out = log.open("w")
    return subprocess.Popen(
        args, cwd=REPO / "orchestrate", env=env, stdout=out, stderr=subprocess.STDOUT
    )


def wait_all(procs: dict[str, Any], logs: Path) -> dict[str, int]:
    codes = {k: p.wait(timeout=600) for k, p in procs.items()}
    for k, code in codes.items():
        if code != 0:
            print(f"--- {k} exited {code}:\n", (logs / f"{k}.log").read_text()[-3000:])
    return codes


RUN_TIMES = """
import json
from dagster import DagsterInstance
inst = DagsterInstance.get()
print(json.dumps([
    [r.dagster_run.tags.get("dagster/partition"), r.start_time, r.end_time,
     r.dagster_run.status.value]
    for r in inst.get_run_records()
]))
"""


def run_records(env: dict[str, str]) -> list[list[Any]]:
    """(partition, start, end, status) of every Dagster run on the test instance."""
    out = subprocess.run(
        [str(DAGSTER_PY), "-c", RUN_TIMES], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def read_schema(pg: Postgres, schema: str) -> dict[str, list[dict[str, Any]]]:
    """Every table of ``schema`` without the `_sdc_*` load metadata (times of each load)."""
    with psycopg.connect(pg.dsn()) as conn, conn.cursor() as cur:
        tables = {s: rows_of(cur, f'SELECT * FROM "{schema}"."{s}"') for s in KEYS}
    return {
        s: [{k: v for k, v in row.items() if not k.startswith("_sdc_")} for row in rows]
        for s, rows in tables.items()
    }


def test_backfill_split_equals_unsplit(meltano, postgres, small_sandbox, tmp_path):
    sb = small_sandbox
    locs = location_ids(sb)
    env = dagster_env(meltano, sb, postgres, tmp_path / "dagster", locs)
    (tmp_path / "dagster").mkdir()
    keys = [f"{loc}|{month}" for loc in locs for month in MONTHS]
    assert len(keys) == 6

    assert run_records(env) == []  # creates the instance's storage before the runs share it

    # The tables first (target-postgres creates them check-then-create, which races).
    proc = materialize(env, "calven_tables", None, tmp_path / "tables.log")
    assert wait_all({"tables": proc}, tmp_path) == {"tables": 0}

    # One partition's first bookings request is refused (403 is not retried).
    sb.add_fault("403", path=BOOKINGS_PATH, count=1)
    names = {k: f"p{i}" for i, k in enumerate(keys)}
    procs = {
        names[k]: materialize(env, "calven_windowed", k, tmp_path / f"{names[k]}.log") for k in keys
    }
    procs["core"] = materialize(env, "calven_core", None, tmp_path / "core.log")
    codes = wait_all(procs, tmp_path)
    assert sb.faults_armed == 0, "the fault never fired"
    failed = [k for k in keys if codes[names[k]] != 0]
    assert len(failed) == 1, codes
    assert codes["core"] == 0, codes

    # The backfill default: the tap sent BATCH files (the unsplit run below sends RECORDs).
    for key in keys:
        log = (tmp_path / f"{names[key]}.log").read_text()
        assert "metric_name=batch_count" in log or codes[names[key]] != 0, key

    # At least two partitions ran at the same time (Dagster's own run records).
    records = [r for r in run_records(env) if r[0]]
    assert len(records) == 6, records
    spans = sorted((r[1], r[2]) for r in records)
    overlaps = sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1])
    assert overlaps >= 1, spans

    # Re-run only the failed partition.
    before = {p for p, *_ in run_records(env)}
    proc = materialize(env, "calven_windowed", failed[0], tmp_path / "rerun.log")
    assert wait_all({"rerun": proc}, tmp_path) == {"rerun": 0}
    after = run_records(env)
    assert len(after) == len(records) + 3, after  # tables, core, the one re-run
    assert before <= {p for p, *_ in after}

    # One unsplit run of the same range into another schema.
    unsplit_env = {**tap_env(sb), **postgres.target_env("unsplit")}
    unsplit_env.update(
        TAP_CALVEN_START_DATE=START.isoformat(),
        TAP_CALVEN_END_DATE=END.isoformat(),
        TAP_CALVEN_LOCATION_IDS=json.dumps(locs),
    )
    meltano(
        "--environment",
        "sandbox",
        "run",
        "--state-id-suffix",
        "unsplit-" + tmp_path.name,
        "tap-calven",
        "target-postgres",
        env=unsplit_env,
    )

    split, unsplit = read_schema(postgres, "split"), read_schema(postgres, "unsplit")
    for stream in KEYS:
        expected = {}
        for raw in unsplit[stream]:
            row = normalise(raw)
            expected[key_of(stream, row)] = row
        assert len(expected) == len(unsplit[stream]), f"{stream}: duplicate keys unsplit"
        assert expected, f"{stream}: the unsplit run loaded nothing"
        assert_loaded(stream, split[stream], expected)

    # Each partition has a state id of its own, bookmarked at its month's last day.
    for key in keys:
        loc, month = key.split("|")
        state = meltano.state(f"sandbox:tap-calven-to-target-postgres:{month[:7]}-{loc}")
        marks = state["singer_state"]["bookmarks"]
        last = (dt.date.fromisoformat(month) + dt.timedelta(days=32)).replace(day=1)
        last -= dt.timedelta(days=1)
        assert marks["bookings_attendance"]["replication_key_value"] == last.isoformat(), marks
    assert meltano.state("sandbox:tap-calven-to-target-postgres:core")["singer_state"]
