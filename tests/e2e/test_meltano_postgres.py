"""`meltano run tap-calven target-postgres` (MeltanoLabs) into a throwaway PostgreSQL cluster.

Once with RECORD messages, once with BATCH messages (`batch_config`: jsonl, gzip): each
time a first run, then a second one resumed from Meltano's state after the sandbox changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tap_calven.sandbox import Sandbox

from .conftest import Meltano, Postgres
from .helpers import KEYS, rows_of, table_names, two_runs

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("messages", ["record", "batch"])
def test_postgres_load_then_incremental_rerun(
    meltano: Meltano, sandbox: Sandbox, postgres: Postgres, tmp_path: Path, messages: str
) -> None:
    schema = f"calven_{messages}"
    tap_extra: dict[str, str] = {}
    batch_root = tmp_path / "batches"
    if messages == "batch":
        batch_root.mkdir()
        batch_config = {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": batch_root.as_uri(), "prefix": "calven-"},
        }
        tap_extra["TAP_CALVEN_BATCH_CONFIG"] = json.dumps(batch_config)

    def read(stream: str) -> list[dict[str, Any]]:
        with psycopg.connect(postgres.dsn()) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (schema,),
            )
            assert table_names(t for (t,) in cur.fetchall()) == set(KEYS)
            return rows_of(cur, f'SELECT * FROM "{schema}"."{stream}"')

    two_runs(meltano, sandbox, "target-postgres", postgres.target_env(schema), read, tap_extra)
    batch_files = sorted(p.name for p in batch_root.rglob("*") if p.is_file())
    if messages == "batch":
        # The tap wrote gzipped JSON-lines batch files and the target loaded from them.
        assert batch_files, "no BATCH files were written"
        assert all(name.startswith("calven-") for name in batch_files), batch_files
        assert all(name.endswith(".json.gz") for name in batch_files), batch_files
    else:
        assert batch_files == []
