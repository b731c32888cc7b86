"""`meltano run tap-calven target-duckdb` against the sandbox, twice, state kept by Meltano."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from tap_calven.sandbox import Sandbox

from .conftest import Meltano
from .helpers import KEYS, rows_of, table_names, two_runs

pytestmark = pytest.mark.e2e


def test_duckdb_load_then_incremental_rerun(
    meltano: Meltano, sandbox: Sandbox, tmp_path: Path
) -> None:
    path = tmp_path / "calven.duckdb"
    target_env = {
        "TARGET_DUCKDB_FILEPATH": str(path),
        "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "calven",
    }

    def read(stream: str) -> list[dict[str, Any]]:
        with duckdb.connect(str(path), read_only=True) as conn:
            tables = table_names(
                t
                for (t,) in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'calven'"
                ).fetchall()
            )
            assert tables == set(KEYS), tables
            (catalog,) = conn.execute("SELECT current_database()").fetchone() or ("",)
            return rows_of(conn.cursor(), f'SELECT * FROM "{catalog}".calven."{stream}"')

    two_runs(meltano, sandbox, "target-duckdb", target_env, read)
