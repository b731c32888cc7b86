"""Calven as Dagster assets: full tables once, windowed streams by month x location.

Configured from the environment (read when the code location loads):

- `CALVEN_PROJECT_DIR`: the Meltano project (default: this repository).
- `CALVEN_MELTANO_ENVIRONMENT`: Meltano environment (default `prod`).
- `CALVEN_MELTANO`: the `meltano` executable (default: `meltano` on PATH).
- `CALVEN_START_DATE` (YYYY-MM-DD): first month partition (default 2024-01-01).
- `CALVEN_END_DATE` (YYYY-MM-DD, optional): last day of the partitions (default: now).
- `CALVEN_LOCATION_IDS`: comma-separated location ids, the static partition dimension.
- `CALVEN_TARGET`: the loader (default `target-postgres`).
- `CALVEN_LOAD`: `batch` (default: BATCH files, and COPY into PostgreSQL) or `record`, for
  the backfill assets; the daily incremental run always sends RECORD messages.
"""

import calendar
import datetime as dt
import json
import os
from pathlib import Path

import dagster as dg
from dagster import AssetExecutionContext, OpExecutionContext

from .meltano import MeltanoResource

REPO = Path(__file__).resolve().parents[2]
POOL = "calven"  # `dagster instance concurrency set calven 2` caps runs reading Calven
# Streams that honour `location_ids` (README "Running at scale"); the rest run once.
WINDOWED_BY_LOCATION = ("bookings_attendance", "presence")
CORE = ("users", "groups", "locations", "desks", "user_actions_log")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


START = _env("CALVEN_START_DATE", "2024-01-01")
END = os.environ.get("CALVEN_END_DATE")
LOCATIONS = [x.strip() for x in _env("CALVEN_LOCATION_IDS", "all").split(",") if x.strip()]
TARGET = _env("CALVEN_TARGET", "target-postgres")
# Backfill runs load by BATCH files and, into PostgreSQL, COPY: the fastest path measured
# (README "Performance", B4). `record` keeps RECORD messages.
LOAD = _env("CALVEN_LOAD", "batch")
if LOAD not in ("batch", "record"):
    raise ValueError(f"CALVEN_LOAD must be batch or record, not {LOAD!r}")
BATCH = LOAD == "batch"
FAST_TARGET = {"TARGET_POSTGRES_USE_COPY": "true"} if BATCH and TARGET == "target-postgres" else {}

months = dg.MonthlyPartitionsDefinition(
    start_date=START,
    end_date=(dt.date.fromisoformat(END) + dt.timedelta(days=1)).isoformat() if END else None,
)
locations = dg.StaticPartitionsDefinition(LOCATIONS)
partitions = dg.MultiPartitionsDefinition({"month": months, "location": locations})


def select(streams: tuple[str, ...]) -> str:
    """The Meltano select override for one run."""
    return json.dumps([f"{s}.*" for s in streams])


def month_range(month_key: str) -> tuple[dt.date, dt.date]:
    """First and last day of a month partition (`YYYY-MM-DD` of its first day)."""
    first = dt.date.fromisoformat(month_key)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first, last


def partition_env(month_key: str, location: str) -> dict[str, str]:
    """The settings of one partition's `meltano run`."""
    first, last = month_range(month_key)
    env = {
        "TAP_CALVEN_START_DATE": first.isoformat(),
        "TAP_CALVEN_END_DATE": last.isoformat(),
        "TAP_CALVEN__SELECT": select(WINDOWED_BY_LOCATION),
        **FAST_TARGET,
    }
    if location != "all":
        env["TAP_CALVEN_LOCATION_IDS"] = json.dumps([location])
    return env


def state_suffix(month_key: str, location: str) -> str:
    """One state id per partition: `<env>:tap-calven-to-<target>:<month>-<location>`."""
    return f"{month_key[:7]}-{location}"


@dg.asset(pool=POOL, group_name="calven", compute_kind="meltano")
def calven_tables(context: AssetExecutionContext, meltano: MeltanoResource) -> None:
    """Every table, created by one run of every stream over the first day only.

    Singer SDK targets (target-postgres 0.8.1) check that a schema or table exists and then
    create it, without IF NOT EXISTS: runs that start together on a fresh schema can race.
    This one run creates them first, so the parallel runs downstream only upsert.
    """
    env = {
        "TAP_CALVEN_START_DATE": START,
        "TAP_CALVEN_END_DATE": START,
        "TAP_CALVEN__SELECT": select((*CORE, *WINDOWED_BY_LOCATION)),
    }
    if LOCATIONS != ["all"]:
        env["TAP_CALVEN_LOCATION_IDS"] = json.dumps(LOCATIONS)
    meltano.run(context, ["tap-calven", TARGET], env, state_id_suffix="tables")


@dg.asset(
    deps=[calven_tables],
    partitions_def=partitions,
    pool=POOL,
    group_name="calven",
    compute_kind="meltano",
)
def calven_windowed(context: AssetExecutionContext, meltano: MeltanoResource) -> None:
    """bookings_attendance and presence for one month and one location."""
    key = context.partition_key
    assert isinstance(key, dg.MultiPartitionKey)
    month, location = key.keys_by_dimension["month"], key.keys_by_dimension["location"]
    meltano.run(
        context,
        ["tap-calven", TARGET],
        partition_env(month, location),
        state_id_suffix=state_suffix(month, location),
        batch_files=BATCH,
    )


@dg.asset(deps=[calven_tables], pool=POOL, group_name="calven", compute_kind="meltano")
def calven_core(context: AssetExecutionContext, meltano: MeltanoResource) -> None:
    """Full tables and the user actions log (not location-filtered): one run, own state."""
    env = {"TAP_CALVEN__SELECT": select(CORE), **FAST_TARGET}
    if END:
        env["TAP_CALVEN_END_DATE"] = END
    meltano.run(context, ["tap-calven", TARGET], env, state_id_suffix="core", batch_files=BATCH)


@dg.op(pool=POOL)
def calven_incremental(context: OpExecutionContext, meltano: MeltanoResource) -> None:
    """The daily state-driven run of every stream (state id without a suffix)."""
    meltano.run(context, ["tap-calven", TARGET], {})


def dbt_assets() -> list[dg.AssetsDefinition]:
    """The dbt hook: `meltano run dbt-postgres:build` after the loads, if `transform/` exists."""
    if not (Path(_env("CALVEN_PROJECT_DIR", str(REPO))) / "transform").is_dir():
        return []

    @dg.asset(deps=[calven_core, calven_windowed], group_name="calven", compute_kind="dbt")
    def calven_dbt(context: AssetExecutionContext, meltano: MeltanoResource) -> None:
        """The dbt models, built from the loaded tables."""
        meltano.run(context, ["dbt-postgres:build"], {})

    return [calven_dbt]


@dg.job
def calven_incremental_job() -> None:
    """The daily incremental run."""
    calven_incremental()


daily = dg.ScheduleDefinition(job=calven_incremental_job, cron_schedule="0 5 * * *")
# A backfill from the command line, through the daemon's queue (README "Capping load"):
# `dagster job backfill -j calven_windowed_job --all --noprompt`.
calven_windowed_job = dg.define_asset_job("calven_windowed_job", selection=[calven_windowed])

defs = dg.Definitions(
    assets=[calven_tables, calven_core, calven_windowed, *dbt_assets()],
    jobs=[calven_incremental_job, calven_windowed_job],
    schedules=[daily],
    # Each run is one step that waits on `meltano run`: a step subprocess (the default
    # multiprocess executor) would only add a second Python start-up per partition.
    executor=dg.in_process_executor,
    resources={
        "meltano": MeltanoResource(
            project_dir=_env("CALVEN_PROJECT_DIR", str(REPO)),
            environment=_env("CALVEN_MELTANO_ENVIRONMENT", "prod"),
            executable=_env("CALVEN_MELTANO", "meltano"),
        )
    },
)
