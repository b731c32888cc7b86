"""A Dagster instance set up as orchestrate/README asks, with its daemon: the pool test and B5.

PostgreSQL storage (dagster-postgres), the daemon's run queue (QueuedRunCoordinator) and
pools counted per run: the daemon dequeues one tick at a time, so a pool limit holds even
when every run is ready at the same instant. Runs are submitted with `dagster job backfill`
and followed in the instance's `runs` table, so the caller needs no Dagster import.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.e2e.pgcluster import Postgres

REPO = Path(__file__).resolve().parents[2]
CODE = REPO / "orchestrate"
DAGSTER = REPO / ".venv-dagster" / "bin" / "dagster"
DAEMON = REPO / ".venv-dagster" / "bin" / "dagster-daemon"
POOL = "calven"
WINDOWED_JOB = "calven_windowed_job"  # orchestrate: the month x location partitions
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


class DagsterError(Exception):
    """A Dagster command failed or the runs did not finish (the message says why)."""


def instance_yaml(postgres: Postgres, database: str) -> str:
    """`dagster.yaml`: storage in ``database``, the queue, pools per run (JSON is YAML)."""
    storage = {
        "hostname": postgres.host,
        "port": postgres.port,
        "username": postgres.user,
        "password": "",
        "db_name": database,
    }
    return json.dumps(
        {
            "storage": {"postgres": {"postgres_db": storage}},
            "run_coordinator": {
                "module": "dagster._core.run_coordinator",
                "class": "QueuedRunCoordinator",
                # Launching a run costs seconds of CPU (a code load): in parallel, so that
                # one slot freeing does not wait on the launches before it.
                "config": {
                    "dequeue_interval_seconds": 1,
                    "dequeue_use_threads": True,
                    "dequeue_num_workers": 4,
                },
            },
            "auto_materialize": {"enabled": False},
            "telemetry": {"enabled": False},
            "concurrency": {"pools": {"granularity": "run"}},
        }
    )


@dataclass
class QueuedInstance:
    """A running daemon on an instance in ``database``; ``env`` is every command's env."""

    postgres: Postgres
    database: str
    env: dict[str, str]
    workspace: Path
    daemon: subprocess.Popen[bytes]

    def dagster(self, *args: str) -> str:
        """Run one `dagster` command; its output, or DagsterError with it."""
        done = subprocess.run(
            [str(DAGSTER), *args], cwd=CODE, env=self.env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise DagsterError(f"dagster {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def backfill(self, job: str, partitions: list[str]) -> None:
        """Queue one run per partition of ``job``; the daemon starts them."""
        self.dagster(
            *("job", "backfill", "-j", job, "-w", str(self.workspace), "--noprompt"),
            *("--partitions", ",".join(partitions)),
        )

    def statuses(self, job: str) -> dict[str, int]:
        """How many runs of ``job`` the instance holds, by status."""
        query = "SELECT status, count(*) FROM runs WHERE pipeline_name = %s GROUP BY status"
        with psycopg.connect(self.postgres.dsn(self.database)) as conn:
            rows = conn.execute(query, (job,)).fetchall()
        return {str(status): int(n) for status, n in rows}

    def wait_finished(self, job: str, count: int, seconds: float) -> dict[str, int]:
        """Wait until ``count`` runs of ``job`` have finished; their statuses."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise DagsterError(f"the Dagster daemon stopped (exit {self.daemon.returncode})")
            found = self.statuses(job)
            if sum(found.get(s, 0) for s in FINISHED) >= count:
                return found
            time.sleep(0.5)
        raise DagsterError(f"{count} runs did not finish in {seconds:.0f} s: {self.statuses(job)}")


@contextmanager
def queued_instance(
    home: Path, postgres: Postgres, database: str, limit: int, env: Mapping[str, str]
) -> Iterator[QueuedInstance]:
    """A new instance in ``database`` with the `calven` pool at ``limit``, and its daemon."""
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(instance_yaml(postgres, database))
    workspace = home / "workspace.yaml"
    location = {"module_name": "calven_dagster.definitions", "working_directory": str(CODE)}
    workspace.write_text(json.dumps({"load_from": [{"python_module": location}]}))
    full_env = {**env, "DAGSTER_HOME": str(home)}
    with (home / "daemon.log").open("w") as log:
        daemon = subprocess.Popen(
            [str(DAEMON), "run", "-w", str(workspace)],
            cwd=CODE,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its code server and run workers: one group to stop
        )
        queued = QueuedInstance(postgres, database, full_env, workspace, daemon)
        try:
            queued.dagster("instance", "concurrency", "set", POOL, str(limit))
            yield queued
        finally:
            stop_group(daemon)


def stop_group(daemon: subprocess.Popen[bytes]) -> None:
    """Stop the daemon and what it started; its code server outlives a plain terminate."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(daemon.pid, sig)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=60)
