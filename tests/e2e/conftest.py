"""Fixtures for the end-to-end tests: real `meltano run`, a throwaway PostgreSQL, a sandbox.

- `meltano`: Meltano from `.venv-meltano` (made by `make meltano`) with the project's plugins
  installed once per session into `.meltano/` (git-ignored, kept between runs so re-runs are
  fast) and a system database of its own per session, so state never mixes with yours.
- `postgres`: a PostgreSQL cluster made with `initdb` in a temporary folder, on a free
  loopback port, run as an unprivileged user when the tests run as root; removed afterwards.
- `sandbox`: a fresh local Calven emulator per test.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tap_calven.sandbox import DEFAULT_API_KEY, DEFAULT_API_SECRET, Sandbox
from tests.conftest import TODAY
from tests.e2e.pgcluster import ClusterError, Postgres, throwaway_cluster

REPO = Path(__file__).resolve().parents[2]
MELTANO_EXE = REPO / ".venv-meltano" / "bin" / "meltano"
PLUGINS = (
    "tap-calven",
    "target-duckdb",
    "target-postgres",
    "target-jsonl",
    "dbt-duckdb",
    "dbt-postgres",
)
# Settings that a developer's shell may carry and that would leak into the runs under test.
LEAKY_ENV = re.compile(
    r"^(TAP_CALVEN|TARGET_DUCKDB|TARGET_POSTGRES|TARGET_JSONL|MELTANO|DBT|CALVEN)_"
)


# ----------------------------------------------------------------------------- Meltano


@contextlib.contextmanager
def project_lock() -> Iterator[None]:
    """Exclusive use of the Meltano project across processes (pytest-xdist workers)."""
    path = REPO / ".meltano" / ".e2e.lock"
    path.parent.mkdir(exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class MeltanoRun:
    """One finished Meltano command."""

    args: list[str]
    returncode: int
    output: str
    seconds: float


@dataclass
class Meltano:
    """Runs Meltano commands in the repository's project with a private system database."""

    workdir: Path
    base_env: dict[str, str]
    runs: list[MeltanoRun] = field(default_factory=list)

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 300,
    ) -> MeltanoRun:
        """Run `meltano ARGS`; on failure, fail the test with the end of Meltano's output."""
        full_env = {**self.base_env, **(env or {})}
        started = time.monotonic()
        log = self.workdir / f"meltano-{len(self.runs) + 1:02d}.log"
        # Meltano keeps a plugin's run files in .meltano/run/<plugin>/ and deletes them when
        # a run ends, so two runs of one plugin in one project must not overlap: pytest-xdist
        # workers take turns.
        with log.open("w", encoding="utf-8") as out, project_lock():
            proc = subprocess.run(
                [str(MELTANO_EXE), *args],
                cwd=REPO,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        run = MeltanoRun(
            list(args), proc.returncode, log.read_text(encoding="utf-8"), time.monotonic() - started
        )
        self.runs.append(run)
        if check and proc.returncode != 0:
            tail = "\n".join(run.output.splitlines()[-60:])
            pytest.fail(f"meltano {' '.join(args)} exited {proc.returncode}:\n{tail}")
        return run

    def state(self, state_id: str) -> dict[str, Any]:
        """The state Meltano keeps for ``state_id``."""
        run = self("--environment", "sandbox", "state", "get", state_id)
        text = run.output[run.output.index("{") :]
        state, _ = json.JSONDecoder().raw_decode(text)
        assert isinstance(state, dict)
        return state


def _meltano_base_env(database: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not LEAKY_ENV.match(k)}
    env.update(
        MELTANO_DATABASE_URI=f"sqlite:///{database}",
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_DISABLE_TRACKING="true",
        MELTANO_CLI_LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    return env


@pytest.fixture(scope="session")
def meltano(tmp_path_factory: pytest.TempPathFactory) -> Meltano:
    """Meltano with every plugin of meltano.yml installed (once; later sessions reuse them)."""
    if not MELTANO_EXE.exists():
        # `make test` has done this already; a bare `pytest` run does it here.
        subprocess.run(["make", "--no-print-directory", "meltano"], cwd=REPO, check=True)
    workdir = tmp_path_factory.mktemp("meltano")
    runner = Meltano(workdir, _meltano_base_env(workdir / "meltano.db"))
    runner("install", *PLUGINS, timeout=900)
    return runner


# ----------------------------------------------------------------------------- sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A small deterministic tenant, served on a free loopback port for one test."""
    sb = Sandbox(seed=7, users=24, locations=3, past_days=40, future_days=21, today=TODAY).start()
    try:
        yield sb
    finally:
        sb.stop()


def tap_env(sb: Sandbox, **extra: str) -> dict[str, str]:
    """Tap settings for a run against ``sb`` (on top of meltano.yml's sandbox environment).

    `end_date` is the sandbox's pinned today: the tap in Meltano's subprocess reads the
    machine's clock, which is not the sandbox's day.
    """
    start, _ = sb.date_range("bookings_attendance")
    env = {
        "TAP_CALVEN_API_URL": sb.url,
        "TAP_CALVEN_API_KEY": DEFAULT_API_KEY,
        "TAP_CALVEN_API_SECRET": DEFAULT_API_SECRET,
        "TAP_CALVEN_START_DATE": min(start, sb.date_range("presence")[0]).isoformat(),
        "TAP_CALVEN_END_DATE": sb.today.isoformat(),
    }
    env.update(extra)
    return env


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL cluster of its own on a free loopback port (tests/e2e/pgcluster.py)."""
    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except ClusterError as exc:
        pytest.fail(str(exc))
